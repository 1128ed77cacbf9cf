"""Where transforms run: a dask scheduler given to the service (``--scheduler tcp://...``) or a dask-gateway
cluster of the service's own (``--gateway``, `af.servicex.gateway_cluster`: scaled to the work within the
gateway's limits; a task lost with that cluster or its connection is run again on a running one, `recover`). One task per file
and attempt: the service itself tries a file again after a transient error, later (see `af.servicex.service`).
Every worker loads the transform's modules and physlite's decode kernels when it starts (`WarmTransform`), not
in its first file's task: the time to first file of a fresh worker drops by the ~1.5 s that loading takes.

Cancel stops what dask can stop (tasks not started are dropped) and sets the request's cancel flag (a dask
Event, `cancel_flag`), which a running task reads before it uploads its output: a task that was already
running when its request was canceled writes nothing.

Example:
    >>> engine = await DaskEngine.connect("tcp://127.0.0.1:8786")  # doctest: +SKIP
    >>> future = engine.submit("r1", 0, 0, "/data/f.root", selection, "parquet", url)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from distributed import Client, Event, Future, WorkerPlugin
from distributed.client import FutureCancelledError
from distributed.comm import CommClosedError

from af.servicex.transform import BearerToken, transform_file

if TYPE_CHECKING:  # workers unpickle WarmTransform from this module: it imports nothing they do not need
    from af.servicex.gateway_cluster import ServiceCluster

log = logging.getLogger("af.servicex")


def cancel_flag(request_id: str) -> str:
    """The name of the dask Event set when the request is canceled."""
    return f"servicex-cancel-{request_id}"


async def register_plugins(client: Client) -> None:
    await client.register_plugin(WarmTransform())


class WarmTransform(WorkerPlugin):
    """Loads what a transform needs when a worker starts (imports, physlite's kernels from numba's cache)."""

    name = "af-servicex-warm-transform"

    def setup(self, worker) -> None:
        import awkward  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import uproot  # noqa: F401

        import af.servicex.transform  # noqa: F401
        from physlite.decode.warmup import compile_all

        compile_all()


@dataclass
class DaskEngine:
    client: Client | None  # None until the service's own cluster was first reached (--gateway)
    retries: int = 2
    cluster: ServiceCluster | None = None  # the service's own dask-gateway cluster (--gateway)
    futures: dict[str, list[Future]] = field(default_factory=dict)

    @classmethod
    async def connect(cls, address: str, retries: int = 2) -> DaskEngine:
        client = await Client(address, asynchronous=True)
        await register_plugins(client)
        return cls(client, retries)

    @classmethod
    async def gateway_cluster(cls, cluster: ServiceCluster, retries: int = 2) -> DaskEngine:
        """Transforms on `cluster` (a dask-gateway cluster of the service's own, adapting between 0 and its
        `max_workers` workers; found again or made anew when it is gone). A gateway that cannot be reached yet
        (e.g. starting beside the service in Kubernetes) leaves the cluster to the first request (`ready`): the
        service answers meanwhile."""
        cluster.on_new_client = register_plugins
        engine = cls(None, retries, cluster)
        try:
            await engine.ready()
        except Exception as error:
            log.warning(
                "dask-gateway not reachable at start (%s: %s); the first request retries",
                type(error).__name__,
                error,
            )
        return engine

    async def ready(self) -> None:
        """Before a request's tasks: a running cluster (the gateway may have stopped an idle one)."""
        if self.cluster is not None:
            self.client = await self.cluster.client()

    async def recover(self, error: BaseException) -> bool:
        """Whether a task that ended with `error` was lost with its cluster or its scheduler connection (not
        by a cancel of ours) and the engine has a running cluster again to try it on."""
        lost = isinstance(error, (FutureCancelledError, CommClosedError)) or self.client.status != "running"
        if not lost or self.cluster is None:
            return False
        log.info(
            "a task was lost with the service's cluster (%s: %s); reconnecting", type(error).__name__, error
        )
        self.client = await self.cluster.recover()
        return True

    def submit(
        self, request_id: str, idx: int, attempt: int, location: str, selection: str, fmt: str, url: str,
        resent: int = 0, replicas: list[str] | None = None, token: BearerToken | None = None,
    ) -> Future:  # fmt: skip
        """The file's task; a file DID's `replicas` (URLs, best first) are read with the user's `token`;
        `resent` counts the times this attempt was sent before (lost with its cluster, or with a token since
        renewed). The key names request, file, attempt and resending only (never an argument: no token in a
        key)."""
        args = [location, selection, fmt, url, cancel_flag(request_id)]
        if replicas is not None:  # only then: workers of an older image still run file lists
            args += [replicas, token]
        future = self.client.submit(
            transform_file, *args, key=f"servicex-{request_id}-{idx}-{attempt}-{resent}", pure=False
        )
        self.futures.setdefault(request_id, []).append(future)
        return future

    async def cancel(self, request_id: str) -> None:
        if self.client is None:  # no cluster reached yet: no task of this process runs
            self.futures.pop(request_id, None)
            return
        await Event(cancel_flag(request_id), client=self.client).set()
        futures = self.futures.pop(request_id, [])
        if futures:
            await self.client.cancel(futures, force=True)

    def forget(self, request_id: str) -> None:
        self.futures.pop(request_id, None)

    async def close(self) -> None:
        if self.cluster is not None:
            await self.cluster.close()
        else:
            await self.client.close()
