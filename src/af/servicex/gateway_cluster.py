"""The service's own dask-gateway cluster: one cluster on the facility's gateway, owned by the hub service
`servicex` (its hub token, the gateway's user ``service:servicex``: the gateway's per-user limits apply to it,
never to a physicist's quota), adapting between 0 and `max_workers` workers.

A restarted service finds its running cluster again (the gateway lists the clusters of its user) instead of
starting a second one; a cluster that is gone (stopped, culled as idle by the gateway, lost with its scheduler)
is replaced by a new one, and a client that lost its scheduler (e.g. while the gateway's proxy restarted) is
given time to reconnect and otherwise replaced.

Example:
    >>> cluster = ServiceCluster(address, proxy_address, token, max_workers=4)  # doctest: +SKIP
    >>> client = await cluster.client()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from distributed import Client

log = logging.getLogger("af.servicex")
RECONNECT_SECONDS = 30.0  # how long a client that lost its scheduler may take to reconnect


@dataclass
class ServiceCluster:
    address: str  # the gateway's API, e.g. http://127.0.0.1:8000/services/dask-gateway
    proxy_address: str  # its scheduler proxy, e.g. gateway://127.0.0.1:8786
    token: str  # the service's hub API token
    max_workers: int = 4
    worker_cores: int = 1
    on_new_client: Callable[[Client], Awaitable[None]] | None = None  # e.g. registers worker plugins
    name: str = ""
    _gateway: Any = None
    _client: Client | None = None
    _cluster: Any = None  # the GatewayCluster object of `_client` (it holds a session of its own)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def gateway(self):
        if self._gateway is None:
            from dask_gateway import Gateway, JupyterHubAuth

            self._gateway = Gateway(
                self.address, proxy_address=self.proxy_address, auth=JupyterHubAuth(self.token),
                asynchronous=True,
            )  # fmt: skip
        return self._gateway

    async def _running_cluster(self) -> str:
        """The name of the service's running cluster on the gateway (the newest; others are stopped), or ''."""
        from dask_gateway.client import ClusterStatus

        clusters = await self.gateway().list_clusters(status=[ClusterStatus.RUNNING, ClusterStatus.PENDING])
        clusters.sort(key=lambda report: report.start_time.timestamp() if report.start_time else 0.0)
        for extra in clusters[:-1]:  # one cluster of the service's own, never more
            log.info("stopping an extra cluster of the service: %s", extra.name)
            await self.gateway().stop_cluster(extra.name)
        return clusters[-1].name if clusters else ""

    async def _connect(self) -> Client:
        from dask_gateway.client import GatewayWarning

        gateway = self.gateway()
        name = await self._running_cluster()
        if name:
            cluster = await gateway.connect(name)
            log.info("using the service's dask-gateway cluster %s", name)
        else:
            cluster = await gateway.new_cluster(shutdown_on_close=False, worker_cores=self.worker_cores)
            log.info("started the service's dask-gateway cluster %s", cluster.name)
        self.name, self._cluster = cluster.name, cluster
        with warnings.catch_warnings(record=True) as trimmed:
            warnings.simplefilter("always", GatewayWarning)
            await cluster.adapt(minimum=0, maximum=self.max_workers)
        for warning in trimmed:  # the gateway's per-user limits allow fewer workers than --max-workers
            log.warning("dask-gateway: %s", warning.message)
        client = await cluster.get_client(set_as_default=False)
        if self.on_new_client is not None:
            await self.on_new_client(client)
        return client

    async def client(self) -> Client:
        """A client of a running cluster of the service's own: the current one, else the same cluster
        reconnected, else a new cluster."""
        async with self._lock:
            if self._client is not None and self._client.status == "running" and await self._alive():
                return self._client
            if self._client is not None:
                await self._drop_client()
            self._client = await self._connect()
            return self._client

    async def _alive(self) -> bool:
        from dask_gateway.client import ClusterStatus

        try:
            report = await self.gateway().get_cluster(self.name)
        except Exception as error:  # the gateway restarting: the cluster may well be alive
            log.info("the gateway did not answer about cluster %s (%s); keeping it", self.name, error)
            return True
        return report.status == ClusterStatus.RUNNING

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        try:
            await asyncio.wait_for(client.close(), 10)
            if cluster is not None:  # its local state only: the cluster is stopped by name (`close`)
                await asyncio.wait_for(cluster.close(shutdown=False), 10)
        except Exception as error:
            log.info("closing the lost client: %s", error)

    async def recover(self) -> Client:
        """After a task was lost with its scheduler: a client of a running cluster (`client`), once a client
        that is reconnecting to a cluster the gateway still runs (its proxy restarted) had time to."""
        client, loop = self._client, asyncio.get_running_loop()
        if client is not None and client.status == "connecting" and await self._alive():
            deadline = loop.time() + RECONNECT_SECONDS
            while client.status == "connecting" and loop.time() < deadline:
                await asyncio.sleep(0.5)
        return await self.client()

    async def close(self, shutdown: bool = True) -> None:
        """Closes the client and, with `shutdown`, stops the cluster (the service stopping for good)."""
        if self._client is not None:
            await self._drop_client()
        if shutdown and self.name:
            try:
                await self.gateway().stop_cluster(self.name)
            except Exception as error:
                log.warning("could not stop the service's cluster %s: %s", self.name, error)
        if self._gateway is not None:
            await self._gateway.close()
