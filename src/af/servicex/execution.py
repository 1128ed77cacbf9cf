"""Where transforms run: a dask scheduler given to the service (``--scheduler tcp://...``) or a dask-gateway
cluster of the service's own (``--gateway``, scaled to the work within the gateway's limits). One task per file;
dask retries a task whose file raised `af.servicex.transform.TransientError`.

Example:
    >>> engine = await DaskEngine.connect("tcp://127.0.0.1:8786")  # doctest: +SKIP
    >>> future = engine.submit("r1", 0, "/data/f.root", selection, "parquet", url)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future

from af.servicex.transform import transform_file

log = logging.getLogger("af.servicex")


@dataclass
class DaskEngine:
    client: Client
    retries: int = 2
    cluster: Any = None  # a dask-gateway cluster owned by the service
    max_workers: int = 4
    futures: dict[str, list[Future]] = field(default_factory=dict)

    @classmethod
    async def connect(cls, address: str, retries: int = 2) -> DaskEngine:
        return cls(await Client(address, asynchronous=True), retries)

    @classmethod
    async def gateway_cluster(cls, max_workers: int, retries: int = 2) -> DaskEngine:
        """A cluster on the facility's dask-gateway (address and hub token from the DASK_GATEWAY__*
        configuration), adapting between 0 and `max_workers` workers."""
        from dask_gateway import Gateway

        gateway = Gateway(asynchronous=True)
        cluster = await gateway.new_cluster()
        await cluster.adapt(minimum=0, maximum=max_workers)
        client = await cluster.get_client(set_as_default=False)
        return cls(client, retries, cluster, max_workers)

    def submit(self, request_id: str, idx: int, location: str, selection: str, fmt: str, url: str) -> Future:
        future = self.client.submit(
            transform_file,
            location,
            selection,
            fmt,
            url,
            key=f"servicex-{request_id}-{idx}",
            retries=self.retries,
            pure=False,
        )
        self.futures.setdefault(request_id, []).append(future)
        return future

    async def cancel(self, request_id: str) -> None:
        futures = self.futures.pop(request_id, [])
        if futures:
            await self.client.cancel(futures, force=True)

    def forget(self, request_id: str) -> None:
        self.futures.pop(request_id, None)

    async def close(self) -> None:
        await self.client.close()
        if self.cluster is not None:
            await self.cluster.shutdown()
