"""The whole chart on the real cluster (`make deploy-local`: Zero to JupyterHub, dask-gateway and our objects, the
local images, the development IAM), driven as a physicist and an admin do: Chromium logs in, JupyterLab opens,
tutorial 5 runs in the user's pod on the gateway (scheduler and workers in pods), the admin page is for admins,
an outsider gets 403, and the hub pod restarted and `helm upgrade` with changed values keep the user's pod and her
gateway cluster.

The subcharts cannot be downloaded on the project's machines: the module skips, saying so, unless AF_SUBCHARTS
names a folder holding them (tools/cluster/deploy_local.py).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import nbformat
import pytest
import requests

from af.tools.settings_rollout import ANNOTATION as CHECKSUM
from physlite.analysis import run as run_reference
from tests.e2e.conftest import CHROMIUM_ARGS
from tests.e2e.test_browser import LAB_READY, sign_in
from tests.e2e.test_tutorials_in_containers import (
    COPIES,
    EXAMPLE,
    SCALING_OUT_CHECKS,
    example_file,
    run_in_server,
)
from tests.servicex.test_delivery import COLUMNS, CUT, _direct

from .cluster import REPO, Cluster, deploy_local, facility_chart
from .test_chart import hub_image
from .test_servicex_chart import NAME as SERVICEX
from .test_servicex_chart import S3, S3_ADMIN, S3_EGRESS, S3_PORT, start_s3

SUBCHARTS = deploy_local.subcharts_folder(None)
pytestmark = pytest.mark.skipif(
    SUBCHARTS is None,
    reason="the subcharts (jupyterhub 4.4.0, dask-gateway 2026.3.0) cannot be downloaded here: "
    "set AF_SUBCHARTS to a folder holding them",
)
USER = "alice"
BENCH = REPO / "build" / "bench" / "deploy-local.json"
# the Deployments that read the settings only at start, and the annotation the chart's hook stamps on them
ROLLED = ("hub", "api-dask-gateway")


class Deployment(SimpleNamespace):
    """What the browser helpers of tests/e2e need: the public URL and the accounts' passwords."""

    def account(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(password=self.passwords[name])


@pytest.fixture(scope="module")
def deployed(cluster: Cluster):
    deploy_local.down()  # what a previous run left
    started = time.monotonic()
    release = deploy_local.up(SUBCHARTS, {}, example_file().parent)
    install_seconds = time.monotonic() - started
    yield Deployment(
        url=deploy_local.public_url(),
        passwords=deploy_local.accounts(),
        release=release,
        install_seconds=install_seconds,
        operator_token=deploy_local.facility_chart.Facility(
            namespace=deploy_local.NAMESPACE
        ).hub_env_secret()["AF_OPERATOR_TOKEN"],
    )
    deploy_local.down()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                *CHROMIUM_ARGS,
                f"--host-resolver-rules=MAP {deploy_local.ISSUER_HOST} 127.0.0.1",
            ],
        )
        yield chromium
        chromium.close()


def hub_api(deployed: Deployment, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {deployed.operator_token}"}
    return requests.request(method, f"{deployed.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)


def user_token(deployed: Deployment) -> str:
    response = hub_api(
        deployed, "POST", f"/users/{USER}/tokens", json={"note": "deploy-local", "expires_in": 3600}
    )
    response.raise_for_status()
    return response.json()["token"]


def user_pod(cluster: Cluster) -> dict:
    pods = cluster.json("pods", "-n", deploy_local.NAMESPACE, "-l", f"hub.jupyter.org/username={USER}")[
        "items"
    ]
    assert len(pods) == 1, [pod["metadata"]["name"] for pod in pods]
    return pods[0]


# run in alice's server: a gateway cluster that outlives the kernel (and, the tests show, the hub and an upgrade)
START_CLUSTER = """
from dask_gateway import Gateway
gateway = Gateway()
cluster = gateway.new_cluster(shutdown_on_close=False)
cluster.scale(1)
cluster.get_client().wait_for_workers(1, timeout=240)
"""
USE_CLUSTER = """
from dask_gateway import Gateway
gateway = Gateway()
listed = [c.name for c in gateway.list_clusters()]
cluster = gateway.connect({name!r})
total = cluster.get_client().submit(sum, range(1000)).result(timeout=120)
cluster.shutdown()
"""


def run_code(deployed: Deployment, code: str, checks: str) -> dict:
    """`code` run in a kernel of alice's server; the value of the `checks` expression after it."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    # in a thread of its own: Playwright's sync API keeps an event loop running in this one
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(
            run_in_server, f"{deployed.url}/user/{USER}", user_token(deployed), notebook, {}, checks
        ).result()


def scheduler_pods(cluster: Cluster, name: str) -> list[dict]:
    """The running scheduler pods of gateway cluster `name` (``<namespace>.<id>``)."""
    pods = cluster.json(
        "pods", "-n", deploy_local.NAMESPACE, "-l",
        f"app.kubernetes.io/component=dask-scheduler,gateway.dask.org/cluster={name.split('.', 1)[1]}",
    )["items"]  # fmt: skip
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


@pytest.fixture(scope="module")
def gateway_cluster(deployed: Deployment, lab: dict, cluster: Cluster) -> dict:
    """alice's gateway cluster with one worker, started from her server before the hub restart and the upgrade."""
    name = run_code(deployed, START_CLUSTER, "cluster.name")
    [scheduler] = scheduler_pods(cluster, name)
    return {"name": name, "scheduler_uid": scheduler["metadata"]["uid"]}


@pytest.fixture(scope="module")
def lab(deployed: Deployment, browser) -> dict:
    """alice signs in through Chromium and gets JupyterLab in her pod (the spawn form, if shown, starts it)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sent = sign_in(page, deployed, USER)
        page.wait_for_url(re.compile(r"/(hub/spawn|user/)"), timeout=120_000)
        if "/hub/spawn" in page.url and page.locator("form#spawn_form").count():
            page.click("form#spawn_form [type=submit]")
        page.wait_for_selector(LAB_READY, timeout=300_000)
        seconds = time.perf_counter() - sent
        page.screenshot(path=REPO / "build" / "e2e" / "deploy-local-jupyterlab.png")
        assert re.search(rf"/user/{USER}/lab", page.url), page.url
    finally:
        context.close()
    BENCH.parent.mkdir(parents=True, exist_ok=True)
    BENCH.write_text(
        json.dumps(
            {
                "install_seconds": round(deployed.install_seconds, 1),
                "login_to_jupyterlab_s": round(seconds, 1),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=1,
        )
    )
    return {"login_to_jupyterlab_s": seconds}


def test_user_logs_in_and_gets_jupyterlab_in_a_pod_of_the_notebook_image(
    deployed: Deployment, lab: dict, cluster: Cluster
):
    pod = user_pod(cluster)
    container = pod["spec"]["containers"][0]
    assert container["image"].startswith("ghcr.io/physlite-facility/notebook:")
    uid = cluster.kubectl("exec", "-n", deploy_local.NAMESPACE, pod["metadata"]["name"], "--", "id", "-u")
    assert uid.strip() == "1000"
    assert pod["status"]["phase"] == "Running"


def test_tutorial_5_on_the_gateway_gives_the_reference_counts(
    deployed: Deployment, lab: dict, cluster: Cluster
):
    token = user_token(deployed)
    server = f"{deployed.url}/user/{USER}"
    response = requests.get(
        f"{server}/api/contents/tutorials/05_scaling_out.ipynb",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text[:500]
    notebook = nbformat.from_dict(response.json()["content"])
    # in a thread of its own: Playwright's sync API keeps an event loop running in this one
    with ThreadPoolExecutor(1) as thread:
        checks = thread.submit(
            run_in_server,
            server,
            token,
            notebook,
            {"FILE_NAME": EXAMPLE, "COPIES": COPIES, "CHUNK_SIZE": 50, "WORKERS": 2},
            SCALING_OUT_CHECKS,
        ).result()
    local = run_reference([example_file()] * COPIES)
    assert checks["n_events"] == local.n_events
    assert checks["counts"] == local.counts
    assert checks["jet_pt_sum"] == local.histograms["jet_pt"].sum(flow=True) > 0
    assert checks["workers"] == 2 and checks["running"] == []


def test_admin_page_only_for_admins(deployed: Deployment, browser):
    for name, status in (("admin", 200), (USER, 403)):
        context = browser.new_context()
        try:
            page = context.new_page()
            sign_in(page, deployed, name)
            page.wait_for_url(re.compile(r"/(hub|user)/"), timeout=120_000)
            assert page.goto(f"{deployed.url}/hub/admin").status == status, name
        finally:
            context.close()


def test_outsider_gets_403(deployed: Deployment, browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        statuses = []
        page.on("response", lambda r: statuses.append(r.status) if "/hub/oauth_callback" in r.url else None)
        sign_in(page, deployed, "outsider")
        page.wait_for_load_state("load")
        assert statuses and statuses[-1] == 403, statuses
    finally:
        context.close()


def wait_for_a_new_hub_pod(cluster: Cluster, old_pods: list[dict], timeout: float = 180) -> dict:
    """The first Ready hub pod that is none of `old_pods` (the hub restarted)."""
    old = {pod["metadata"]["uid"] for pod in old_pods}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pod in cluster.json("pods", "-n", deploy_local.NAMESPACE, "-l", "component=hub")["items"]:
            statuses = pod["status"].get("containerStatuses", [{}])
            if pod["metadata"]["uid"] not in old and all(status.get("ready") for status in statuses):
                return pod
        time.sleep(2)
    raise AssertionError(f"no new hub pod ready within {timeout:.0f} s")


def settings_checksum(cluster: Cluster, deployment: str) -> str | None:
    """The settings checksum the chart's settings-rollout hook stamped on a Deployment's pod template."""
    template = cluster.json("deployment", "-n", deploy_local.NAMESPACE, deployment)["spec"]["template"]
    return template["metadata"].get("annotations", {}).get(CHECKSUM)


def test_hub_pod_restarted_keeps_the_users_server(
    deployed: Deployment, lab: dict, cluster: Cluster, gateway_cluster: dict
):
    before = user_pod(cluster)
    hub_pods = cluster.json("pods", "-n", deploy_local.NAMESPACE, "-l", "component=hub")["items"]
    cluster.kubectl("delete", "pod", "-n", deploy_local.NAMESPACE, "-l", "component=hub", "--wait=true")
    wait_for_a_new_hub_pod(cluster, hub_pods)
    assert user_pod(cluster)["metadata"]["uid"] == before["metadata"]["uid"]
    token = user_token(deployed)
    status = requests.get(
        f"{deployed.url}/user/{USER}/api/status", headers={"Authorization": f"token {token}"}, timeout=60
    )
    assert status.status_code == 200
    assert hub_api(deployed, "GET", f"/users/{USER}").json()["servers"][""]["ready"]


def test_helm_upgrade_keeps_the_users_pod_and_applies_the_values(
    deployed: Deployment, lab: dict, cluster: Cluster, gateway_cluster: dict
):
    before = user_pod(cluster)
    hub_pods = cluster.json("pods", "-n", deploy_local.NAMESPACE, "-l", "component=hub")["items"]
    checksums = {name: settings_checksum(cluster, name) for name in ROLLED}
    release = deploy_local.up(
        SUBCHARTS, {"settings": {"culling": {"server_idle_timeout": 5400}}}, example_file().parent
    )
    assert release["revision"] > deployed.release["revision"]
    after = user_pod(cluster)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0
    settings = cluster.json("configmap", "-n", deploy_local.NAMESPACE, "analysis-facility-settings")["data"]
    assert "server_idle_timeout: 5400" in settings["settings.yaml"]
    # the hub and the gateway API read the settings only at start: the chart's hook restarts them
    for name in ROLLED:
        assert settings_checksum(cluster, name) not in (None, checksums[name]), name
    hub = wait_for_a_new_hub_pod(cluster, hub_pods)
    assert hub["metadata"]["annotations"][CHECKSUM] == settings_checksum(cluster, "hub")
    assert hub_api(deployed, "GET", f"/users/{USER}").json()["servers"][""]["ready"]
    token = user_token(deployed)
    status = requests.get(
        f"{deployed.url}/user/{USER}/api/status", headers={"Authorization": f"token {token}"}, timeout=60
    )
    assert status.status_code == 200


def test_users_gateway_cluster_survives_the_hub_restart_and_the_upgrade(
    deployed: Deployment, cluster: Cluster, gateway_cluster: dict
):
    name = gateway_cluster["name"]
    [scheduler] = scheduler_pods(cluster, name)
    assert scheduler["metadata"]["uid"] == gateway_cluster["scheduler_uid"]
    checks = run_code(deployed, USE_CLUSTER.format(name=name), "{'listed': listed, 'total': total}")
    assert name in checks["listed"]
    assert checks["total"] == sum(range(1000))


# ServiceX switched on by an upgrade: the service's own gateway cluster (KubeBackend) transforms, results in S3
SERVICEX_VALUES = {
    "settings": {"servicex": {"facility": True, "s3_endpoint": f"http://{S3}:{S3_PORT}"}},
    "servicex": {"s3Egress": S3_EGRESS, "persistence": {"size": "100Mi"}},
}
# run in alice's server with the ~/servicex.yaml her server wrote: the real client's deliver, Parquet
DELIVER = """
import awkward as ak, json, pathlib
from servicex import ProgressBarFormat, dataset, deliver, query
spec = {"General": {"OutputFormat": "parquet", "Delivery": "LocalCache"},
        "Sample": [{"Name": "electrons", "Dataset": dataset.FileList(FILES),
                    "Query": query.UprootRaw({"treename": "CollectionTree", "filter_name": COLUMNS, "cut": CUT})}]}
paths = deliver(spec, progress_bar=ProgressBarFormat.none)["electrons"]
delivered = {pathlib.Path(p).name: {c: ak.to_list(ak.from_parquet(p)[c]) for c in COLUMNS} for p in paths}
config = (pathlib.Path.home() / "servicex.yaml").read_text()
"""


@pytest.fixture(scope="module")
def servicex(deployed: Deployment, cluster: Cluster) -> dict:
    """The release upgraded with ServiceX on (its Secret and SeaweedFS made first, as an admin would), and alice's
    server restarted so that it writes ~/servicex.yaml for the service."""
    facility = facility_chart.Facility(namespace=deploy_local.NAMESPACE)
    facility.kubectl(
        "create", "secret", "generic", SERVICEX, f"--from-literal=AF_SERVICEX_S3_ACCESS_KEY={S3_ADMIN}",
        f"--from-literal=AF_SERVICEX_S3_SECRET_KEY={(s3_secret := secrets.token_hex(24))}",
        f"--from-literal=s3-admin={s3_secret}", f"--from-literal=AF_SERVICEX_SECRET={secrets.token_hex(32)}",
    )  # fmt: skip
    start_s3(facility, hub_image())
    release = deploy_local.up(SUBCHARTS, SERVICEX_VALUES, example_file().parent)
    facility.kubectl("rollout", "status", f"deployment/{SERVICEX}", "--timeout", "240s", timeout=300)
    assert hub_api(deployed, "DELETE", f"/users/{USER}/server").status_code in (202, 204)
    deadline = time.monotonic() + 120
    while hub_api(deployed, "GET", f"/users/{USER}").json()["servers"] and time.monotonic() < deadline:
        time.sleep(2)
    assert hub_api(deployed, "POST", f"/users/{USER}/server").status_code in (201, 202)
    deadline = time.monotonic() + 300
    while not hub_api(deployed, "GET", f"/users/{USER}").json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, "alice's server did not come back within 300 s"
        time.sleep(2)
    return release


def test_servicex_delivers_through_the_whole_chart_on_its_gateway_cluster(
    deployed: Deployment, cluster: Cluster, servicex: dict
):
    files = [f"/srv/physlite-examples/{example_file().name}"]
    checks = run_code(
        deployed,
        f"FILES, COLUMNS, CUT = {files!r}, {COLUMNS!r}, {CUT!r}\n" + DELIVER,
        "{'delivered': delivered, 'config': config}",
    )
    assert "/services/servicex" in checks["config"]
    print("the client delivered:", {name: len(c[COLUMNS[0]]) for name, c in checks["delivered"].items()})
    [(name, got)] = checks["delivered"].items()
    assert name.endswith(f"_{example_file().name}.parquet")
    for column, expected in _direct(example_file(), COLUMNS).items():
        assert got[column] == expected.to_list() and len(got[column]) > 0, column
    # the transform ran on the service's own gateway cluster (alice's were shut down above): KubeBackend pods
    pods = cluster.json(
        "pods",
        "-n",
        deploy_local.NAMESPACE,
        "-l",
        "app.kubernetes.io/component in (dask-scheduler,dask-worker)",
    )["items"]
    assert any(pod["metadata"]["labels"].get("app.kubernetes.io/component") == "dask-worker" for pod in pods)
