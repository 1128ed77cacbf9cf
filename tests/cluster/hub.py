"""JupyterHub with KubeSpawner against the cluster of tools/cluster, configured as the chart configures it.

The hub (from .venv), its proxy and the development OIDC provider run inside the node's network namespace,
so user pods reach the hub at the node's address and the proxy reaches pod IPs; the hub's public port and the
provider (on the namespace's loopback, so that its issuer URL is the same inside and outside) are forwarded to
the host's loopback (nsforward, as up.sh does for the API server).

"As the chart configures it": the ConfigMap our chart renders (settings.yaml and analysis_facility.py) is
mounted where z2jh's hub reads it (/usr/local/etc/jupyterhub/..., in a private mount namespace of the hub
only), and the hub's jupyterhub_config.py sets what z2jh's own jupyterhub_config.py sets from the chart's
`jupyterhub` values for these keys (singleuser image, uid/fs_gid 1000/100, cmd, no privilege escalation, the
namespace, the hub's address) before it executes jupyterhub_config.d/*.py as z2jh 4.x does (exec with `c` in
scope, not traitlets' load_subconfig, whose fresh `c` would hide what was set before). z2jh itself is not here
(its chart cannot be downloaded): that file is the stand-in for it, nothing of the facility is.

Two hubs can run side by side with different `HubPorts` (the proxy's API port is the proxy's + 1).

Example:
    >>> with KubeHub.start(cluster_bin, tmp_path, values, "ns") as hub:  # doctest: +SKIP
    ...     hub.api("POST", "/users/alice/server")
    >>> ports = HubPorts(hub=18081, proxy=18000, host=18100, oidc=15600)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import requests
import yaml

from af.tools.check.chart import standalone_copy
from af.tools.check.repo import Repo

from .cluster import KUBECONFIG, NETNS, REPO, facility_chart

NODE_IP = "10.201.0.1"  # tools/cluster/lib.sh NODE_IP: the node's address inside the namespace
API_INSIDE = f"https://{NODE_IP}:6443"
# the provider listens on the namespace's loopback and is forwarded to the same address on the host's, so the
# issuer URL is the same for the hub (inside) and the user's client (outside)
OIDC_PORT = int(os.environ.get("CLUSTER_OIDC_PORT", "15556"))
PROXY_PORT = 8000
HUB_PORT = 8081
HOST_PORT = int(os.environ.get("CLUSTER_HUB_PORT", "18000"))  # the proxy on the host's loopback
CLIENT_ID = "analysis-facility"  # chart default settings.auth.client_id
Z2JH_CONFIG = """
# What z2jh's jupyterhub_config.py sets from the chart's `jupyterhub` values for these keys (z2jh defaults
# where the chart sets nothing), then z2jh's loading of jupyterhub_config.d/.
import glob
c.JupyterHub.hub_ip = {node!r}
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.hub_connect_ip = {node!r}
c.JupyterHub.bind_url = "http://{node}:{proxy_port}"
c.ConfigurableHTTPProxy.command = ["node", {chp!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.JupyterHub.db_url = "sqlite:///{folder}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{folder}/cookie_secret"
c.JupyterHub.cleanup_servers = False  # z2jh: user pods outlive a restart of the hub
c.KubeSpawner.namespace = {namespace!r}
c.KubeSpawner.image = {image!r}
c.KubeSpawner.image_pull_policy = "IfNotPresent"
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 100
c.Spawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.start_timeout = 300
c.KubeSpawner.volumes = {volumes!r}
c.KubeSpawner.volume_mounts = {volume_mounts!r}
c.KubeSpawner.environment = {environment!r}
for path in sorted(glob.glob("/usr/local/etc/jupyterhub/jupyterhub_config.d/*.py")):
    with open(path) as file:
        exec(compile(file.read(), path, "exec"))
"""


def chart_configmap(values: Mapping[str, Any]) -> dict[str, str]:
    """The data of the settings ConfigMap our chart renders with `values` (subcharts off).

    Example:
        >>> yaml.safe_load(chart_configmap({})["settings.yaml"])["platform"]  # doctest: +SKIP
        'kubernetes'
    """
    with standalone_copy(Repo.discover()) as chart_dir:
        rendered = helm_python.Chart.load(chart_dir).render(
            facility_chart.with_subcharts_off(values),
            name=facility_chart.RELEASE,
            namespace=facility_chart.NAMESPACE,
            is_install=True,
        )
    for template, text in rendered.items():
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") == "ConfigMap" and "settings.yaml" in doc.get("data", {}):
                return doc["data"]
    raise AssertionError("the chart rendered no ConfigMap with settings.yaml")


def chart_values() -> dict[str, Any]:
    """The chart's default values."""
    return helm_python.Chart.load(REPO / "charts" / "analysis-facility").values


def forward(cluster_bin: Path, host_port: int, inside: str) -> list[str]:
    """nsforward from the host's 127.0.0.1:`host_port` to `inside` (host:port) in the node's namespace."""
    return [
        str(cluster_bin / "nsforward"),
        "-listen",
        f"127.0.0.1:{host_port}",
        "-netns",
        f"/run/netns/{NETNS}",
        "-to",
        inside,
    ]


def in_node(*command: str) -> list[str]:
    """`command` run inside the node's network namespace."""
    return ["ip", "netns", "exec", NETNS, *command]


def inside_kubeconfig(folder: Path) -> Path:
    """The admin kubeconfig with the API server's address inside the namespace (the host's is a forward)."""
    config = yaml.safe_load(KUBECONFIG.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = API_INSIDE
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class HubPorts:
    """The hub's ports: `hub` and `proxy` on the node's address inside the namespace (the proxy's API on
    `proxy` + 1 on the namespace's loopback), `host` (the proxy) and `oidc` (the provider) on the host's loopback.

    Example:
        >>> HubPorts(hub=18081, proxy=18000, host=18100, oidc=15600).proxy_api
        18001
    """

    hub: int
    proxy: int
    host: int
    oidc: int

    @property
    def proxy_api(self) -> int:
        return self.proxy + 1

    @classmethod
    def default(cls) -> HubPorts:
        """The module's ports (read at call time: tests may patch HUB_PORT, PROXY_PORT, HOST_PORT, OIDC_PORT)."""
        return cls(hub=HUB_PORT, proxy=PROXY_PORT, host=HOST_PORT, oidc=OIDC_PORT)


@dataclass
class KubeHub:
    """A running hub: its URL on the host, the operator token, the settings it loaded, its processes."""

    url: str
    operator_token: str
    settings: dict[str, Any]
    folder: Path
    processes: dict[str, subprocess.Popen]
    commands: dict[str, list[str]]
    env: dict[str, str]

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        cluster_bin: Path,
        folder: Path,
        values: Mapping[str, Any],
        namespace: str,
        volumes: list[dict[str, Any]] | None = None,
        volume_mounts: list[dict[str, Any]] | None = None,
        environment: Mapping[str, str] | None = None,
        accounts: Mapping[str, tuple[str, list[str]]] | None = None,
        ports: HubPorts | None = None,
    ) -> Iterator[KubeHub]:
        """Start the OIDC provider (with `accounts`: name -> (password, groups)), the hub (spawning into
        `namespace`) and the forwards on `ports` (HubPorts.default() unless given); stop them at the end."""
        accounts = accounts or {}
        ports = ports or HubPorts.default()
        issuer = f"http://127.0.0.1:{ports.oidc}"
        public = f"http://127.0.0.1:{ports.host}"
        values = {
            **values,
            "settings": {
                **values.get("settings", {}),
                "hub": {"base_url": "/", "public_url": public},
                "auth": {**chart_values()["settings"]["auth"], "issuer": issuer},
            },
        }
        data = chart_configmap(values)
        etc = folder / "etc" / "jupyterhub"
        (etc / "analysis-facility").mkdir(parents=True)
        (etc / "jupyterhub_config.d").mkdir()
        (etc / "analysis-facility" / "settings.yaml").write_text(data["settings.yaml"])
        (etc / "jupyterhub_config.d" / "analysis_facility.py").write_text(data["analysis_facility.py"])
        singleuser = chart_values()["jupyterhub"]["singleuser"]["image"]
        (folder / "jupyterhub_config.py").write_text(
            Z2JH_CONFIG.format(
                node=NODE_IP,
                hub_port=ports.hub,
                proxy_port=ports.proxy,
                proxy_api_port=ports.proxy_api,
                chp=str(
                    REPO / "node_modules" / "configurable-http-proxy" / "bin" / "configurable-http-proxy"
                ),
                folder=folder,
                namespace=namespace,
                image=f"{singleuser['name']}:{singleuser['tag']}",
                volumes=volumes or [],
                volume_mounts=volume_mounts or [],
                environment=dict(environment or {}),
            )
        )
        client_secret = secrets.token_hex(16)
        (folder / "oidc").mkdir()
        (folder / "oidc" / "config.json").write_text(
            json.dumps(
                {
                    "issuer": issuer,
                    "host": "127.0.0.1",
                    "port": ports.oidc,
                    "keys_file": str(folder / "oidc" / "keys.json"),
                    "node_modules": str(REPO / "node_modules"),
                    "clients": [
                        {
                            "client_id": CLIENT_ID,
                            "client_secret": client_secret,
                            "redirect_uris": [f"{public}/hub/oauth_callback"],
                        }
                    ],
                    "accounts": {
                        name: {"password": password, "groups": groups}
                        for name, (password, groups) in accounts.items()
                    },
                }
            )
        )
        operator_token = secrets.token_hex(32)
        env = {
            **os.environ,
            "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
            "KUBECONFIG": str(inside_kubeconfig(folder)),
            "AF_OIDC_CLIENT_SECRET": client_secret,
            "AF_OPERATOR_TOKEN": operator_token,
            "AF_GATEWAY_API_TOKEN": secrets.token_hex(32),
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
            "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        }
        # the chart's files at z2jh's paths, for the hub only: a private mount namespace over /usr/local/etc
        hub_command = (
            f"mount --bind {folder / 'etc'} /usr/local/etc && cd {folder} && "
            f"exec {REPO / '.venv' / 'bin' / 'jupyterhub'} -f {folder / 'jupyterhub_config.py'}"
        )
        commands = {
            "oidc": in_node(
                "node",
                str(REPO / "src/af/tools/local/oidc_provider/provider.mjs"),
                str(folder / "oidc/config.json"),
            ),
            "hub": in_node("unshare", "--mount", "--propagation", "private", "sh", "-c", hub_command),
            "forward": forward(cluster_bin, ports.host, f"{NODE_IP}:{ports.proxy}"),
            "oidc-forward": forward(cluster_bin, ports.oidc, f"127.0.0.1:{ports.oidc}"),
        }
        hub = cls(public, operator_token, yaml.safe_load(data["settings.yaml"]), folder, {}, commands, env)
        try:
            for name in commands:
                hub._launch(name)
                if name == "oidc":
                    hub._wait(f"{issuer}/.well-known/openid-configuration", inside=True)
            hub._wait_ready()
            yield hub
        finally:
            for name in reversed(list(hub.processes)):
                hub.stop(name)

    def _launch(self, name: str) -> None:
        """Start process `name` (its output appended to `name`.log)."""
        log = (self.folder / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            self.commands[name], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self, name: str) -> None:
        """Stop process `name` (SIGTERM, SIGKILL after 15 s) and wait for it."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def restart_hub(self) -> None:
        """Stop the hub (and with it its proxy: JupyterHub stops the proxy it started) and start it again on the
        same database and cookie secret, as when z2jh's hub pod is replaced; return once its API answers."""
        self.stop("hub")
        self._launch("hub")
        self._wait_ready()

    def log(self, name: str = "hub") -> str:
        """The output of one of the processes (oidc, hub, forward)."""
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def _wait(self, url: str, inside: bool = False, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            command = (
                in_node("curl", "-fsS", "-o", "/dev/null", url)
                if inside
                else ["curl", "-fsS", "-o", "/dev/null", url]
            )
            if subprocess.run(command, capture_output=True).returncode == 0:
                return
            if any(p.poll() is not None for p in self.processes.values()):
                break
            time.sleep(0.5)
        raise AssertionError(
            f"{url} not answering; logs:\n"
            + "\n".join(self.log(n) for n in ("oidc", "hub") if (self.folder / f"{n}.log").exists())
        )

    def _wait_ready(self) -> None:
        self._wait(f"{self.url}/hub/api/", seconds=120)

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """A request to the hub's REST API (/hub/api + `path`) with the operator's token unless `token`."""
        headers = {"Authorization": f"token {token or self.operator_token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)
