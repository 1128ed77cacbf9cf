"""KubeSpawner configured by hub_config from the settings our chart renders (platform kubernetes) spawns a real
user pod from the notebook image on the cluster of `make cluster`: the profile's resources, uid 1000, the
server reaches the hub, a kernel in the pod imports physlite and reads the example file, tutorial 2 (the user's
copy in the pod) gives what a local read gives, and stopping the server deletes the pod. See tests/cluster/hub.py
for how the hub runs next to the node.

The user logs in with Debian's Chromium driven by Playwright (as tests/e2e does) through the development OIDC
provider (the chart's auth settings with its issuer), takes the default profile on KubeSpawner's form and gets
JupyterLab in her pod; login -> JupyterLab is written to build/bench/cluster-login.json. Later restarts, and the
user's token, go through the hub API with the af-operator service's token (settings.services.operator_token_env).

Faults: the hub restarted on the same database (the pod survives, reachable again through the proxy), a user pod
deleted under a running kernel (the hub notices, the user starts again), and the idle culler.

The tests run in this order (one user server for the module)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import requests
import uproot

from af.tools.remote_kernel import RemoteKernel
from hub_config.profiles import kubespawner_profile
from hub_config.settings_schema import Profile
from physlite.events.sgkey import sgkey
from tests.conftest import R22_FILE, require_data_file
from tests.e2e.conftest import CHROMIUM_ARGS
from tests.e2e.test_browser import LAB_READY, sign_in
from tests.e2e.test_tutorials_in_containers import run_in_server
from tests.notebooks.test_02_physlite import first_track_z0_by_hand

from .cluster import REPO, Cluster, load_image
from .hub import KubeHub, chart_values

NAMESPACE = "kubespawner-test"
USER = "alice"
DATA_MOUNT = "/data/examples"
# short enough to be seen culling; long enough that the culler, restarted with the hub, leaves the server of the
# hub-restart test alone (with 20 s it culled it 33 s after its start) (seconds)
CULLING = {"server_idle_timeout": 90, "every": 5}
PASSWORD = secrets.token_hex(8)
BENCH = REPO / "build" / "bench" / "cluster-login.json"
SCREENSHOTS = REPO / "build" / "e2e"
# tutorial 2's results (tests/notebooks/test_02_physlite.py checks its figures too, with helpers the image lacks)
PHYSLITE_CHECKS = "{'n_electrons': n_electrons, 'target': target, 'z0': electron_track_z0.to_list(), 'identical': identical}"
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


def browser_to_jupyterlab(hub: KubeHub) -> float:
    """The user signs in with Chromium, takes the default profile on KubeSpawner's form if shown, and gets
    JupyterLab in her pod; seconds from sending the provider's form to JupyterLab's main area.

    Playwright's sync API runs an event loop while open: it is closed before the tests' asyncio.run."""
    from playwright.sync_api import sync_playwright

    user = SimpleNamespace(url=hub.url, account=lambda _: SimpleNamespace(password=PASSWORD))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            sent = sign_in(page, user, USER)
            page.wait_for_url(re.compile(r"/(hub/spawn|user/)"), timeout=120_000)
            if "/hub/spawn" in page.url and page.locator("form#spawn_form").count():
                page.screenshot(path=SCREENSHOTS / "cluster-spawn-form.png")
                page.click("form#spawn_form [type=submit]")
            page.wait_for_selector(LAB_READY, timeout=300_000)
            seconds = time.perf_counter() - sent
            assert re.search(rf"/user/{USER}/lab", page.url), page.url
            page.goto(f"{hub.url}/user/{USER}/lab/tree/tutorials/02_physlite.ipynb")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.screenshot(path=SCREENSHOTS / "cluster-jupyterlab.png")
        finally:
            chromium.close()
    return seconds


@pytest.fixture(scope="module")
def started(hub: KubeHub, cluster: Cluster) -> dict:
    """The user logs in with Chromium (group atlas) and gets JupyterLab in her pod; the server and a token of
    hers (made by the operator). Writes login -> JupyterLab to BENCH."""
    seconds = browser_to_jupyterlab(hub)
    server = wait_server_ready(hub)
    token = hub.api("POST", f"/users/{USER}/tokens", json={"note": "kubespawner test"}).json()["token"]
    BENCH.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "login_to_jupyterlab_s": round(seconds, 1),
        "means": "Chromium: provider's sign-in form sent -> KubeSpawner's profile form -> user pod of the notebook "
        "image scheduled, started and ready -> JupyterLab's main area drawn, on the local single-node cluster",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    BENCH.write_text(json.dumps(entry, indent=2) + "\n")
    print(f"login -> JupyterLab on Kubernetes: {seconds:.1f} s")
    return {"server": server, "token": token}


def run_code(hub: KubeHub, token: str, code: str) -> str:
    """The stdout of `code` run in a new kernel of the user's server (through the hub's proxy)."""

    async def run() -> str:
        async with RemoteKernel(f"{hub.url}/user/{USER}", token) as kernel:
            return (await kernel.execute(code)).stdout

    return asyncio.run(run())


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


def test_kernel_in_the_pod_imports_physlite_and_reads_the_example(hub: KubeHub, started: dict) -> None:
    code = (
        "import json, os, socket, physlite, uproot\n"
        f"tree = uproot.open(os.path.join(os.environ['AF_EXAMPLE_DATA'], {R22_FILE!r}))['CollectionTree']\n"
        "print(json.dumps({'host': socket.gethostname(), 'uid': os.getuid(), 'entries': tree.num_entries,"
        " 'physlite': physlite.__name__}))"
    )
    report = json.loads(run_code(hub, started["token"], code).strip().splitlines()[-1])
    assert report["uid"] == 1000
    assert report["host"].startswith("jupyter-")  # the pod's hostname, not this machine's
    assert report["entries"] > 0


def test_tutorial_2_in_the_pod_gives_what_a_local_read_gives(hub: KubeHub, started: dict) -> None:
    """The user's copy of tutorial 2 (put in her home in the pod by the server), run cell by cell in her pod on
    the example file of the PV, against uproot and plain Python loops here."""
    server = f"{hub.url}/user/{USER}"
    headers = {"Authorization": f"token {started['token']}"}
    copy = requests.get(f"{server}/api/contents/tutorials/02_physlite.ipynb", headers=headers, timeout=60)
    assert copy.status_code == 200, copy.text[:500]
    notebook = nbformat.from_dict(copy.json()["content"])
    name = Path(R22_FILE).name
    checks = run_in_server(
        server, started["token"], notebook, {"FILE_NAME": name, "REPEAT": 1}, PHYSLITE_CHECKS
    )
    path = require_data_file(R22_FILE)
    pt = uproot.open(path)["CollectionTree"]["AnalysisElectronsAuxDyn.pt"].array(library="ak")
    assert checks["n_electrons"] == sum(len(event) for event in pt.to_list()) > 0
    assert checks["target"] == "GSFTrackParticles"
    expected = first_track_z0_by_hand(path, checks["target"], sgkey(checks["target"], "xAOD::TrackParticle"))
    got = checks["z0"]
    assert [len(event) for event in got] == [len(event) for event in expected]
    flat_got = [v for event in got for v in event]
    flat_expected = [v for event in expected for v in event]
    assert [v is None for v in flat_got] == [v is None for v in flat_expected]
    assert np.allclose([v for v in flat_got if v is not None], [v for v in flat_expected if v is not None])
    assert checks["identical"] == {"variables": True, "ElementLinks": True}


def test_hub_restarted_on_its_database_finds_the_running_pod(
    hub: KubeHub, cluster: Cluster, started: dict
) -> None:
    [before] = user_pods(cluster)
    hub.restart_hub()
    # the restarted hub polls the spawner (the pod exists) and gives the proxy it starts the user's route again
    wait_server_ready(hub, 60)
    url = f"{hub.url}/user/{USER}/api/status"
    headers = {"Authorization": f"token {started['token']}"}
    deadline = time.monotonic() + 60
    while requests.get(url, headers=headers, timeout=30).status_code != 200:
        assert time.monotonic() < deadline, f"{url} not reachable after the restart\n{hub.log()[-3000:]}"
        time.sleep(1)
    [after] = user_pods(cluster)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert [c["restartCount"] for c in after["status"]["containerStatuses"]] == [0]
    assert run_code(hub, started["token"], "print(6 * 7)").strip() == "42"


def test_stopping_the_server_deletes_the_pod(hub: KubeHub, cluster: Cluster, started: dict) -> None:
    assert user_pods(cluster)
    response = hub.api("DELETE", f"/users/{USER}/server")
    assert response.status_code in (202, 204), response.text
    wait_server_gone(hub, cluster, 90)


def test_a_user_pod_deleted_under_a_running_kernel_is_noticed_and_the_user_starts_again(
    hub: KubeHub, cluster: Cluster, started: dict
) -> None:
    start_server(hub)
    [pod] = user_pods(cluster)

    async def kernel_then_delete() -> str:
        async with RemoteKernel(f"{hub.url}/user/{USER}", started["token"]) as kernel:
            running = (await kernel.execute("import os; print(os.getpid())")).stdout
            cluster.kubectl("delete", "pod", "-n", NAMESPACE, pod["metadata"]["name"], "--wait=false")
            # the hub polls its spawners every Spawner.poll_interval (JupyterHub's default 30 s; z2jh keeps it)
            wait_server_gone(hub, cluster, 90)
            return running

    assert asyncio.run(kernel_then_delete()).strip().isdigit()
    # noticed by the hub's poll of the spawner, not stopped through the API
    assert f"User {USER} server stopped, with exit code" in hub.log(), hub.log()[-3000:]
    start_server(hub)
    [again] = user_pods(cluster)
    assert again["metadata"]["uid"] != pod["metadata"]["uid"]
    assert run_code(hub, started["token"], "print(6 * 7)").strip() == "42"
    assert hub.api("DELETE", f"/users/{USER}/server").status_code in (202, 204)
    wait_server_gone(hub, cluster, 90)


def test_the_idle_culler_stops_an_idle_server(hub: KubeHub, cluster: Cluster) -> None:
    assert hub.settings["culling"] == {**hub.settings["culling"], **CULLING}
    start_server(hub)
    wait_server_gone(hub, cluster, CULLING["server_idle_timeout"] + 3 * CULLING["every"])
    assert f"Culling server {USER}" in hub.log(), hub.log()[-3000:]
