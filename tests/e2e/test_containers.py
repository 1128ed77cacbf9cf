"""Users' code in containers of the notebook image (`af up`): profile limits as cgroup limits, what a
user's server can and cannot reach, dask workers over their memory limit, and `af down`/`af up`.

A facility of its own (module scope, free ports, temporary state) with a small profile, so that an allocation past
it is cheap. "Alice's server" is code run in alice's server container as its user (``podman exec --user 1000``:
the same namespaces, cgroup and mounts as her kernels); the browser test goes through JupyterLab.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import requests

from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility, marked_processes
from hub_config.container_names import FACILITY_LABEL, container_name
from tests.e2e.conftest import Hub, container_mode, gateway_for, http_login, podman
from tests.e2e.test_browser import LAB_READY, sign_in
from tests.e2e.test_isolation import wait_server

pytestmark = pytest.mark.e2e
MEMORY = "700M"
PROFILE = {"name": "standard", "description": "1 core, 700 MB", "cores": 1, "memory": MEMORY, "groups": []}
OOM_NOTEBOOK = "oom.ipynb"
# 1.5 GB written page by page: far past the 700 MB profile
OOM_CELL = "import numpy as np\nblock = np.ones(1_500_000_000 // 8)\nprint('allocated', block.nbytes)"


@pytest.fixture(scope="module")
def cfacility(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFacility]:
    example_data = os.environ.get("PHYSLITE_TEST_DATA") or os.environ.get("AF_EXAMPLE_DATA")
    local = LocalFacility(
        tmp_path_factory.mktemp("containers-state"),
        ports=Ports.free(),
        example_data=Path(example_data) if example_data else None,
        settings_overrides={"profiles": [PROFILE]},
        containers=container_mode(),
    )
    try:
        local.up()
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def chub(cfacility: LocalFacility) -> Hub:
    return Hub(cfacility)


def container_of(facility: LocalFacility, user: str) -> str:
    return container_name(facility.secrets()["facility_id"], user)


def start_server(hub: Hub, user: str) -> None:
    hub.api("POST", "/users", json={"usernames": [user]})
    hub.api("POST", f"/users/{user}/server")
    wait_server(hub, user, timeout=180)


def in_server(facility: LocalFacility, user: str, code: str) -> str:
    """Run Python `code` in `user`'s server container as the server's user; its stdout."""
    done = podman(
        "exec", "--user", "1000", container_of(facility, user), "python", "-c", textwrap.dedent(code)
    )
    return done.stdout


def test_server_runs_as_uid_1000_with_the_profile_limits(cfacility, chub):
    start_server(chub, "alice")
    seen = json.loads(
        in_server(
            cfacility,
            "alice",
            """
            import json, os
            cg = "/sys/fs/cgroup"
            read = lambda p: open(f"{cg}/{p}").read().strip()
            print(json.dumps({"uid": os.getuid(), "home": os.path.expanduser("~"), "files": sorted(os.listdir()),
                "memory": int(read("memory/memory.limit_in_bytes")), "quota": int(read("cpu/cpu.cfs_quota_us")),
                "period": int(read("cpu/cpu.cfs_period_us")), "data": os.environ.get("AF_EXAMPLE_DATA")}))
            """,
        )
    )
    assert seen["uid"] == 1000 and seen["home"] == "/home/jovyan"
    assert seen["memory"] == 700 * 2**20
    assert seen["quota"] == seen["period"], "1 core: a CPU quota of one period per period"
    assert "tutorials" in seen["files"] or cfacility.tutorials is None
    # the user's files are the user's: what the server writes lands in state/homes/alice, owned by uid 1000
    in_server(cfacility, "alice", "open('written-in-container.txt', 'w').write('x')")
    written = cfacility.state_dir / "homes" / "alice" / "written-in-container.txt"
    assert written.stat().st_uid == 1000


# Busy processes in alice's server, in rounds of 3 s (at most 20) until the cgroup reports throttling: on a shared
# machine a round may get less than one core in all (then nothing is throttled, and the next round tries again).
CPU_ROUNDS = """
import json, multiprocessing, time
def stat():
    fields = dict(line.split() for line in open("/sys/fs/cgroup/cpu/cpu.stat"))
    return int(fields["nr_throttled"]), int(open("/sys/fs/cgroup/cpuacct/cpuacct.usage").read())
def spin():
    end = time.monotonic() + 3
    while time.monotonic() < end:
        pass
rounds = []
for _ in range(20):
    throttled0, usage0 = stat()
    start = time.monotonic()
    workers = [multiprocessing.Process(target=spin) for _ in range(4)]
    for w in workers: w.start()
    for w in workers: w.join()
    wall = time.monotonic() - start
    throttled1, usage1 = stat()
    rounds.append({"throttled": throttled1 - throttled0, "cores_used": (usage1 - usage0) / 1e9 / wall})
    if rounds[-1]["throttled"]:
        break
print(json.dumps(rounds))
"""


def test_cpu_quota_is_measured(cfacility, chub):
    start_server(chub, "alice")
    rounds = json.loads(in_server(cfacility, "alice", CPU_ROUNDS))
    print(f"four busy processes under a 1-core profile: {rounds}")
    assert rounds[-1]["throttled"] > 0, rounds
    assert max(r["cores_used"] for r in rounds) <= 1.1, rounds


def test_server_cannot_read_other_homes_or_the_state_folder(cfacility, chub):
    start_server(chub, "alice")
    start_server(chub, "bob")
    marker = "bob-private-" + os.urandom(4).hex()
    (cfacility.state_dir / "homes" / "bob" / marker).write_text("bob's")
    found = json.loads(
        in_server(
            cfacility,
            "alice",
            f"""
            import json, os
            wanted = {{{marker!r}, "secrets.json", "accounts.json", "jupyterhub.sqlite", "gateway.sqlite",
                      "podman.sock"}}
            hits = []
            for root, dirs, files in os.walk("/", onerror=lambda e: None):
                if root in ("/proc", "/sys", "/dev"):
                    dirs[:] = []
                    continue
                hits += [os.path.join(root, f) for f in files + dirs if f in wanted]
            print(json.dumps({{"hits": hits, "state": os.path.exists({str(cfacility.state_dir)!r})}}))
            """,
        )
    )
    assert found == {"hits": [], "state": False}


def test_server_reaches_the_hub_and_proxy_but_no_internal_port(cfacility, chub):
    start_server(chub, "alice")
    start_server(chub, "bob")
    bob_server = chub.api("GET", "/users/bob").json()["servers"][""]["url"]
    bob_port = int(re.search(r":(\d+)$", _route_target(cfacility, "/user/bob")).group(1))
    p = cfacility.ports
    targets = {
        "public": ("10.0.2.2", p.public),
        "hub": ("10.0.2.2", p.hub),
        "gateway scheduler proxy": ("10.0.2.2", p.gateway_tcp),
        "gateway API": ("10.0.2.2", p.gateway_api),
        "gateway web": ("10.0.2.2", p.gateway_web),
        "proxy API": ("10.0.2.2", p.proxy_api),
        "bob's server": ("10.0.2.2", bob_port),
        "gateway web on the container's loopback": ("127.0.0.1", p.gateway_web),
        "ServiceX's S3": ("10.0.2.2", p.s3),
        "ServiceX service": ("10.0.2.2", p.servicex),
        "SeaweedFS master": ("10.0.2.2", p.seaweed_master),
        "SeaweedFS filer": ("10.0.2.2", p.seaweed_filer),
        "SeaweedFS volume": ("10.0.2.2", p.seaweed_volume),
    }
    reached = json.loads(
        in_server(
            cfacility,
            "alice",
            f"""
            import json, socket
            out = {{}}
            for name, (host, port) in {targets!r}.items():
                try:
                    socket.create_connection((host, port), timeout=3).close()
                    out[name] = True
                except OSError:
                    out[name] = False
            print(json.dumps(out))
            """,
        )
    )
    assert bob_server == "/user/bob/"
    assert reached == {
        "public": True,
        "hub": True,
        "gateway scheduler proxy": True,
        "gateway API": False,
        "gateway web": False,
        "proxy API": False,
        "bob's server": False,
        "gateway web on the container's loopback": False,
        "ServiceX's S3": True,  # the client downloads its results (with its own user's keys)
        "ServiceX service": False,  # only through the hub's proxy
        "SeaweedFS master": False,
        "SeaweedFS filer": False,  # it would serve every bucket's files to anyone
        "SeaweedFS volume": False,
    }


def _route_target(facility: LocalFacility, prefix: str) -> str:
    """Where the proxy sends `prefix` (the address the user's server container is published on)."""
    token = facility.secrets()["proxy_token"]
    routes = requests.get(
        f"http://{facility.internal_ip}:{facility.ports.proxy_api}/api/routes",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    ).json()
    return routes[prefix]["target"]


def test_bob_dashboard_by_no_route_from_alice(cfacility, chub):
    start_server(chub, "alice")
    alice_token = chub.user_token("alice")
    with gateway_for(cfacility, chub.user_token("bob")) as gateway, gateway.new_cluster() as cluster:
        cluster.scale(1)
        pod = container_name(cfacility.secrets()["facility_id"], "dask", cluster.name)
        bindings = json.loads(podman("pod", "inspect", pod).stdout)["InfraConfig"]["PortBindings"]
        published = {port: int(b[0]["HostPort"]) for port, b in bindings.items()}
        assert {b[0]["HostIp"] for b in bindings.values()} == {"127.0.0.2"}
        p = cfacility.ports
        path = f"/services/dask-gateway/clusters/{cluster.name}/status"
        urls = {
            "public proxy": f"http://10.0.2.2:{p.public}{path}",
            "dashboard guard": f"http://10.0.2.2:{p.guard}{path}",
            "gateway web": f"http://10.0.2.2:{p.gateway_web}{path}",
            "scheduler's dashboard port": f"http://10.0.2.2:{published['8787/tcp']}/status",
        }
        answers = json.loads(
            in_server(
                cfacility,
                "alice",
                f"""
                import json, urllib.request, urllib.error
                out = {{}}
                for name, url in {urls!r}.items():
                    request = urllib.request.Request(url, headers={{"Authorization": "token {alice_token}"}})
                    try:
                        out[name] = urllib.request.urlopen(request, timeout=10).status
                    except urllib.error.HTTPError as err:
                        out[name] = err.code
                    except OSError:
                        out[name] = "unreachable"
                print(json.dumps(out))
                """,
            )
        )
        assert answers == {
            "public proxy": 403,
            "dashboard guard": 403,
            "gateway web": "unreachable",
            "scheduler's dashboard port": "unreachable",
        }
        # through alice's own server (jupyter-server-proxy), as a browser signed in as alice would ask
        session, _ = http_login(cfacility, "alice")
        for port, tail in ((p.gateway_web, path), (published["8787/tcp"], "/status"), (p.guard, path)):
            response = session.get(f"{cfacility.url}/user/alice/proxy/{port}{tail}", timeout=60)
            assert response.status_code != 200 or cluster.name not in response.text, (
                port,
                response.status_code,
            )


def wait_for_idle_kernel(page, timeout: float = 90) -> None:
    """Wait for the notebook's kernel to be idle, dismissing JupyterLab's start-up error dialogs (the notebook image
    has no git: jupyterlab-git's server extension reports it in a modal dialog that hides the kernel status)."""
    idle = page.get_by_text("Python 3 (ipykernel) | Idle")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if idle.is_visible():
            return
        dismiss = page.locator(".jp-Dialog").get_by_role("button", name="Dismiss")
        if dismiss.count():
            dismiss.first.click()
            page.click(".jp-Notebook .jp-Cell .cm-content")
        time.sleep(0.5)
    idle.wait_for(timeout=1000)


def test_notebook_past_its_memory_is_killed_and_jupyterlab_says_so(browser, cfacility, chub, screenshots):
    home = cfacility.state_dir / "homes" / "alice"
    home.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(OOM_CELL)]
    nbformat.write(notebook, home / OOM_NOTEBOOK)
    os.chown(home / OOM_NOTEBOOK, 1000, 1000)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, cfacility, "alice")
        page.wait_for_selector(LAB_READY, timeout=120_000)
        page.goto(f"{cfacility.url}/user/alice/lab/tree/{OOM_NOTEBOOK}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
        wait_for_idle_kernel(page)
        page.click(".jp-Notebook .jp-Cell .cm-content")
        page.get_by_role("menuitem", name="Run").click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        dialog = page.locator(".jp-Dialog").filter(
            has_text=re.compile("appears to have died|Kernel Restarting")
        )
        dialog.wait_for(timeout=120_000)
        page.screenshot(path=screenshots / "containers-kernel-killed.png")
        assert "allocated" not in page.locator(".jp-OutputArea").inner_text()
    finally:
        page.screenshot(path=screenshots / "containers-alice-last.png")
        context.close()
    # the server itself lives on: only the kernel went over the profile
    assert chub.api("GET", "/users/alice").json()["servers"][""]["ready"]


def test_worker_over_its_memory_is_restarted_and_the_computation_ends_right(cfacility, chub):
    import dask.array as da

    def leak_once(x: int) -> int:
        from distributed import Variable, get_client

        flag = Variable("leaked", client=get_client())
        if flag.get(timeout=5) == "no":
            flag.set("yes")
            import numpy as np

            hog = np.ones(900_000_000 // 8)  # past the 512 MiB worker
            return int(hog.sum())
        return x * 2

    token = chub.user_token("alice")
    with gateway_for(cfacility, token) as gateway, gateway.new_cluster(worker_memory=0.5) as cluster:
        cluster.scale(2)
        client = cluster.get_client()
        client.wait_for_workers(2, timeout=180)
        pod = container_name(cfacility.secrets()["facility_id"], "dask", cluster.name)
        workers = podman("ps", "--filter", f"pod={pod}", "--format", "{{.Names}}").stdout.split()
        limits = {
            json.loads(podman("inspect", name).stdout)[0]["HostConfig"]["Memory"]
            for name in workers
            if "-worker-" in name
        }
        assert limits == {2**29}
        before = set(client.scheduler_info()["workers"])
        from distributed import Variable

        Variable("leaked", client=client).set("no")
        assert client.submit(leak_once, 21, pure=False).result(timeout=240) == 42
        assert da.arange(1_000_000, chunks=100_000).sum().compute() == 499999500000
        client.wait_for_workers(2, timeout=180)
        after = set(client.scheduler_info()["workers"])
        assert before - after, "a worker was restarted (its address changed)"
        assert len(after) == 2


def test_down_leaves_nothing_and_state_survives(cfacility, chub):
    start_server(chub, "alice")
    in_server(cfacility, "alice", "open('kept.txt', 'w').write('still here')")
    # a cluster left running: `af down` must remove its pod (and the pod's unlabelled infra container) too
    with gateway_for(cfacility, chub.user_token("alice")) as gateway:
        gateway.new_cluster(shutdown_on_close=False).close()
    facility_id = cfacility.secrets()["facility_id"]
    ids = podman("ps", "--all", "--filter", f"label={FACILITY_LABEL}={facility_id}", "--format", "{{.ID}}")
    assert ids.stdout.split(), "the facility's containers are labelled"
    cfacility.down()
    left = podman(
        "ps", "--all", "--filter", f"label={FACILITY_LABEL}={facility_id}", "--format", "{{.Names}}"
    )
    assert left.stdout.split() == []
    assert podman("pod", "ps", "--filter", f"label={FACILITY_LABEL}={facility_id}", "-q").stdout.split() == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(cfacility.state_dir) not in mounts
    assert not any(container_id[:12] in mounts for container_id in ids.stdout.split())
    assert marked_processes(facility_id) == []
    commands = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                commands.append((entry / "cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    assert not [c for c in commands if str(cfacility.state_dir) in c or facility_id in c]
    cfacility.up()
    start_server(chub, "alice")
    assert in_server(cfacility, "alice", "print(open('kept.txt').read())").strip() == "still here"
