"""KubeSpawner configured by hub_config from the settings our chart renders (platform kubernetes) spawns a real
user pod from the notebook image on the cluster of `make cluster`: the profile's resources, uid 1000, the
server reaches the hub, a kernel in the pod imports physlite and reads the example file, and stopping the
server deletes the pod. See tests/cluster/hub.py for how the hub runs next to the node.

The user logs in through the development OIDC provider (the chart's auth settings with its issuer) with a plain
HTTP client (af.tools.local.login: the browser's redirects and form, no Chromium yet) and starts her server from
the hub's spawn page; the later restarts, and the user's token, go through the hub API with the af-operator
service's token (the chart's settings.services.operator_token_env).

The tests run in this order (one user server for the module)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import pytest
import requests

from af.tools.local.login import login
from af.tools.remote_kernel import RemoteKernel
from hub_config.profiles import kubespawner_profile
from hub_config.settings_schema import Profile
from tests.conftest import R22_FILE, require_data_file

from .cluster import Cluster, load_image
from .hub import KubeHub, chart_values

NAMESPACE = "kubespawner-test"
USER = "alice"
DATA_MOUNT = "/data/examples"
# short enough to be seen culling, long enough not to cull a server while the other tests use it (seconds)
CULLING = {"server_idle_timeout": 20, "every": 5}
PASSWORD = secrets.token_hex(8)
# Kubernetes answers quantities in canonical form: compare numbers, not strings
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity (``"8Gi"``, ``"500m"``, ``2``) as a number."""
    text = str(text)
    for suffix, factor in UNITS.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def namespace_and_data(cluster: Cluster, data_dir: Path) -> None:
    """The users' namespace (Pod Security as the chart's podSecurity.enforce) and the example data as a
    read-only PVC bound to a hostPath volume (Pod Security baseline refuses hostPath in a pod)."""
    enforce = chart_values()["podSecurity"]["enforce"]
    cluster.apply(f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels: {{pod-security.kubernetes.io/enforce: {enforce}}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: kubespawner-test-examples}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  persistentVolumeReclaimPolicy: Retain
  claimRef: {{namespace: {NAMESPACE}, name: examples}}
  hostPath: {{path: {data_dir}, type: Directory}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: examples, namespace: {NAMESPACE}}}
spec:
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: kubespawner-test-examples
  resources: {{requests: {{storage: 1Gi}}}}
""")


@pytest.fixture(scope="module")
def hub(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):
    """The hub, spawning into NAMESPACE, with the chart's default values but a short idle timeout."""
    data_dir = require_data_file(R22_FILE).parent
    singleuser = chart_values()["jupyterhub"]["singleuser"]["image"]
    load_image(f"{singleuser['name']}:{singleuser['tag']}")
    namespace_and_data(cluster, data_dir)
    volumes = [{"name": "examples", "persistentVolumeClaim": {"claimName": "examples", "readOnly": True}}]
    mounts = [{"name": "examples", "mountPath": DATA_MOUNT, "readOnly": True}]
    with KubeHub.start(
        cluster.bin,
        tmp_path_factory.mktemp("kubehub"),
        {"settings": {"culling": CULLING}},
        NAMESPACE,
        volumes=volumes,
        volume_mounts=mounts,
        environment={"AF_EXAMPLE_DATA": DATA_MOUNT},
        accounts={USER: (PASSWORD, ["atlas"])},
    ) as running:
        yield running
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
    cluster.kubectl("delete", "pv", "kubespawner-test-examples", "--wait=false", check=False)


def user_pods(cluster: Cluster) -> list[dict]:
    return cluster.json("pods", "-n", NAMESPACE, "-l", f"hub.jupyter.org/username={USER}")["items"]


def wait_server_ready(hub: KubeHub, seconds: float = 240) -> dict:
    """The user's default server once the hub reports it ready (AssertionError with the hub's log otherwise)."""
    started = time.monotonic()
    server: dict = {}
    while time.monotonic() < started + seconds:
        server = hub.api("GET", f"/users/{USER}").json().get("servers", {}).get("", {})
        if server.get("ready"):
            return server
        if not server.get("pending") and time.monotonic() > started + 10:
            break  # neither ready nor starting: the spawn failed
        time.sleep(2)
    raise AssertionError(f"server of {USER} not ready: {server}\nhub log:\n{hub.log()[-6000:]}")


def start_server(hub: KubeHub) -> dict:
    """Start the user's server through the hub API (making the user if needed); the server once ready."""
    assert hub.api("POST", f"/users/{USER}").status_code in (201, 409)
    response = hub.api("POST", f"/users/{USER}/server")
    assert response.status_code in (201, 202), response.text
    return wait_server_ready(hub)


def wait_server_gone(hub: KubeHub, cluster: Cluster, seconds: float) -> None:
    """Wait until the hub lists no server of the user and no pod of theirs is left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not user_pods(cluster) and not hub.api("GET", f"/users/{USER}").json()["servers"]:
            return
        time.sleep(1)
    servers = hub.api("GET", f"/users/{USER}").json()["servers"]
    pods = [pod["metadata"]["name"] for pod in user_pods(cluster)]
    raise AssertionError(
        f"after {seconds}s the hub lists {servers} and pods {pods} remain\n{hub.log()[-4000:]}"
    )


@pytest.fixture(scope="module")
def started(hub: KubeHub, cluster: Cluster) -> dict:
    """The user logs in through the OIDC provider (group atlas) and starts her server from the hub's spawn page;
    her browser session and a token of hers (made by the operator)."""
    session, response = login(hub.url, USER, PASSWORD)
    assert response.status_code == 200, f"login of {USER} ended at {response.url} ({response.status_code})"
    spawn = session.get(f"{hub.url}/hub/spawn", timeout=60)
    if 'name="profile"' in spawn.text:  # KubeSpawner's profile form: take the facility's default profile
        spawn = session.post(
            f"{hub.url}/hub/spawn",
            data={"profile": "default", "_xsrf": session.cookies.get("_xsrf", "")},
            timeout=60,
        )
    assert spawn.status_code == 200, spawn.text[-2000:]
    server = wait_server_ready(hub)
    token = hub.api("POST", f"/users/{USER}/tokens", json={"note": "kubespawner test"}).json()["token"]
    return {"server": server, "token": token, "session": session}


def test_user_pod_runs_the_notebook_image_as_1000_with_the_profile_resources(
    hub: KubeHub, cluster: Cluster, started: dict
) -> None:
    [pod] = user_pods(cluster)
    [container] = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    profile = Profile(**hub.settings["profiles"][0])
    override = kubespawner_profile(profile)["kubespawner_override"]
    assert container["image"] == profile.image
    # KubeSpawner puts the uid on the container, the fs_gid on the pod
    assert container["securityContext"]["runAsUser"] == 1000
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    resources = container["resources"]
    assert quantity(resources["limits"]["cpu"]) == override["cpu_limit"]
    assert quantity(resources["requests"]["cpu"]) == override["cpu_guarantee"]
    assert quantity(resources["limits"]["memory"]) == override["mem_limit"]
    assert quantity(resources["requests"]["memory"]) == override["mem_guarantee"]
    assert pod["status"]["phase"] == "Running"
    environment = {e["name"]: e.get("value") for e in container["env"]}
    assert environment.get("AF_EXAMPLE_DATA") == DATA_MOUNT, environment
    assert started["server"]["url"] == f"/user/{USER}/"


def test_server_answers_through_the_hub_with_the_users_token(hub: KubeHub, started: dict) -> None:
    url = f"{hub.url}/user/{USER}/api/status"
    assert (
        requests.get(url, headers={"Authorization": f"token {started['token']}"}, timeout=30).status_code
        == 200
    )
    # without a token the server does not answer the API
    assert requests.get(url, timeout=30, allow_redirects=False).status_code in (302, 403)
    # her browser session opens JupyterLab in the pod (the server's OAuth with the hub)
    lab = started["session"].get(f"{hub.url}/user/{USER}/lab", timeout=60)
    assert lab.status_code == 200 and "JupyterLab" in lab.text, lab.url


def test_kernel_in_the_pod_imports_physlite_and_reads_the_example(hub: KubeHub, started: dict) -> None:
    code = (
        "import json, os, socket, physlite, uproot\n"
        f"tree = uproot.open(os.path.join(os.environ['AF_EXAMPLE_DATA'], {R22_FILE!r}))['CollectionTree']\n"
        "print(json.dumps({'host': socket.gethostname(), 'uid': os.getuid(), 'entries': tree.num_entries,"
        " 'physlite': physlite.__name__}))"
    )

    async def run() -> str:
        async with RemoteKernel(f"{hub.url}/user/{USER}", started["token"]) as kernel:
            return (await kernel.execute(code)).stdout

    report = json.loads(asyncio.run(run()).strip().splitlines()[-1])
    assert report["uid"] == 1000
    assert report["host"].startswith("jupyter-")  # the pod's hostname, not this machine's
    assert report["entries"] > 0


def test_stopping_the_server_deletes_the_pod(hub: KubeHub, cluster: Cluster, started: dict) -> None:
    assert user_pods(cluster)
    response = hub.api("DELETE", f"/users/{USER}/server")
    assert response.status_code in (202, 204), response.text
    wait_server_gone(hub, cluster, 90)


def test_a_user_pod_deleted_under_a_running_server_is_noticed_by_the_hub(
    hub: KubeHub, cluster: Cluster
) -> None:
    start_server(hub)
    [pod] = user_pods(cluster)
    cluster.kubectl("delete", "pod", "-n", NAMESPACE, pod["metadata"]["name"], "--wait=false")
    # the hub polls its spawners every Spawner.poll_interval (JupyterHub's default 30 s; z2jh keeps it)
    wait_server_gone(hub, cluster, 60)
    # noticed by the hub's poll of the spawner, not stopped through the API
    assert f"User {USER} server stopped, with exit code" in hub.log(), hub.log()[-3000:]


def test_the_idle_culler_stops_an_idle_server(hub: KubeHub, cluster: Cluster) -> None:
    assert hub.settings["culling"] == {**hub.settings["culling"], **CULLING}
    start_server(hub)
    wait_server_gone(hub, cluster, CULLING["server_idle_timeout"] + 3 * CULLING["every"])
    assert f"Culling server {USER}" in hub.log(), hub.log()[-3000:]
