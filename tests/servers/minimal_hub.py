"""A real JupyterHub (sqlite, its own configurable-http-proxy from node_modules) with a registered service and
an admin service account that creates users and their API tokens, for services that authenticate hub tokens."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from servers.common import free_port, stop, wait_for_http

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
c.JupyterHub.bind_url = "http://127.0.0.1:{proxy_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.JupyterHub.db_url = "sqlite:///{run}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{run}/cookie_secret"
c.JupyterHub.pid_file = "{run}/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {{"name": "test-admin", "api_token": "{admin_token}"}},
    {{"name": "{service}"}},
]
c.JupyterHub.load_roles = [
    {{"name": "test-admin", "scopes": ["admin:users", "tokens", "read:users"], "services": ["test-admin"]}},
    {{"name": "user", "scopes": ["self", "access:services!service={service}"]}},
]
"""


@dataclass
class MinimalHub:
    api_url: str
    admin_token: str
    process: subprocess.Popen

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"token {self.admin_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    def user_token(self, name: str, scopes: list[str] | None = None) -> str:
        """A new API token of user `name` (created if needed), with the user's scopes or `scopes`."""
        try:
            self._call("POST", f"/users/{name}")
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise
        body = {"note": "test"} if scopes is None else {"note": "test", "scopes": scopes}
        return self._call("POST", f"/users/{name}/tokens", body)["token"]

    def stop(self) -> None:
        stop(self.process)


def start_hub(run: Path, service: str, extra_config: str = "") -> MinimalHub:
    """The hub; `extra_config` is Python appended to its configuration (e.g. more services and roles)."""
    run.mkdir(parents=True, exist_ok=True)
    admin_token = secrets.token_hex(16)
    ports = {"proxy_port": free_port(), "hub_port": free_port(), "proxy_api_port": free_port()}
    (run / "jupyterhub_config.py").write_text(
        CONFIG.format(run=run, admin_token=admin_token, service=service, **ports) + extra_config
    )
    environment = {
        **os.environ,
        "PATH": f"{REPO / 'node_modules' / '.bin'}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
    }
    log = open(run / "hub.log", "wb")  # noqa: SIM115 (kept open for the hub's lifetime)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(run / "jupyterhub_config.py")],
        env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=run,
    )  # fmt: skip
    api_url = f"http://127.0.0.1:{ports['hub_port']}/hub/api"
    wait_for_http(f"{api_url}/", process, run / "hub.log", "JupyterHub", timeout=90)
    return MinimalHub(api_url, admin_token, process)
