"""Where transforms run: a dask scheduler given to the service (``--scheduler tcp://...``) or a dask-gateway
cluster of the service's own (``--gateway``, scaled to the work within the gateway's limits). One task per file
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
from typing import Any

from distributed import Client, Event, Future, WorkerPlugin

from af.servicex.transform import transform_file

log = logging.getLogger("af.servicex")


def cancel_flag(request_id: str) -> str:
    """The name of the dask Event set when the request is canceled."""
    return f"servicex-cancel-{request_id}"


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
    client: Client
    retries: int = 2
    cluster: Any = None  # a dask-gateway cluster owned by the service
    max_workers: int = 4
    futures: dict[str, list[Future]] = field(default_factory=dict)

    @classmethod
    async def connect(cls, address: str, retries: int = 2) -> DaskEngine:
        client = await Client(address, asynchronous=True)
        await client.register_plugin(WarmTransform())
        return cls(client, retries)

    @classmethod
    async def gateway_cluster(cls, max_workers: int, retries: int = 2) -> DaskEngine:
        """A cluster on the facility's dask-gateway (address and hub token from the DASK_GATEWAY__*
        configuration), adapting between 0 and `max_workers` workers."""
        from dask_gateway import Gateway

        gateway = Gateway(asynchronous=True)
        cluster = await gateway.new_cluster()
        await cluster.adapt(minimum=0, maximum=max_workers)
        client = await cluster.get_client(set_as_default=False)
        await client.register_plugin(WarmTransform())
        return cls(client, retries, cluster, max_workers)

    def submit(
        self, request_id: str, idx: int, attempt: int, location: str, selection: str, fmt: str, url: str
    ) -> Future:
        future = self.client.submit(
            transform_file,
            location,
            selection,
            fmt,
            url,
            cancel_flag(request_id),
            key=f"servicex-{request_id}-{idx}-{attempt}",
            pure=False,
        )
        self.futures.setdefault(request_id, []).append(future)
        return future

    async def cancel(self, request_id: str) -> None:
        await Event(cancel_flag(request_id), client=self.client).set()
        futures = self.futures.pop(request_id, [])
        if futures:
            await self.client.cancel(futures, force=True)

    def forget(self, request_id: str) -> None:
        self.futures.pop(request_id, None)

    async def close(self) -> None:
        await self.client.close()
        if self.cluster is not None:
            await self.cluster.shutdown()
