"""The service's transforms on the facility's dask-gateway (``--gateway``): a cluster of the service's own,
created with the service's hub token through a real gateway (the local facility's configuration, hub
authentication, per-user limits), adapting to the work, surviving lost workers, a stopped cluster and a gateway
restart; results equal direct reads."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servicex.conftest import User, _user
from tests.servicex.gateway_server import start_gateway
from tests.servicex.service_process import start_service
from tests.servicex.test_delivery import COLUMNS, CUT, _direct, _spec

LIMITS = {"max_workers": 2, "max_clusters": 1}  # per gateway user; the service asks for up to 4 workers
QUERY = {"treename": "CollectionTree", "filter_name": COLUMNS, "cut": CUT}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, hub, hub_tokens):
    server = start_gateway(tmp_path_factory.mktemp("gateway"), hub, hub_tokens, LIMITS)
    yield server
    service = server.gateway(hub_tokens.servicex)
    for report in service.list_clusters():  # left by a test that failed (the stopped service stops its own)
        service.stop_cluster(report.name)
    server.stop()


@pytest.fixture(scope="module")
def gateway_service(tmp_path_factory, hub, hub_tokens, seaweedfs, gateway):
    service = start_service(
        tmp_path_factory.mktemp("servicex-gateway"), hub, seaweedfs, None, "--gateway",
        "--gateway-address", gateway.address, "--gateway-proxy-address", gateway.proxy_address,
        "--max-workers", "4", "--retries", "1", "--retry-delay", "1",
        environment={"JUPYTERHUB_API_TOKEN": hub_tokens.servicex},
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def dave(hub, gateway_service, tmp_path_factory) -> User:
    return _user(hub, gateway_service, tmp_path_factory, "dave")


class ServiceCluster:
    """The service's cluster seen with the service's token, as an operator would look at it."""

    def __init__(self, gateway, token: str):
        self.gateway = gateway.gateway(token)
        self.client = self.cluster = None

    def name(self) -> str:
        [report] = self.gateway.list_clusters()  # one cluster of the service's own
        return report.name

    def connect(self):
        if self.client is None or self.client.status != "running":
            self.close_cluster()
            self.cluster = self.gateway.connect(self.name())
            self.client = self.cluster.get_client(set_as_default=False)
        return self.client

    def close_cluster(self) -> None:
        # the client only: a synchronous Gateway closes itself when collected, and fails closing twice
        if self.client is not None:
            self.client.close()
        self.cluster = self.client = None

    def workers(self) -> int:
        return len(self.connect().nthreads())

    def wait_for(self, condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
            time.sleep(0.3)

    def busy_worker(self) -> str:
        """The address of a worker running a task of a request (waits for one)."""
        found: list[str] = []

        def running() -> bool:
            found[:] = [w for w, keys in self.connect().processing().items() if keys]
            return bool(found)

        self.wait_for(running, "a transform running on a worker")
        return found[0]

    def close(self) -> None:
        self.close_cluster()


@pytest.fixture
def service_cluster(gateway, hub_tokens):
    cluster = ServiceCluster(gateway, hub_tokens.servicex)
    yield cluster
    cluster.close()


def _deliver_in_thread(user: User, spec: dict) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["delivered"] = user.deliver(spec)
        except BaseException as error:  # reported by the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _assert_equal_direct_reads(paths: list[str], files: list[str]) -> None:
    import awkward as ak

    assert len(paths) == len(files)
    for idx, source in enumerate(files):
        [path] = [p for p in paths if Path(p).name.startswith(f"{idx:05d}_")]
        got = ak.from_parquet(path)
        for column, expected in _direct(source, COLUMNS).items():
            assert ak.to_list(got[column]) == ak.to_list(expected), (path, column)


def _files(r21_path, r22_path, count: int) -> list[str]:
    return [str(r22_path if i % 2 else r21_path) for i in range(count)]


def test_delivers_on_the_services_own_cluster_scaled_to_the_work_within_the_limits(
    dave, gateway_service, service_cluster, r21_path, r22_path
):
    service_cluster.wait_for(lambda: service_cluster.workers() == 0, "the idle cluster at 0 workers")
    files = _files(r21_path, r22_path, 24)  # 24 tasks of unknown length: adaptive asks for 3 workers
    seen: list[int] = []
    thread, outcome = _deliver_in_thread(dave, _spec("scaled", files, QUERY))
    while thread.is_alive():
        seen.append(service_cluster.workers())
        time.sleep(0.3)
    assert "error" not in outcome, outcome.get("error")
    _assert_equal_direct_reads(outcome["delivered"]["scaled"], files)
    print("workers seen during the request:", sorted(set(seen)))
    assert 1 <= max(seen) <= LIMITS["max_workers"], seen
    service_cluster.wait_for(lambda: service_cluster.workers() == 0, "the cluster back at 0 workers")
    # the service asked for 4 workers: the gateway's limits (2 workers) trimmed its cluster, and it says so
    assert "would exceed resource limit of 2 workers" in gateway_service.log.read_text()


def test_the_service_is_not_counted_against_a_physicists_limits(
    gateway, gateway_service, hub, service_cluster
):
    """With max_clusters 1 per user, the service's cluster leaves a physicist's one cluster possible."""
    assert service_cluster.name()
    erin = gateway.gateway(hub.user_token("erin"))
    cluster = erin.new_cluster()
    try:
        assert [r.name for r in erin.list_clusters()] == [cluster.name]
    finally:
        erin.stop_cluster(cluster.name)


def _deliver_interrupted(dave, service_cluster, name: str, files: list, interrupt) -> None:
    """Deliver `files` while `interrupt(a busy worker's address)` strikes mid-request; the request must end with
    results equal to direct reads."""
    thread, outcome = _deliver_in_thread(dave, _spec(name, files, QUERY))
    interrupt(service_cluster.busy_worker())
    thread.join(300)
    assert "error" not in outcome, outcome.get("error")
    _assert_equal_direct_reads(outcome["delivered"][name], files)


def test_a_worker_killed_mid_request_the_request_completes(dave, service_cluster, r21_path, r22_path):
    def kill(worker: str) -> None:  # workers of the local gateway are processes on this machine
        os.kill(service_cluster.connect().run(os.getpid, workers=[worker])[worker], signal.SIGKILL)

    # file lists differ between the tests: no request hits the cache
    _deliver_interrupted(dave, service_cluster, "killed-worker", _files(r21_path, r22_path, 12), kill)


def test_a_cluster_stopped_mid_request_a_new_one_finishes_it(
    dave, gateway_service, service_cluster, r21_path, r22_path
):
    first = service_cluster.name()
    _deliver_interrupted(
        dave,
        service_cluster,
        "stopped-cluster",
        _files(r21_path, r22_path, 10),
        lambda _: service_cluster.gateway.stop_cluster(first),
    )
    assert service_cluster.name() != first
    assert (
        f"started the service's dask-gateway cluster {service_cluster.name()}"
        in gateway_service.log.read_text()
    )


def test_a_gateway_restart_mid_request_the_request_completes(
    dave, gateway, service_cluster, r21_path, r22_path
):
    def restart(_: str) -> None:
        gateway.stop()
        gateway.start()

    before = service_cluster.name()
    _deliver_interrupted(dave, service_cluster, "gateway-restart", _files(r21_path, r22_path, 8), restart)
    assert service_cluster.name() == before  # the cluster survived the restart; the service kept it


def test_a_service_killed_mid_request_finds_its_cluster_again(
    dave, gateway_service, service_cluster, r21_path, r22_path
):
    def restart(_: str) -> None:
        gateway_service.kill()
        gateway_service.start()

    before = service_cluster.name()
    _deliver_interrupted(dave, service_cluster, "service-killed", _files(r21_path, r22_path, 6), restart)
    assert service_cluster.name() == before  # no second cluster: the restarted service took its own again
    assert f"using the service's dask-gateway cluster {before}" in gateway_service.log.read_text()
