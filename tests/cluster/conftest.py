"""The cluster fixture: started from the build cache by tools/cluster/up.sh, stopped by down.sh at the end."""

from __future__ import annotations

import json
import time

import pytest

from .cluster import REPO, REUSE, Cluster, HostState, build_dir, run_script


@pytest.fixture(scope="session")
def host_before() -> HostState:
    """The host's firewall, routes and kernel settings before the cluster starts. A cluster left running (by
    `make cluster` or a run that died) is stopped first: its kubelet's kernel settings are not the host's."""
    if not REUSE:
        run_script("down", 300)
    return HostState.capture()


@pytest.fixture(scope="session")
def cluster(host_before: HostState):
    """A running single-node cluster (warm start from the cache; the build, if needed, is timed apart).

    With CLUSTER_REUSE=1 (development: several test runs against one `make cluster`) a running cluster is used
    as it is and left running; otherwise the cluster is started fresh and removed at the end.
    """
    started = time.monotonic()
    folder = build_dir()
    build_seconds = time.monotonic() - started
    if REUSE:
        run_script("up", 900)  # returns at once when the cluster runs
        yield Cluster(folder / "bin")
        return
    run_script("down", 300)  # a previous run that died leaves nothing behind
    up_seconds = run_script("up", 900)
    record_bench(folder, build_seconds, up_seconds)
    yield Cluster(folder / "bin")
    run_script("down", 300)


def record_bench(folder, build_seconds: float, up_seconds: float) -> None:
    """build/bench/cluster.json: the cold build's time (recorded by build.sh) and this warm start's."""
    bench = REPO / "build" / "bench" / "cluster.json"
    bench.parent.mkdir(parents=True, exist_ok=True)
    cold = folder / "build-seconds"
    entry = {
        "kubernetes": folder.name.split("-")[1],
        # each module's compile time measured when it was built (empty Go build cache) + the images
        "cold_build_seconds": int(cold.read_text()) if cold.exists() else None,
        "build_seconds_this_run": round(build_seconds, 1),
        "warm_start_seconds": round(up_seconds, 1),
        "warm_start_means": "make cluster with the build cached: network namespace, etcd, control plane, "
        "containerd, kubelet, kube-proxy, node Ready, CoreDNS + enforcer + provisioner rolled out",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    bench.write_text(json.dumps(entry, indent=2) + "\n")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_cluster_down_leaves_nothing stops the cluster: it runs after every other test of tests/cluster."""
    last = [item for item in items if item.name == "test_cluster_down_leaves_nothing"]
    items[:] = [item for item in items if item not in last] + last
