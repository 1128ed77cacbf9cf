"""A reverse proxy in front of dask-gateway's web proxy that lets only a cluster's owner (and hub admins) open
its dashboard. Upstream serves ``/clusters/<name>/...`` to anyone who knows the URL (dask-gateway#570).

The hub's proxy routes ``/services/dask-gateway/`` here (the gateway's hub service URL). Requests for
``<prefix>/clusters/<name>/...`` (HTTP and websockets) need a hub identity: a token (``Authorization: token|bearer
<token>``) or the hub OAuth cookie of this service (browsers are sent through the hub's OAuth flow once). The owner
is checked by asking the gateway for the cluster *with the requester's own token*: the gateway only shows a
cluster to its owner. Everything else (the gateway API, which does its own authentication) passes through.

Run (the hub service's token authenticates the OAuth client ``service-dask-gateway``):
    JUPYTERHUB_API_TOKEN=... python -m af.gateway.dashboard_guard --listen 127.0.0.1:8788 \
        --upstream http://127.0.0.1:8789 --hub-api http://127.0.0.1:8081/hub/api \
        --prefix /services/dask-gateway
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado import httpclient, web, websocket
from tornado.httputil import HTTPHeaders

log = logging.getLogger("af.gateway.dashboard_guard")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
DECISION_SECONDS = 30.0


class OwnerCheck:
    """Decides whether a hub user may see a cluster, asking the gateway with the user's token (cached briefly)."""

    def __init__(self, gateway_api: str):
        self.gateway_api = gateway_api.rstrip("/")
        self.decisions: dict[tuple[str, str], tuple[float, bool]] = {}

    async def allowed(self, user: dict[str, Any], token: str | None, cluster: str) -> bool:
        if user.get("admin"):
            return True
        if not token:
            return False
        key = (user["name"], cluster)
        cached = self.decisions.get(key)
        if cached and time.monotonic() - cached[0] < DECISION_SECONDS:
            return cached[1]
        response = await httpclient.AsyncHTTPClient().fetch(
            f"{self.gateway_api}/clusters/{cluster}",
            headers={"Authorization": f"jupyterhub {token}"},
            raise_error=False,
            request_timeout=20,
        )
        allowed = response.code == 200
        if response.code not in (200, 401, 403, 404):
            log.warning(
                "gateway answered %s when checking cluster %s for %s", response.code, cluster, user["name"]
            )
        self.decisions[key] = (time.monotonic(), allowed)
        return allowed


def cluster_of(path: str, prefix: str) -> str | None:
    """The cluster whose dashboard a decoded request path addresses, or None for any other path.

    Example:
        >>> cluster_of("/services/dask-gateway/clusters/abc/status", "/services/dask-gateway")
        'abc'
        >>> cluster_of("/services/dask-gateway/api/v1/clusters/abc", "/services/dask-gateway") is None
        True
    """
    rest = path[len(prefix) :] if path.startswith(prefix + "/") else ""
    parts = rest.split("/")
    if len(parts) >= 3 and parts[1].lower() == "clusters":
        return parts[2]
    return None


def forwarded_headers(headers: HTTPHeaders, keep_credentials: bool) -> HTTPHeaders:
    out = HTTPHeaders()
    for name, value in headers.get_all():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower.startswith("sec-websocket"):
            continue
        if not keep_credentials and lower in ("authorization", "cookie"):
            continue
        out.add(name, value)
    return out


class ForwardHandler(websocket.WebSocketHandler):
    """Forwards HTTP requests and websockets to the gateway's proxy; dashboards only for their owners."""

    def initialize(self, upstream: str, hub_auth: HubOAuth, owners: OwnerCheck, prefix: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.hub_auth = hub_auth
        self.owners = owners
        self.prefix = prefix
        self.upstream_ws: websocket.WebSocketClientConnection | None = None
        self.cluster: str | None = None
        self.upstream_uri = ""

    def prepare(self) -> None:
        # Decide on the decoded path and forward exactly that path: the gateway's proxy decodes %-escapes, so a
        # check on the raw path could be bypassed with e.g. /%63lusters/<name>/ or /clusters%2f<name>/.
        path = unquote(self.request.path)
        if "\\" in path or any(part in (".", "..") for part in path.split("/")) or "//" in path:
            raise web.HTTPError(400, "path not in canonical form")
        self.cluster = cluster_of(path, self.prefix)
        query = f"?{self.request.query}" if self.request.query else ""
        self.upstream_uri = quote(path, safe="/:@!$&'()*+,;=-._~") + query

    @property
    def guarded(self) -> bool:
        return self.cluster is not None

    def check_xsrf_cookie(self) -> None:
        # The gateway API and the dashboards are not forms of this service; credentials are checked per request.
        return None

    def check_origin(self, origin: str) -> bool:
        return urlsplit(origin).netloc == self.request.host

    async def authorise(self, cluster: str) -> bool:
        """True when the request may reach `cluster`; otherwise an error or a login redirect was sent."""
        try:
            user = await self.hub_auth.get_user(self, sync=False)
        except Exception as err:  # a garbage token or cookie: not authenticated, never a 500
            log.info("could not identify requester: %s", err)
            user = None
        if not user:
            browser = (
                self.request.method == "GET"
                and not self.request.headers.get("Authorization")
                and self.request.headers.get("Upgrade", "").lower() != "websocket"
            )
            if browser:
                state = self.hub_auth.set_state_cookie(self, next_url=self.request.uri)
                self.redirect(f"{self.hub_auth.login_url}&state={state}")
                return False
            self.send_error(401)
            return False
        token = self.hub_auth.get_token(self)
        if not await self.owners.allowed(user, token, cluster):
            log.info("refusing dashboard of %s to %s", cluster, user.get("name"))
            self.send_error(403)
            return False
        return True

    async def forward(self, *_: str) -> None:
        if self.cluster is not None and not await self.authorise(self.cluster):
            return
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await websocket.WebSocketHandler.get(self)
            return
        body = self.request.body if self.request.method not in ("GET", "HEAD") else None
        try:
            response = await httpclient.AsyncHTTPClient().fetch(
                httpclient.HTTPRequest(
                    self.upstream + self.upstream_uri,
                    method=self.request.method,
                    headers=forwarded_headers(self.request.headers, keep_credentials=not self.guarded),
                    body=body,
                    follow_redirects=False,
                    allow_nonstandard_methods=True,
                    request_timeout=300,
                    decompress_response=False,
                ),
                raise_error=False,
            )
        # raise_error=False only keeps HTTP error statuses from raising: an unreachable upstream (no address,
        # refused, timed out) still raises, and is the gateway's fault, not ours
        except (OSError, httpclient.HTTPClientError) as err:
            log.warning("gateway proxy %s unreachable: %s", self.upstream, err)
            self.send_error(502)
            return
        self.set_status(response.code, response.reason)
        self._headers = HTTPHeaders()
        for name, value in response.headers.get_all():
            if name.lower() not in HOP_BY_HOP:
                self.add_header(name, value)
        if response.body and self.request.method != "HEAD":
            self.write(response.body)
        await self.finish()

    get = post = put = delete = patch = head = forward

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        # Bokeh sends its session token as a websocket subprotocol (["bokeh", token]) and expects "bokeh" back.
        return subprotocols[0] if subprotocols else None

    async def open(self, *args: Any, **kwargs: Any) -> None:
        url = "ws" + self.upstream[len("http") :] + self.upstream_uri
        headers = forwarded_headers(self.request.headers, keep_credentials=False)
        offered = self.request.headers.get("Sec-WebSocket-Protocol", "")
        subprotocols = [p.strip() for p in offered.split(",") if p.strip()] or None
        try:
            self.upstream_ws = await websocket.websocket_connect(
                httpclient.HTTPRequest(url, headers=headers),
                on_message_callback=self.from_upstream,
                subprotocols=subprotocols,
            )
        except (OSError, websocket.WebSocketError, httpclient.HTTPClientError) as err:
            log.warning("websocket to %s failed: %s", url, err)
            self.close(1011, "upstream unavailable")

    def from_upstream(self, message: str | bytes | None) -> None:
        if message is None:
            self.close()
            return
        self.write_message(message, binary=isinstance(message, bytes))

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream_ws is not None:
            await self.upstream_ws.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        if self.upstream_ws is not None:
            self.upstream_ws.close()


class CallbackHandler(HubOAuthCallbackHandler):
    """The hub's OAuth callback for this service, with an explicitly configured HubOAuth."""

    def initialize(self, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth


def make_app(
    upstream: str, hub_api: str, prefix: str, api_token: str, public_url: str = "", hub_prefix: str = "/hub/"
) -> web.Application:
    """The guard's tornado application (routes under `prefix`, e.g. ``/services/dask-gateway``)."""
    prefix = prefix.rstrip("/")
    hub_auth = HubOAuth(
        api_token=api_token,
        api_url=hub_api,
        oauth_client_id=f"service-{prefix.rsplit('/', 1)[-1]}",
        oauth_redirect_uri=f"{public_url}{prefix}/oauth_callback",
        base_url=prefix + "/",
        hub_prefix=hub_prefix,
        cache_max_age=60,
        allow_websocket_cookie_auth=True,
    )
    owners = OwnerCheck(f"{upstream.rstrip('/')}{prefix}/api/v1")
    common = {"upstream": upstream, "hub_auth": hub_auth, "owners": owners}
    return web.Application(
        [
            (rf"{prefix}/oauth_callback", CallbackHandler, {"hub_auth": hub_auth}),
            (rf"{prefix}(/.*)?", ForwardHandler, {**common, "prefix": prefix}),
        ],
        cookie_secret=os.urandom(32),
        websocket_ping_interval=30,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m af.gateway.dashboard_guard", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--listen", required=True, help="host:port to listen on, e.g. 127.0.0.1:8788")
    parser.add_argument("--upstream", required=True, help="URL of dask-gateway's web proxy")
    parser.add_argument(
        "--hub-api", required=True, help="the hub's API URL, e.g. http://127.0.0.1:8081/hub/api"
    )
    parser.add_argument("--prefix", default="/services/dask-gateway")
    parser.add_argument(
        "--public-url", default="", help="public origin of the hub, if redirects must be absolute"
    )
    parser.add_argument("--hub-prefix", default="/hub/", help="the hub's URL prefix as browsers see it")
    args = parser.parse_args(argv)
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        parser.error("JUPYTERHUB_API_TOKEN must hold the dask-gateway service token")
    host, _, port = args.listen.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="[guard %(asctime)s %(levelname)s] %(message)s")
    app = make_app(args.upstream, args.hub_api, args.prefix, token, args.public_url, args.hub_prefix)

    async def serve() -> None:
        app.listen(int(port), address=host or "127.0.0.1", xheaders=True)
        log.info("dashboard guard on %s -> %s", args.listen, args.upstream)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
