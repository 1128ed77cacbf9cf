"""Per-user totals for dask-gateway: ``gateway.limits`` bound the sum over all of one user's clusters.

dask-gateway 2026.3 limits each cluster on its own (``ClusterConfig.cluster_max_*``). Here a backend subclass
made by `limit_per_user` adds totals per user, for the local backends and for KubeBackend alike:

- a new cluster is refused beyond ``max_clusters`` active clusters, or when its scheduler would not fit in the
  user's remaining cores or memory;
- every scheduler heartbeat carries the number of workers the cluster wants (after ``cluster.scale(n)`` or
  from adaptive scaling); the gateway grants at most what fits in the user's totals of workers, cores and
  memory, counting the user's other clusters (their schedulers, their running and pending workers, and the
  workers already granted to them but not yet started). A trimmed cluster grows when the user's other
  clusters release workers (they scale down or stop): on the database backends its scheduler asks again at
  every heartbeat (stopped or failed workers release their share); on Kubernetes schedulers heartbeat only
  when their own request changes (``--dg-heartbeat-period 0``), so the gateway remembers what each cluster
  asked for (also in an annotation of its DaskCluster, for a restarted gateway) and, when another cluster of
  the user shrinks or stops, patches the trimmed clusters' ``spec.replicas`` itself;
- ``scale``/``adapt`` answers carry the same explanation to the client (a ``GatewayWarning``), and the gateway
  logs it once per change.

Running workers are never stopped by this; requests are only trimmed.

Example:
    >>> limits = UserLimits(clusters=2, workers=3, cores=10, memory=16 * 2**30)
    >>> shape = ClusterShape(worker_cores=1, worker_memory=2**30, scheduler_cores=1, scheduler_memory=2**30)
    >>> grant_workers(limits, shape, requested=2, others=[Holding(shape, workers=2)]).workers
    1
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import DBBackendBase, JobStatus
from dask_gateway_server.models import ClusterStatus
from dask_gateway_server.utils import format_bytes
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from hub_config.settings_schema import GatewayLimits, memory_bytes

# Clusters whose scheduler may still hold resources (a stopping cluster holds them until it has stopped).
HOLDING = [ClusterStatus.PENDING, ClusterStatus.RUNNING, ClusterStatus.STOPPING]
ACTIVE = [ClusterStatus.PENDING, ClusterStatus.RUNNING]
# on a DaskCluster: the workers its scheduler last asked for (KubeWorkerCount)
REQUESTED_ANNOTATION = "af.gateway/requested-workers"
_EPSILON = 1e-9


@dataclass(frozen=True)
class UserLimits:
    """Totals one user's clusters may use together (``gateway.limits``); memory in bytes."""

    clusters: int
    workers: int
    cores: float
    memory: int

    @classmethod
    def from_settings(cls, limits: GatewayLimits) -> UserLimits:
        """From the validated facility settings' ``gateway.limits``.

        Example:
            >>> UserLimits.from_settings(GatewayLimits(max_clusters=2, max_workers=4, max_cores=5,
            ...                                        max_memory="8G")).memory
            8589934592
        """
        return cls(
            clusters=limits.max_clusters,
            workers=limits.max_workers,
            cores=float(limits.max_cores),
            memory=memory_bytes(limits.max_memory),
        )


@dataclass(frozen=True)
class ClusterShape:
    """Resources of one scheduler and of each worker of a cluster (from its dask-gateway ClusterConfig)."""

    worker_cores: float
    worker_memory: int
    scheduler_cores: float
    scheduler_memory: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClusterShape:
        """From a cluster's serialised ``ClusterConfig`` (``cluster.config`` on the gateway)."""
        return cls(
            worker_cores=float(config["worker_cores"]),
            worker_memory=int(config["worker_memory"]),
            scheduler_cores=float(config["scheduler_cores"]),
            scheduler_memory=int(config["scheduler_memory"]),
        )


@dataclass(frozen=True)
class Holding:
    """What one of a user's clusters holds: its scheduler and `workers` workers (pending ones included)."""

    shape: ClusterShape
    workers: int

    @property
    def cores(self) -> float:
        return self.shape.scheduler_cores + self.workers * self.shape.worker_cores

    @property
    def memory(self) -> int:
        return self.shape.scheduler_memory + self.workers * self.shape.worker_memory


@dataclass(frozen=True)
class Grant:
    """How many of the `requested` workers a cluster gets, and the setting that stopped more (if any)."""

    requested: int
    workers: int
    limit: str | None
    allowed: float | int = 0
    held_elsewhere: float | int = 0

    def explain(self, username: str, cluster_name: str) -> str:
        """A message for the gateway log and the client naming the limit, e.g. for a trimmed scale request."""
        if self.limit is None:
            return f"cluster {cluster_name} of {username}: {self.workers} workers granted"
        granted = (
            f"cluster {cluster_name} of {username}: "
            f"{self.workers} of {self.requested} requested workers granted"
        )
        if self.limit == "max_workers":
            return (
                f"{granted}: all clusters of {username} together may run {self.allowed:g} workers "
                f"(gateway.limits.max_workers) and its other clusters hold {self.held_elsewhere:g}; "
                f"more workers start when they are released"
            )
        if self.limit == "max_memory":
            allowed = f"{format_bytes(int(self.allowed))} of memory"
            held = format_bytes(int(self.held_elsewhere))
        else:
            allowed, held = f"{self.allowed:g} cores", f"{self.held_elsewhere:g}"
        return (
            f"{granted}: all clusters of {username} together may use {allowed} "
            f"(gateway.limits.{self.limit}, schedulers included) and {held} are held by its other clusters "
            f"and this cluster's scheduler; more workers start when they are released"
        )


def _sum(holdings: Sequence[Holding], attribute: str) -> float:
    return sum(getattr(holding, attribute) for holding in holdings)


def grant_workers(
    limits: UserLimits, shape: ClusterShape, requested: int, others: Sequence[Holding]
) -> Grant:
    """The workers a cluster of `shape` may have when the user's other clusters hold `others`.

    Example:
        >>> limits = UserLimits(clusters=2, workers=8, cores=4, memory=64 * 2**30)
        >>> shape = ClusterShape(worker_cores=2, worker_memory=2**30, scheduler_cores=1,
        ...                      scheduler_memory=2**30)
        >>> grant = grant_workers(limits, shape, requested=3, others=[])
        >>> grant.workers, grant.limit
        (1, 'max_cores')
    """
    used_cores = _sum(others, "cores") + shape.scheduler_cores
    used_memory = int(_sum(others, "memory")) + shape.scheduler_memory
    used_workers = int(_sum(others, "workers"))
    room = {"max_workers": limits.workers - used_workers}
    if shape.worker_cores > 0:
        room["max_cores"] = math.floor((limits.cores - used_cores) / shape.worker_cores + _EPSILON)
    if shape.worker_memory > 0:
        room["max_memory"] = (limits.memory - used_memory) // shape.worker_memory
    limit = min(room, key=room.__getitem__)
    if room[limit] >= requested:
        return Grant(requested=requested, workers=requested, limit=None)
    allowed = {"max_workers": limits.workers, "max_cores": limits.cores, "max_memory": limits.memory}
    held = {"max_workers": used_workers, "max_cores": used_cores, "max_memory": used_memory}
    return Grant(
        requested=requested,
        workers=max(0, room[limit]),
        limit=limit,
        allowed=allowed[limit],
        held_elsewhere=held[limit],
    )


def check_new_cluster(
    limits: UserLimits, username: str, shape: ClusterShape, active: int, others: Sequence[Holding]
) -> str | None:
    """Why `username` may not start one more cluster of `shape` (None if they may).

    Example:
        >>> limits = UserLimits(clusters=2, workers=8, cores=4, memory=64 * 2**30)
        >>> shape = ClusterShape(worker_cores=1, worker_memory=2**30, scheduler_cores=1,
        ...                      scheduler_memory=2**30)
        >>> check_new_cluster(limits, "alice", shape, active=1, others=[Holding(shape, workers=3)])[:39]
        'alice cannot start another cluster: its'
    """
    if active >= limits.clusters:
        return (
            f"{username} already has {active} active clusters "
            f"(limit gateway.limits.max_clusters = {limits.clusters}); stop one first"
        )
    cores = _sum(others, "cores")
    if cores + shape.scheduler_cores > limits.cores + _EPSILON:
        return (
            f"{username} cannot start another cluster: its scheduler needs {shape.scheduler_cores:g} core(s) "
            f"and the user's clusters already hold {cores:g} of {limits.cores:g} "
            f"(gateway.limits.max_cores, a total over all of the user's clusters); "
            "scale one down or stop one"
        )
    memory = int(_sum(others, "memory"))
    if memory + shape.scheduler_memory > limits.memory:
        return (
            f"{username} cannot start another cluster: its scheduler needs "
            f"{format_bytes(shape.scheduler_memory)} and the user's clusters already hold "
            f"{format_bytes(memory)} of {format_bytes(limits.memory)} of memory "
            f"(gateway.limits.max_memory, a total over all of the user's clusters); "
            "scale one down or stop one"
        )
    return None


class PerUserLimits(LoggingConfigurable):
    """Backend mix-in enforcing ``gateway.limits`` as totals per user (see the module docstring).

    Subclasses say how many workers a cluster holds (`workers_held`); `limit_per_user` picks the right one.
    """

    user_max_clusters = Integer(2, help="Active (pending or running) clusters a user may have.", config=True)
    user_max_workers = Integer(8, help="Workers of all of a user's clusters together.", config=True)
    user_max_cores = Float(8.0, help="Cores of all of a user's clusters, schedulers included.", config=True)
    user_max_memory = Integer(
        16 * 2**30, help="Memory (bytes) of all of a user's clusters, schedulers included.", config=True
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Grants decided by this gateway process, the workers asked for, and the last grant logged, by cluster.
        self.granted: dict[str, int] = {}
        self.requested: dict[str, int] = {}
        self._explained: dict[str, tuple[int, int]] = {}

    @property
    def user_limits(self) -> UserLimits:
        return UserLimits(
            clusters=self.user_max_clusters,
            workers=self.user_max_workers,
            cores=self.user_max_cores,
            memory=self.user_max_memory,
        )

    def workers_held(self, cluster_name: str) -> int:
        """Workers the cluster holds: running, pending, and granted but not started yet."""
        raise NotImplementedError

    def workers_requested(self, cluster_name: str) -> int | None:
        """The workers the cluster last asked for (None: not known to this gateway)."""
        return self.requested.get(cluster_name)

    async def remember_request(self, cluster_name: str, requested: int, granted: int) -> None:
        """Keep what a cluster asked for, so that it can be granted more when the user's others release."""
        self.requested[cluster_name] = requested
        self.granted[cluster_name] = granted

    async def apply_grant(self, cluster: Any, workers: int) -> None:
        """Give `cluster` `workers` workers outside its heartbeat (used by `regrow`)."""
        raise NotImplementedError

    async def regrow(self, username: str, exclude: str | None = None) -> None:
        """Grant the user's trimmed clusters (but `exclude`) what now fits of what they asked for."""
        for cluster in await self.list_clusters(username=username, statuses=ACTIVE):
            requested = self.workers_requested(cluster.name)
            held = self.workers_held(cluster.name)
            if cluster.name == exclude or requested is None or requested <= held:
                continue
            grant = await self.grant(cluster, requested)
            if grant.workers <= held:
                continue
            await self.remember_request(cluster.name, requested, grant.workers)
            self._explained[cluster.name] = (requested, grant.workers)
            self.log.info(
                "Per-user limit: released workers regrant %s", grant.explain(cluster.username, cluster.name)
            )
            await self.apply_grant(cluster, grant.workers)

    async def holdings(self, username: str, exclude: str | None = None) -> list[Holding]:
        """What the user's clusters (but `exclude`) hold now."""
        clusters = await self.list_clusters(username=username, statuses=HOLDING)
        return [
            Holding(ClusterShape.from_config(cluster.config), self.workers_held(cluster.name))
            for cluster in clusters
            if cluster.name != exclude
        ]

    async def grant(self, cluster: Any, requested: int) -> Grant:
        """The workers `cluster` (a gateway cluster model) may have of the `requested` ones."""
        cap = cluster.config.get("cluster_max_workers")
        if cap is not None:
            requested = min(requested, int(cap))
        others = await self.holdings(cluster.username, exclude=cluster.name)
        return grant_workers(self.user_limits, ClusterShape.from_config(cluster.config), requested, others)

    async def start_cluster(self, user: Any, cluster_options: Any) -> str:
        active = await self.list_clusters(username=user.name, statuses=ACTIVE)
        _, config = await self.process_cluster_options(user, cluster_options)
        problem = check_new_cluster(
            self.user_limits,
            user.name,
            ClusterShape.from_config(config.to_dict()),
            len(active),
            await self.holdings(user.name),
        )
        if problem:
            self.log.warning("Refusing a new cluster: %s", problem)
            raise PublicException(problem)
        return await super().start_cluster(user, cluster_options)

    def forget(self, cluster_name: str) -> None:
        """Drop what this gateway remembers of a stopped cluster."""
        self.granted.pop(cluster_name, None)
        self.requested.pop(cluster_name, None)
        self._explained.pop(cluster_name, None)

    async def stop_cluster(self, cluster_name: str, failed: bool = False) -> None:
        self.forget(cluster_name)
        await super().stop_cluster(cluster_name, failed=failed)

    async def on_cluster_heartbeat(self, cluster_name: str, msg: dict[str, Any]) -> None:
        cluster = await self.get_cluster(cluster_name)
        released = False
        if cluster is not None and cluster.status <= ClusterStatus.RUNNING:
            requested = int(msg["count"])
            grant = await self.grant(cluster, requested)
            released = grant.workers < self.workers_held(cluster_name)
            await self.remember_request(cluster_name, requested, grant.workers)
            if grant.limit is not None and self._explained.get(cluster_name) != (requested, grant.workers):
                self.log.warning("Per-user limit: %s", grant.explain(cluster.username, cluster_name))
            self._explained[cluster_name] = (requested, grant.workers)
            msg = {**msg, "count": grant.workers}
        await super().on_cluster_heartbeat(cluster_name, msg)
        if released:
            await self.regrow(cluster.username, exclude=cluster_name)

    async def setup(self, app: web.Application) -> None:
        app.middlewares.append(self._explain_scaling)
        await super().setup(app)

    @web.middleware
    async def _explain_scaling(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Tell the client of a ``scale``/``adapt`` request that the user's totals will trim it."""
        response = await handler(request)
        action = request.path.rsplit("/", 1)[-1]
        name = request.match_info.get("cluster_name")
        if request.method != "POST" or action not in ("scale", "adapt") or not name:
            return response
        if not isinstance(response, web.Response) or response.status != 200:
            return response
        body = await request.json()
        if action == "scale":
            requested = body.get("count")
        elif body.get("active", True):
            requested = body.get("maximum")
        else:
            return response
        cluster = await self.get_cluster(name)
        if cluster is None:
            return response
        if requested is None:
            requested = cluster.config.get("cluster_max_workers")
        if not isinstance(requested, int):
            return response
        grant = await self.grant(cluster, requested)
        if grant.limit is None:
            return response
        answer = json.loads(response.body or b"{}")
        answer.update(ok=False, msg=grant.explain(cluster.username, name))
        return web.json_response(answer)


class DatabaseWorkerCount(PerUserLimits):
    """Workers held by a cluster of a database backend (local processes, jobqueue, YARN)."""

    def workers_held(self, cluster_name: str) -> int:
        cluster = self.db.get_cluster(cluster_name)
        if cluster is None:
            return 0
        alive = sum(1 for worker in cluster.workers.values() if worker.status < JobStatus.STOPPED)
        granted = cluster.count if cluster.target == JobStatus.RUNNING else 0
        return max(alive, granted)

    async def regrow(self, username: str, exclude: str | None = None) -> None:
        """Nothing to do: these schedulers heartbeat every ``cluster_heartbeat_period`` and ask again."""


class KubeWorkerCount(PerUserLimits):
    """Workers held by a cluster of KubeBackend: its replicas (the controller keeps that many worker pods).

    The workers a cluster asked for are also kept in its DaskCluster's annotation `REQUESTED_ANNOTATION`: its
    scheduler does not ask again (it heartbeats only when its own request changes), so a gateway restarted
    while the cluster was trimmed reads it there.
    """

    def workers_held(self, cluster_name: str) -> int:
        granted = self.granted.get(cluster_name)
        if granted is not None:
            return granted  # this gateway patched the replicas; the informer may not have seen it yet
        obj = self.informer.get(cluster_name)
        return int(obj["spec"].get("replicas", 0)) if obj is not None else 0

    def workers_requested(self, cluster_name: str) -> int | None:
        requested = super().workers_requested(cluster_name)
        if requested is not None:
            return requested
        obj = self.informer.get(cluster_name) or {}
        annotation = (obj.get("metadata", {}).get("annotations") or {}).get(REQUESTED_ANNOTATION)
        return int(annotation) if annotation and annotation.isdigit() else None

    async def remember_request(self, cluster_name: str, requested: int, granted: int) -> None:
        known = self.workers_requested(cluster_name)
        await super().remember_request(cluster_name, requested, granted)
        if known != requested:
            await self._patch(
                cluster_name, {"metadata": {"annotations": {REQUESTED_ANNOTATION: str(requested)}}}
            )

    async def apply_grant(self, cluster: Any, workers: int) -> None:
        await self._patch(cluster.name, {"spec": {"replicas": workers}})

    async def _patch(self, cluster_name: str, patch: dict[str, Any]) -> None:
        """Merge `patch` into the cluster's DaskCluster object; a failure is logged (the next release or
        request of the user's clusters grants again)."""
        from kubernetes_asyncio.client.exceptions import ApiException

        namespace, name = cluster_name.split(".", 1)
        try:
            await self.custom_client.patch_namespaced_custom_object(
                "gateway.dask.org",
                self.crd_version,
                namespace,
                "daskclusters",
                name,
                patch,
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status != 404:  # a cluster deleted meanwhile needs nothing
                self.log.warning("Per-user limit: could not patch DaskCluster %s: %s", cluster_name, exc)

    async def sync_cluster(self, cluster_name: str) -> None:
        """KubeBackend's cache update; a cluster that has now stopped releases its workers to the user's
        trimmed clusters."""
        before = self.clusters.get(cluster_name)
        await super().sync_cluster(cluster_name)
        after = self.clusters.get(cluster_name)
        if before is None or before.status >= ClusterStatus.STOPPED:
            return
        if after is None or after.status >= ClusterStatus.STOPPED:
            self.forget(cluster_name)
            await self.regrow(before.username)


def limit_per_user(backend_class: type) -> type:
    """A subclass of the dask-gateway `backend_class` that enforces ``gateway.limits`` per user.

    Example:
        >>> from dask_gateway_server.backends.local import UnsafeLocalBackend
        >>> limit_per_user(UnsafeLocalBackend).__name__
        'LimitedUnsafeLocalBackend'
    """
    if issubclass(backend_class, DBBackendBase):
        counting: type = DatabaseWorkerCount
    else:
        from dask_gateway_server.backends.kubernetes import KubeBackend

        if not issubclass(backend_class, KubeBackend):
            raise TypeError(
                f"per-user limits (gateway.limits) support dask-gateway's database backends and KubeBackend, "
                f"not {backend_class.__module__}.{backend_class.__qualname__}"
            )
        counting = KubeWorkerCount
    name = f"Limited{backend_class.__name__}"
    return type(name, (counting, backend_class), {"__qualname__": name, "__module__": __name__})
