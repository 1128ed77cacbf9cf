"""The Dask sidebar of JupyterLab lists the user's own dask-gateway clusters, wherever they were created.

dask-labextension's server side only knows the clusters its own manager started, so a cluster made in a notebook
with ``Gateway().new_cluster()`` never shows up in the sidebar. This Jupyter server extension answers the REST API
that the sidebar polls (``<base_url>dask/clusters``) from the gateway instead, authenticated with the server's own
hub token, so the gateway shows exactly the server owner's clusters:

- ``GET dask/clusters``: every pending or running gateway cluster of the user;
- ``PUT dask/clusters`` (the "+ NEW" button): a new gateway cluster (scaled per ``labextension.default``);
- ``PATCH``/``DELETE dask/clusters/<name>``: scale, adapt or stop it;
- ``dask/dashboard/<name>/...``: the cluster's dashboard (HTTP and websockets), proxied to the gateway with the
  server's token, so that the sidebar's plots pass the facility's dashboard guard (only owners and admins).

A cluster's id in the sidebar is its gateway name (``Gateway().connect(id)`` reaches it from any notebook) and its
``dashboard_link`` the gateway's public dashboard URL. The handlers take precedence over dask-labextension's own.

Enabled in every server by ``jupyter_server_config.d/af.json`` (installed with the project).

Example (what the sidebar receives; in a user's server):
    >>> import requests  # doctest: +SKIP
    >>> requests.get(f"{server}/dask/clusters", headers=auth).json()  # doctest: +SKIP
    [{'id': '3f2a…', 'name': '3f2a…', 'scheduler_address': 'gateway://…/3f2a…', 'dashboard_link': …, …}]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import dask
from dask.utils import format_bytes
from dask_gateway import Gateway
from dask_gateway.client import ClusterReport, ClusterStatus, GatewayClusterError, GatewayServerError
from jupyter_server.base.handlers import APIHandler
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from jupyter_server_proxy.handlers import ProxyHandler
from tornado import httpclient, web

# Gateway names are uuid hex, "<namespace>.<hex>" in Kubernetes; never "." or "..".
CLUSTER_ID = r"(?P<cluster_id>[A-Za-z0-9_-][A-Za-z0-9_.-]*)"
# Credentials of the browser are for this server; the gateway gets the server's own token instead.
DROPPED_HEADERS = ("Cookie", "Authorization", "Host")


def server_token(environ: Mapping[str, str] = os.environ) -> str:
    """The hub token of this server (the gateway's JupyterHub authenticator accepts it for the owner)."""
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        raise web.HTTPError(503, "JUPYTERHUB_API_TOKEN is not set: this server was not started by the hub")
    return token


def worker_summary(identity: Mapping[str, Any] | None) -> dict[str, Any]:
    """Workers, cores and memory of a cluster from its scheduler's ``identity.json`` (zeros when unknown).

    Example:
        >>> worker_summary({"workers": {"tls://a": {"nthreads": 2, "memory_limit": 2**30}}})
        {'workers': 1, 'cores': 2, 'memory': '1.00 GiB'}
    """
    workers = (identity or {}).get("workers", {})
    return {
        "workers": len(workers),
        "cores": sum(w.get("nthreads", 0) for w in workers.values()),
        "memory": format_bytes(sum(w.get("memory_limit", 0) for w in workers.values())),
    }


def cluster_model(report: ClusterReport, identity: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model dask-labextension's sidebar shows for a gateway cluster (id and name: the gateway name)."""
    return {
        "id": report.name,
        "name": report.name,
        "scheduler_address": report.scheduler_address or "",
        "dashboard_link": report.dashboard_link or "",
        **worker_summary(identity),
    }


class GatewayClusters:
    """The server owner's clusters on the facility's gateway (``DASK_GATEWAY__*`` configure the client)."""

    def __init__(self) -> None:
        self._gateway: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:  # made on first use, inside the server's running event loop
            self._gateway = Gateway(asynchronous=True)
        return self._gateway

    async def identity(self, name: str) -> dict[str, Any] | None:
        """The scheduler's identity (workers with threads and memory), read through the dashboard route."""
        url = f"{self.gateway.address}/clusters/{name}/json/identity.json"
        try:
            response = await httpclient.AsyncHTTPClient().fetch(
                url, headers={"Authorization": f"token {server_token()}"}, request_timeout=10
            )
            return json.loads(response.body)
        except (httpclient.HTTPClientError, OSError, ValueError):
            return None  # a scheduler still starting or gone: listed without workers rather than not at all

    async def model(self, report: ClusterReport) -> dict[str, Any]:
        identity = await self.identity(report.name) if report.scheduler_address else None
        return cluster_model(report, identity)

    async def list(self) -> list[dict[str, Any]]:
        reports = await self.gateway.list_clusters()
        return list(
            await asyncio.gather(*(self.model(r) for r in sorted(reports, key=lambda r: r.start_time)))
        )

    async def report(self, name: str) -> ClusterReport | None:
        """The running or pending cluster `name` of the owner, or None (unknown, another user's, or stopped)."""
        for report in await self.gateway.list_clusters():
            if report.name == name:
                return report
        return None

    async def get(self, name: str) -> dict[str, Any] | None:
        report = await self.report(name)
        return None if report is None else await self.model(report)

    async def start(self) -> dict[str, Any]:
        """A new cluster with the gateway's default options, scaled as ``labextension.default`` says."""
        name = await self.gateway.submit()
        report = await self.running(name)
        defaults = dask.config.get("labextension.default", default={}) or {}
        if defaults.get("adapt"):
            await self.gateway.adapt_cluster(name, **defaults["adapt"])
        elif defaults.get("workers") is not None:
            await self.gateway.scale_cluster(name, int(defaults["workers"]))
        return await self.model(report)

    async def running(self, name: str, timeout: float = 300.0) -> ClusterReport:
        """The report of cluster `name` once it runs; GatewayClusterError if it failed or stopped instead."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                report = await self.gateway.get_cluster(name, wait=True)  # answers once the state changes
            except TimeoutError:
                continue
            if report.status is ClusterStatus.RUNNING:
                return report
            if report.status in (ClusterStatus.FAILED, ClusterStatus.STOPPED):
                raise GatewayClusterError(f"cluster {name} {report.status.name.lower()} while starting")
            await asyncio.sleep(0.5)
        raise GatewayClusterError(f"cluster {name} did not start within {timeout:.0f} s")

    async def resize(self, name: str, change: Mapping[str, Any]) -> None:
        """Apply a sidebar change: ``{"workers": n}`` or ``{"adapt": {"minimum": a, "maximum": b}}``."""
        try:
            if change.get("adapt") is not None:
                adapt = change["adapt"]
                await self.gateway.adapt_cluster(
                    name, minimum=int(adapt["minimum"]), maximum=int(adapt["maximum"])
                )
            else:
                await self.gateway.scale_cluster(name, int(change["workers"]))
        except (KeyError, TypeError) as err:
            raise web.HTTPError(
                400, f'expected {{"workers": n}} or {{"adapt": {{"minimum": a, "maximum": b}}}}, not {change}'
            ) from err

    async def stop(self, name: str) -> None:
        await self.gateway.stop_cluster(name)


@contextlib.contextmanager
def gateway_errors(address: str) -> Iterator[None]:
    """Turn the gateway client's errors into HTTP errors that name the gateway (never a bare 500)."""
    try:
        yield
    except GatewayClusterError as err:  # e.g. the user's cluster limit
        raise web.HTTPError(409, f"dask-gateway at {address}: {err}") from None
    except ValueError as err:  # the gateway answered 404 or 422
        raise web.HTTPError(400, f"dask-gateway at {address}: {err}") from None
    except (GatewayServerError, aiohttp.ClientError, OSError) as err:
        raise web.HTTPError(502, f"dask-gateway at {address} failed: {err!r}") from None


class GatewayClusterHandler(APIHandler):
    """``<base_url>dask/clusters[/<name>]``: the sidebar's cluster API, answered by the gateway."""

    def initialize(self, clusters: GatewayClusters) -> None:
        self.clusters = clusters

    def errors(self) -> contextlib.AbstractContextManager[None]:
        return gateway_errors(self.clusters.gateway.address)

    async def existing(self, cluster_id: str) -> dict[str, Any]:
        model = await self.clusters.get(cluster_id)
        if model is None:
            raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
        return model

    @web.authenticated
    async def get(self, cluster_id: str = "") -> None:
        with self.errors():
            result = await (self.existing(cluster_id) if cluster_id else self.clusters.list())
        self.finish(json.dumps(result))

    @web.authenticated
    async def put(self, cluster_id: str = "") -> None:
        if cluster_id:
            raise web.HTTPError(400, "gateway clusters get their name from the gateway: PUT dask/clusters")
        with self.errors():
            model = await self.clusters.start()
        self.finish(json.dumps(model))

    @web.authenticated
    async def patch(self, cluster_id: str = "") -> None:
        try:
            change = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError as err:
            raise web.HTTPError(400, f"request body is not JSON: {err}") from None
        with self.errors():
            await self.existing(cluster_id)
            await self.clusters.resize(cluster_id, change)
            model = await self.existing(cluster_id)
        self.finish(json.dumps(model))

    @web.authenticated
    async def delete(self, cluster_id: str = "") -> None:
        with self.errors():
            await self.existing(cluster_id)
            await self.clusters.stop(cluster_id)
        self.set_status(204)
        self.finish()


class GatewayDashboardHandler(ProxyHandler):
    """``<base_url>dask/dashboard/<name>/<path>``: the cluster's dashboard, fetched with the server's token."""

    def initialize(self, gateway_address: str) -> None:
        self.gateway_address = gateway_address.rstrip("/")
        self.cluster_id = ""
        self.host_allowlist = [urlsplit(self.gateway_address).hostname or ""]

    def get_client_uri(self, protocol: str, host: str, port: int | None, proxied_path: str) -> str:
        scheme = urlsplit(self.gateway_address).scheme  # http(s), or ws(s) for websockets
        if protocol.startswith("ws"):
            scheme = scheme.replace("http", "ws", 1)
        rest = self.gateway_address.split("://", 1)[1]
        query = f"?{self.request.query}" if self.request.query else ""
        return f"{scheme}://{rest}/clusters/{self.cluster_id}{proxied_path}{query}"

    def proxy_request_headers(self) -> dict[str, str]:
        headers = super().proxy_request_headers()
        for name in DROPPED_HEADERS:
            headers.pop(name, None)
        headers["Authorization"] = f"token {server_token()}"
        if "Origin" in headers:
            # This server checked the browser's origin against its own already (Jupyter's websocket check); to the
            # gateway the request is the server's own, for the address the server reaches it at (in a container or
            # a pod not the browser's: the dashboard guard refuses a websocket whose origin is not its host).
            parsed = urlsplit(self.gateway_address)
            headers["Origin"] = f"{parsed.scheme.replace('ws', 'http', 1)}://{parsed.netloc}"
        return headers

    def _target(self, cluster_id: str, proxied_path: str) -> tuple[str, int, str]:
        self.cluster_id = cluster_id
        parsed = urlsplit(self.gateway_address)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return parsed.hostname or "", port, proxied_path or "/"

    async def http_get(self, cluster_id: str, proxied_path: str) -> None:
        return await self.proxy(*self._target(cluster_id, proxied_path))

    async def open(self, cluster_id: str, proxied_path: str) -> None:
        return await self.proxy_open(*self._target(cluster_id, proxied_path))

    def post(self, cluster_id: str, proxied_path: str) -> Any:
        return self.proxy(*self._target(cluster_id, proxied_path))

    put = patch = delete = head = options = post


def prepend_handlers(web_app: web.Application, handlers: list[tuple[Any, ...]]) -> None:
    """Add `handlers` to `web_app` ahead of every handler added before (tornado tries rules in order)."""
    rules = web_app.default_router.rules
    before = {id(rule) for rule in rules}
    web_app.add_handlers(".*$", handlers)
    (added,) = [rule for rule in rules if id(rule) not in before]
    rules.remove(added)
    rules.insert(0, added)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "af.user_server.dask_sidebar"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    address = dask.config.get("gateway.address", None)
    if not address:
        serverapp.log.info(
            "af.user_server.dask_sidebar: no dask-gateway configured; the Dask sidebar is left as it is"
        )
        return
    clusters = GatewayClusters()
    base_url = serverapp.web_app.settings["base_url"]
    prepend_handlers(
        serverapp.web_app,
        [
            (url_path_join(base_url, "dask/clusters/?"), GatewayClusterHandler, {"clusters": clusters}),
            (
                url_path_join(base_url, f"dask/clusters/{CLUSTER_ID}"),
                GatewayClusterHandler,
                {"clusters": clusters},
            ),
            (
                url_path_join(base_url, f"dask/dashboard/{CLUSTER_ID}(?P<proxied_path>/.*)?"),
                GatewayDashboardHandler,
                {"gateway_address": address},
            ),
        ],
    )
    serverapp.log.info(
        "af.user_server.dask_sidebar: the Dask sidebar lists this user's clusters on %s", address
    )
