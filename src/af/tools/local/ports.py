"""The TCP ports of the local facility's components (on 127.0.0.1, or 127.0.0.2 for those users' containers must
not reach: see af.tools.local.containers).

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
    servicex: int = 8795  # the ServiceX service (af.servicex), behind the hub's proxy at /services/servicex/
    s3: int = 8333  # SeaweedFS's S3 API: the ServiceX results
    s3_grpc: int = 18333
    seaweed_master: int = 9333  # SeaweedFS's master, volume server and filer (behind its S3 API)
    seaweed_master_grpc: int = 19333
    seaweed_volume: int = 8380
    seaweed_volume_grpc: int = 18380
    seaweed_filer: int = 8888
    seaweed_filer_grpc: int = 18888

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

    @classmethod
    def saved(cls, values: dict[str, int]) -> Ports:
        """The ports a state folder's ports.json recorded; names an older version used and this one does not
        (e.g. the ServiceX service's own dask scheduler, now on the gateway) are left out, new ones get defaults.

        Example:
            >>> Ports.saved({"public": 9000, "dask_scheduler": 8796}).public
            9000
        """
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: port for name, port in values.items() if name in names})

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)
