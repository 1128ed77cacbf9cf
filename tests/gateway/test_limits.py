"""Per-user totals of dask-gateway resources: the rules, the gateway configuration for both backends, and
the Kubernetes path on KubeBackend's own cluster cache (no API server can run here; the local backend is
exercised end to end in tests/e2e/test_gateway_user_limits.py)."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from dask_gateway_server.backends.kubernetes import KubeBackend
from dask_gateway_server.backends.kubernetes.utils import Informer
from dask_gateway_server.models import User
from dask_gateway_server.utils import Flag
from dask_gateway_server.workqueue import WorkQueue
from traitlets.config import Config

from af.gateway.limits import (
    ClusterShape,
    Holding,
    UserLimits,
    check_new_cluster,
    grant_workers,
    limit_per_user,
)
from af.gateway.local_backend import RecoveringLocalBackend
from af.gateway.server_config import configure_gateway_server
from hub_config.settings import Settings, validate_settings

GIB = 2**30
LIMITS = UserLimits(clusters=2, workers=3, cores=7, memory=9 * GIB)
SMALL = ClusterShape(worker_cores=1, worker_memory=GIB, scheduler_cores=1, scheduler_memory=2 * GIB)
TWO_CORES = ClusterShape(worker_cores=2, worker_memory=GIB, scheduler_cores=1, scheduler_memory=2 * GIB)
TWO_GIB = ClusterShape(worker_cores=1, worker_memory=2 * GIB, scheduler_cores=1, scheduler_memory=2 * GIB)
BIG_MEMORY = ClusterShape(worker_cores=1, worker_memory=3 * GIB, scheduler_cores=1, scheduler_memory=2 * GIB)


def settings(limits: dict) -> Settings:
    return validate_settings(
        {
            "platform": "kubernetes",
            "hub": {"public_url": "https://af.example.org"},
            "auth": {"client_id": "af-hub", "issuer": "https://iam.example.org"},
            "gateway": {"limits": limits},
        }
    )


@pytest.mark.parametrize(
    ("shape", "requested", "others", "workers", "limit"),
    [
        (SMALL, 2, [], 2, None),  # fits
        (SMALL, 2, [Holding(SMALL, 2)], 1, "max_workers"),  # 3 workers in all
        (SMALL, 5, [], 3, "max_workers"),
        (TWO_CORES, 2, [Holding(TWO_CORES, 1)], 1, "max_cores"),  # 7 - (1 + 2) - 1 = 3 cores: one worker
        (TWO_GIB, 2, [Holding(BIG_MEMORY, 1)], 1, "max_memory"),  # 9 - (2 + 3) - 2 GiB: one 2 GiB worker
        (SMALL, 2, [Holding(SMALL, 3)], 0, "max_workers"),  # nothing left
        (SMALL, 0, [Holding(SMALL, 3)], 0, None),  # scaling to 0 is always allowed
    ],
)
def test_grant_counts_the_users_other_clusters(shape, requested, others, workers, limit):
    grant = grant_workers(LIMITS, shape, requested, others)
    assert (grant.workers, grant.limit) == (workers, limit)


def test_grant_explains_the_limit():
    grant = grant_workers(LIMITS, TWO_GIB, 2, [Holding(BIG_MEMORY, 1)])
    message = grant.explain("alice", "c1")
    assert message.startswith("cluster c1 of alice: 1 of 2 requested workers granted")
    assert "9.00 GiB of memory (gateway.limits.max_memory" in message
    assert "7.00 GiB are held" in message


def test_new_cluster_needs_room_for_its_scheduler():
    assert check_new_cluster(LIMITS, "alice", SMALL, active=1, others=[Holding(SMALL, 2)]) is None
    assert "gateway.limits.max_clusters = 2" in check_new_cluster(
        LIMITS, "alice", SMALL, active=2, others=[Holding(SMALL, 0), Holding(SMALL, 0)]
    )
    assert "gateway.limits.max_cores" in check_new_cluster(
        LIMITS, "alice", SMALL, active=1, others=[Holding(TWO_CORES, 3)]
    )
    assert "gateway.limits.max_memory" in check_new_cluster(
        LIMITS, "alice", SMALL, active=1, others=[Holding(BIG_MEMORY, 2)]
    )


@pytest.mark.parametrize("backend_class", [RecoveringLocalBackend, KubeBackend])
def test_gateway_configuration_sets_the_user_totals(backend_class):
    c = Config()
    given = {"max_clusters": 3, "max_workers": 10, "max_cores": 12.5, "max_memory": "20G"}
    configure_gateway_server(c, settings(given), "http://hub:8081/hub/api", backend_class=backend_class)
    backend = c.DaskGateway.backend_class(config=c)
    assert isinstance(backend, backend_class)
    assert (backend.user_max_clusters, backend.user_max_workers) == (3, 10)
    assert (backend.user_max_cores, backend.user_max_memory) == (12.5, 20 * GIB)


def test_clusters_run_the_dask_command_of_distributed_2026():
    """dask-gateway's default scheduler/worker commands (dask-scheduler, dask-worker) are gone from distributed
    2026: a KubeBackend scheduler pod of the notebook image failed with 'exec: "dask-scheduler": executable file
    not found' (tests/cluster/test_kube_gateway.py)."""
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig

    c = Config()
    configure_gateway_server(c, settings({}), "http://hub:8081/hub/api", backend_class=KubeBackend)
    config = KubeClusterConfig(config=c)
    assert (config.scheduler_cmd, config.worker_cmd) == (["dask", "scheduler"], ["dask", "worker"])
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "dask").exists() and not (bin_dir / "dask-scheduler").exists()


def test_other_backends_are_refused_by_name():
    from dask_gateway_server.backends.base import Backend

    with pytest.raises(TypeError, match=r"not dask_gateway_server\.backends\.base\.Backend"):
        limit_per_user(Backend)


def kube_backend(limits: dict):
    """LimitedKubeBackend with the in-memory state its setup() builds (cluster cache fed by its informer)."""
    c = Config()
    configure_gateway_server(c, settings(limits), "http://hub:8081/hub/api", backend_class=KubeBackend)
    c.KubeBackend.gateway_instance = "af-test"  # the chart sets it from the release name
    backend = c.DaskGateway.backend_class(config=c)
    backend.clusters = {}
    backend.username_to_clusters = defaultdict(dict)
    backend.cluster_waiters = defaultdict(Flag)
    backend.queue = WorkQueue()
    backend.informer = Informer(
        parent=backend, name="cluster", on_update=backend.on_cluster_event, on_delete=backend.on_cluster_event
    )
    backend.informer.cache = {}  # what Informer.start() sets up before it lists and watches the API
    return backend


async def add_cluster(backend, username: str, replicas: int, **options) -> str:
    """A DaskCluster object as the gateway creates it, seen by the informer as the controller reports it."""
    user = User(username, groups=[], admin=False)
    requested, config = await backend.process_cluster_options(user, options)
    obj = backend.make_cluster_object(username, requested, config)
    obj["metadata"].update(namespace="af", creationTimestamp="2026-11-22T04:00:00Z")
    obj["spec"]["replicas"] = replicas
    obj["status"] = {"phase": "Running"}
    backend.informer.handle(obj)
    name = backend.get_cluster_name(obj)
    await backend.sync_cluster(name)
    return name


def test_kubernetes_totals_count_replicas_of_the_users_clusters():
    async def scenario():
        backend = kube_backend({"max_clusters": 2, "max_workers": 5, "max_cores": 40, "max_memory": "400G"})
        first = await add_cluster(backend, "alice", replicas=3)
        second = await add_cluster(backend, "alice", replicas=0)
        await add_cluster(backend, "bob", replicas=4)
        held = await backend.holdings("alice", exclude=second)
        grant = await backend.grant(await backend.get_cluster(second), 4)
        refused = await backend.list_clusters(username="alice")
        # after this gateway granted fewer replicas to the first cluster, the second may have more
        backend.granted[first] = 1
        regrant = await backend.grant(await backend.get_cluster(second), 4)
        return held, grant, len(refused), regrant

    held, grant, active, regrant = asyncio.run(scenario())
    assert [holding.workers for holding in held] == [3]
    assert (grant.workers, grant.limit) == (2, "max_workers")
    assert active == 2
    assert (regrant.workers, regrant.limit) == (4, None)


def test_kubernetes_cluster_start_refused_beyond_the_cores_total():
    async def scenario():
        backend = kube_backend({"max_clusters": 3, "max_workers": 50, "max_cores": 7, "max_memory": "400G"})
        await add_cluster(backend, "alice", replicas=3, worker_cores=2)  # 1 + 3 * 2 = 7 cores
        with pytest.raises(Exception, match=r"gateway\.limits\.max_cores"):
            await backend.start_cluster(User("alice", groups=[], admin=False), {})

    asyncio.run(scenario())
