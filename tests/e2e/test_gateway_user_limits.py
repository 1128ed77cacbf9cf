"""`gateway.limits` are totals over all clusters of one user, on a local facility of its own (real hub, real
dask-gateway with the container backend, real dask workers in containers): worker counts are those the schedulers
see.

Limits of this facility: 2 clusters, 3 workers, 7 cores, 9 GiB per user. Each scheduler takes 1 core and
2 GiB (dask-gateway's defaults); workers default to 1 core and 1 GiB (gateway.worker of the local settings).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from dask_gateway import GatewayCluster, GatewayWarning

from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility
from tests.e2e.conftest import BUILD, Hub, container_mode, gateway_for

pytestmark = pytest.mark.e2e

WAIT = 120  # seconds; a trimmed request is re-examined at the cluster's next heartbeat (every 15 s)
STOPPED = 5  # dask-gateway's JobStatus.STOPPED, as stored in its database


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFacility]:
    facility = LocalFacility(
        tmp_path_factory.mktemp("limits-state"),
        ports=Ports.free(),
        tutorials=tmp_path_factory.mktemp("no-tutorials"),
        settings_overrides={
            "gateway.limits": {"max_clusters": 2, "max_workers": 3, "max_cores": 7, "max_memory": "9G"}
        },
        containers=container_mode(),
    )
    try:
        facility.up()
        yield facility
    finally:
        facility.down()
        BUILD.mkdir(parents=True, exist_ok=True)
        log = facility.state_dir / "logs" / "gateway.log"
        if log.exists():
            shutil.copyfile(log, BUILD / "limits-gateway.log")


@pytest.fixture(scope="module")
def hub(limited: LocalFacility) -> Hub:
    return Hub(limited)


def workers_seen(cluster: GatewayCluster) -> int:
    """Workers connected to the cluster's scheduler."""
    return len(cluster.get_client().scheduler_info(n_workers=-1)["workers"])


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def workers_in_gateway(facility: LocalFacility, cluster_name: str) -> int:
    """Workers the gateway has created for a cluster and not yet stopped (pending ones included)."""
    with sqlite3.connect(facility.state_dir / "gateway" / "gateway.sqlite") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM workers JOIN clusters ON workers.cluster_id = clusters.id "
            "WHERE clusters.name = ? AND workers.status < ?",
            (cluster_name, STOPPED),
        ).fetchone()
    return count


def cluster_stopped(facility: LocalFacility, cluster_name: str) -> bool:
    """The gateway has stopped the cluster (a stopping cluster's scheduler still counts against its user)."""
    with sqlite3.connect(facility.state_dir / "gateway" / "gateway.sqlite") as db:
        (status,) = db.execute("SELECT status FROM clusters WHERE name = ?", (cluster_name,)).fetchone()
    return status >= STOPPED


def gateway_log(facility: LocalFacility) -> str:
    return (facility.state_dir / "logs" / "gateway.log").read_text()


def test_workers_are_a_total_over_a_users_clusters(limited, hub):
    with gateway_for(limited, hub.user_token("alice")) as gateway:
        first, second = gateway.new_cluster(), gateway.new_cluster()
        try:
            first.scale(2)
            first.get_client().wait_for_workers(2, timeout=WAIT)
            with pytest.warns(
                GatewayWarning, match=r"1 of 2 requested workers.*gateway\.limits\.max_workers"
            ):
                second.scale(2)
            second.get_client().wait_for_workers(1, timeout=WAIT)
            assert workers_in_gateway(limited, second.name) == 1
            assert (workers_seen(first), workers_seen(second)) == (2, 1)
            assert f"cluster {second.name} of alice: 1 of 2 requested workers granted" in gateway_log(limited)

            # another user's clusters do not count against alice, nor hers against them
            with gateway_for(limited, hub.user_token("carol")) as other_gateway:
                other = other_gateway.new_cluster()
                try:
                    other.scale(3)
                    other.get_client().wait_for_workers(3, timeout=WAIT)
                    assert workers_seen(other) == 3
                finally:
                    other.shutdown()

            # the second cluster keeps its request and grows once the first releases its workers
            first.scale(0)
            wait_until(
                lambda: workers_seen(second) == 2, "second cluster did not grow after the first shrank"
            )
            assert workers_seen(first) == 0
            assert workers_in_gateway(limited, second.name) == 2
        finally:
            first.shutdown()
            second.shutdown()


def _second_cluster_gets_one_worker(limited, first, second, limit: str) -> None:
    """The first cluster holds one worker; the second asks for two and gets one, with a warning naming `limit`."""
    first.scale(1)
    first.get_client().wait_for_workers(1, timeout=WAIT)
    with pytest.warns(GatewayWarning, match=rf"1 of 2 requested workers.*gateway\.limits\.{limit}"):
        second.scale(2)
    second.get_client().wait_for_workers(1, timeout=WAIT)
    assert workers_in_gateway(limited, second.name) == 1
    assert (workers_seen(first), workers_seen(second)) == (1, 1)


def test_cores_are_a_total_and_schedulers_count(limited, hub):
    with gateway_for(limited, hub.user_token("bob")) as gateway:
        first = gateway.new_cluster(worker_cores=2)
        second = gateway.new_cluster(worker_cores=2)
        try:
            # 7 cores: 2 schedulers and the first cluster's worker hold 4, room for one more 2-core worker
            _second_cluster_gets_one_worker(limited, first, second, "max_cores")
        finally:
            second.shutdown()
        wait_until(lambda: cluster_stopped(limited, second.name), "second cluster did not stop")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", GatewayWarning)  # granted in full: no warning
                first.scale(3)  # 1 + 3 * 2 = 7 cores
            wait_until(lambda: workers_seen(first) == 3, "first cluster did not grow to 3 workers")
            with pytest.raises(Exception, match=r"scheduler needs 1 core.*gateway\.limits\.max_cores"):
                gateway.new_cluster()
        finally:
            first.shutdown()


def test_memory_is_a_total(limited, hub):
    with gateway_for(limited, hub.user_token("dave")) as gateway:
        first = gateway.new_cluster(worker_memory=3)
        second = gateway.new_cluster(worker_memory=2)
        try:
            # 9 GiB: 2 schedulers (4 GiB) and the 3 GiB worker hold 7, room for one 2 GiB worker
            _second_cluster_gets_one_worker(limited, first, second, "max_memory")
        finally:
            first.shutdown()
            second.shutdown()


def test_adaptive_scaling_is_capped_by_the_total(limited, hub):
    with gateway_for(limited, hub.user_token("erin")) as gateway:
        first, second = gateway.new_cluster(), gateway.new_cluster()
        try:
            first.scale(2)
            first.get_client().wait_for_workers(2, timeout=WAIT)
            with pytest.warns(GatewayWarning, match=r"gateway\.limits\.max_workers"):
                second.adapt(minimum=3, maximum=3)
            second.get_client().wait_for_workers(1, timeout=WAIT)
            assert workers_in_gateway(limited, second.name) == 1
            assert workers_seen(second) == 1
        finally:
            first.shutdown()
            second.shutdown()
