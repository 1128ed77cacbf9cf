"""The TCP ports of the local facility's components (all on 127.0.0.1).

Example:
    >>> Ports().public
    8000
"""

from __future__ import annotations

import dataclasses
import socket
from contextlib import ExitStack


@dataclasses.dataclass(frozen=True)
class Ports:
    """One port per listening component; `Ports()` are the documented defaults, `Ports.free()` unused ones."""

    public: int = 8000  # configurable-http-proxy: what browsers open
    proxy_api: int = 8001  # configurable-http-proxy's REST API (the hub adds routes there)
    hub: int = 8081  # the hub itself, behind the proxy
    oidc: int = 5556  # development OpenID Connect provider (stand-in for IAM)
    guard: int = 8788  # dashboard guard: the gateway's hub service URL
    gateway_web: int = 8789  # dask-gateway's HTTP proxy (API and dashboards)
    gateway_tcp: int = 8786  # dask-gateway's scheduler (TLS) proxy
    gateway_api: int = 8787  # dask-gateway's private API server

    @classmethod
    def free(cls) -> Ports:
        """Ports that nothing listens on right now (for tests running beside a developer's facility)."""
        with ExitStack() as stack:
            numbers = []
            for _ in dataclasses.fields(cls):
                sock = stack.enter_context(socket.socket())
                sock.bind(("127.0.0.1", 0))
                numbers.append(sock.getsockname()[1])
        return cls(*numbers)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)
