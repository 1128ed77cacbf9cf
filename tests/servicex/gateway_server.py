"""The facility's dask-gateway for the ServiceX tests: `dask-gateway-server` with the local facility's own
configuration (af/gateway/local_config.py: hub authentication, per-user limits, clusters of worker processes
that survive a gateway restart), authenticating against the test hub, whose `servicex` service gets the role
the facility gives it (hub_config.servicex.servicex_role).

Example:
    >>> hub = start_hub(run, SERVICE, hub_extra_config(tokens))  # doctest: +SKIP
    >>> gateway = start_gateway(run, hub, tokens, {"max_workers": 2})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from cryptography.fernet import Fernet
from servers.common import free_port, stop, wait_for_http

import af.gateway

GATEWAY_CONFIG = Path(af.gateway.__file__).resolve().parent / "local_config.py"
PREFIX = "/services/dask-gateway"


@dataclass(frozen=True)
class HubTokens:
    """The hub service tokens of the gateway and of the ServiceX service."""

    gateway: str = field(default_factory=lambda: secrets.token_hex(16))
    servicex: str = field(default_factory=lambda: secrets.token_hex(16))


def hub_extra_config(tokens: HubTokens, service: str) -> str:
    """Hub configuration registering the gateway and giving the ServiceX service its token and role; auth_state
    is kept (encrypted), users' tokens may read their own (as the facility's server role may), and the test
    admin may set it (the IAM token a login would have stored)."""
    return f"""
import os
from hub_config.servicex import servicex_role
os.environ["JUPYTERHUB_CRYPT_KEY"] = "{secrets.token_hex(32)}"
c.Authenticator.enable_auth_state = True
c.JupyterHub.services.append({{"name": "dask-gateway", "api_token": "{tokens.gateway}"}})
for _service in c.JupyterHub.services:
    if _service["name"] == "{service}":
        _service["api_token"] = "{tokens.servicex}"
c.JupyterHub.load_roles.append(servicex_role())
for _role in c.JupyterHub.load_roles:  # users may use the gateway and read their auth_state, as on the facility
    if _role["name"] == "user":
        _role["scopes"] += ["access:services!service=dask-gateway", "admin:auth_state!user"]
    if _role["name"] == "test-admin":
        _role["scopes"].append("admin:auth_state")
"""


def set_auth_state(hub, user: str, state: dict) -> None:
    """Store `state` as `user`'s auth_state in the hub (as the authenticator does at login)."""
    hub._call("PATCH", f"/users/{user}", {"auth_state": state})


@dataclass
class GatewayServer:
    address: str  # the API, as dask_gateway.Gateway takes it
    proxy_address: str  # gateway://127.0.0.1:port
    command: list[str]
    environment: dict[str, str]
    run: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.run / "gateway.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                self.command, env=self.environment, stdout=out, stderr=subprocess.STDOUT, cwd=self.run
            )
        wait_for_http(f"{self.address}/api/health", self.process, log, "dask-gateway", timeout=60)

    def stop(self) -> None:
        """Stops the gateway; its clusters keep running (as on the facility: `stop_clusters_on_shutdown`)."""
        stop(self.process)

    def gateway(self, token: str):
        """A dask-gateway client with a hub `token` (synchronous)."""
        from dask_gateway import Gateway, JupyterHubAuth

        return Gateway(self.address, proxy_address=self.proxy_address, auth=JupyterHubAuth(token))


def start_gateway(run: Path, hub, tokens: HubTokens, limits: dict, idle_timeout: float = 0) -> GatewayServer:
    """The gateway on free loopback ports with `limits` (gateway.limits), its state in `run`."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "gateway" / "clusters").mkdir(parents=True, exist_ok=True)
    settings = {
        "platform": "local",
        "auth": {"client_id": "hub"},
        "gateway": {"limits": limits, "cluster_idle_timeout": idle_timeout},
    }
    (run / "settings.yaml").write_text(yaml.safe_dump(settings))
    ports = {
        "hub": urlsplit(hub.api_url).port,
        "gateway_api": free_port(),
        "gateway_web": free_port(),
        "gateway_tcp": free_port(),
    }
    environment = {
        **os.environ,
        "AF_SETTINGS": str(run / "settings.yaml"),
        "AF_PORTS": json.dumps(ports),
        "AF_STATE_DIR": str(run),
        "AF_GATEWAY_DB_KEY": Fernet.generate_key().decode(),
        "JUPYTERHUB_API_TOKEN": tokens.gateway,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for name in ("AF_CONTAINER_IMAGE", "AF_INTERNAL_IP"):  # clusters of worker processes, on loopback
        environment.pop(name, None)
    server = GatewayServer(
        address=f"http://127.0.0.1:{ports['gateway_web']}{PREFIX}",
        proxy_address=f"gateway://127.0.0.1:{ports['gateway_tcp']}",
        command=[str(Path(sys.executable).parent / "dask-gateway-server"), "-f", str(GATEWAY_CONFIG)],
        environment=environment,
        run=run,
    )
    server.start()
    return server
