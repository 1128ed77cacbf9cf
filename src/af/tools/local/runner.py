"""Start and stop the local facility: development OIDC provider, configurable-http-proxy, podman's API service,
JupyterHub, dask-gateway, the dashboard guard and ServiceX (af.tools.local.servicex: SeaweedFS and the service,
whose transforms run on a dask-gateway cluster of its own), on loopback addresses only, all state in one folder.
Users' servers and dask clusters run in containers of the notebook image (af.tools.local.containers); with
``containers=None`` (``af up --processes``) as processes of this virtual environment instead.

State folder layout (default ``state/``, git-ignored):
    secrets.json       generated secrets (cookie/crypt keys, service tokens, OIDC client secret), mode 0600
    accounts.json      the demo accounts and their passwords
    ports.json         the ports of the first start (reused by later starts)
    settings.yaml      the facility settings handed to hub_config (regenerated at each start)
    pids.json          PID of every component started
    logs/*.log         one log per component
    hub/, gateway/, oidc/, homes/<user>/   the components' databases and keys, and the users' homes
    servicex/          the ServiceX service's database and its S3 server's data (s3/)

Example:
    >>> facility = LocalFacility(Path("state"))  # doctest: +SKIP
    >>> facility.up()  # doctest: +SKIP
    >>> facility.down()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import af.gateway
import hub_config
from af.tools.local import servicex
from af.tools.local.containers import (
    INTERNAL_IP,
    MODE_FILE,
    ContainerError,
    ContainerMode,
    remove_containers,
    wait_api_service,
)
from af.tools.local.ports import Ports
from hub_config.container_spawner import give_to_uid

HERE = Path(__file__).resolve().parent
PROVIDER_SCRIPT = HERE / "oidc_provider" / "provider.mjs"
# The configuration files the hub and the gateway server load (they run in those processes, not in this one).
HUB_CONFIG = Path(hub_config.__file__).resolve().parent / "local_config.py"
GATEWAY_CONFIG = Path(af.gateway.__file__).resolve().parent / "local_config.py"
EXAMPLE_DATA = "AF_EXAMPLE_DATA"
MARKER = "AF_FACILITY_ID"
COMPONENTS = ("oidc", "proxy", "hub", "gateway", "guard")
# with users' code in containers: podman's API service, before the hub and the gateway that use it
CONTAINER_COMPONENTS = ("oidc", "proxy", "podman", "hub", "gateway", "guard")
CONTAINER_UID = 1000  # the notebook image's user
SECRET_NAMES = (
    "facility_id",
    "crypt_key",
    "proxy_token",
    "gateway_token",
    "operator_token",
    "oidc_client_secret",
    "gateway_db_key",
    *servicex.SECRET_NAMES,
)


class FacilityError(RuntimeError):
    """A component of the local facility failed to start; the message names it and its log file."""


@dataclass(frozen=True)
class Account:
    """A demo account of the development OIDC provider."""

    username: str
    password: str
    groups: tuple[str, ...]
    role: str


DEMO_ACCOUNTS = (
    ("ada", ("atlas", "atlas/af-admins"), "admin"),
    ("alice", ("atlas",), "ATLAS user"),
    ("bob", ("atlas",), "ATLAS user"),
    ("oscar", ("cms",), "outside the allowed groups"),
)


def _bin(name: str) -> str:
    """An executable of this virtual environment (the hub and gateway run the notebook's environment)."""
    return str(Path(sys.executable).parent / name)


def _new_secret(name: str) -> str:
    if name == "facility_id":
        return secrets.token_hex(8)
    if name == "gateway_db_key":  # a Fernet key, as dask-gateway's db_encrypt_keys expect
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_hex(32)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_http(
    url: str,
    timeout: float,
    check: Callable[[], None],
    limit: int = 500,
    context: ssl.SSLContext | None = None,
) -> None:
    """Wait until `url` answers with a status below `limit` (any answer but a server error by default);
    `context` verifies https."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        check()
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as response:
                if response.status < limit:
                    return
        except urllib.error.HTTPError as err:
            if err.code < limit:
                return
            last = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.2)
    raise FacilityError(f"{url} did not answer within {timeout:.0f} s ({last})")


def marked_processes(facility_id: str) -> list[int]:
    """PIDs of all processes carrying this facility's marker in their environment (servers, kernels, …)."""
    needle = f"{MARKER}={facility_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def descendants(pids: list[int]) -> list[int]:
    """PIDs of every process below `pids` in the process tree (children, their children, …)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = list(pids)
    while pending:
        below = children.get(pending.pop(), [])
        found += below
        pending += below
    return found


def terminate(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM `pids`, then SIGKILL those still alive after `grace` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class LocalFacility:
    """The local facility rooted at `state_dir` (see the module docstring for the layout)."""

    def __init__(
        self,
        state_dir: Path,
        ports: Ports | None = None,
        tutorials: Path | None = None,
        node_modules: Path = Path("node_modules"),
        example_data: Path | None = None,
        extra_users: int = 0,
        settings_overrides: Mapping[str, Any] | None = None,
        access_token_ttl: int = 600,
        containers: ContainerMode | None = None,
        iam_certificate: tuple[Path, Path] | None = None,
        trusted_ca_dir: Path | None = None,
    ):
        """`iam_certificate` (certificate, key): the development IAM serves https with them and its issuer is
        https://… (relying services such as rucio accept only https issuers); the components trust the
        certificate besides the system's CAs. `trusted_ca_dir`: a CA folder in OpenSSL's hashed layout (as the
        grid's /etc/grid-security/certificates) that dask workers in containers trust for https storage
        (mounted read-only at the same path, named by X509_CERT_DIR)."""
        self.state_dir = Path(state_dir).resolve()
        self.tutorials = Path(tutorials).resolve() if tutorials is not None else None
        self.node_modules = Path(node_modules).resolve()
        example_data = example_data if example_data is not None else os.environ.get(EXAMPLE_DATA)
        self.example_data = Path(example_data).resolve() if example_data else None
        self.extra_users = extra_users
        self.settings_overrides = dict(settings_overrides or {})
        self.access_token_ttl = access_token_ttl
        self.containers = containers
        self.iam_certificate = iam_certificate
        self.trusted_ca_dir = Path(trusted_ca_dir).resolve() if trusted_ca_dir else None
        # the facility's own ServiceX, unless an external endpoint is given
        self.servicex = "servicex.endpoint" not in self.settings_overrides
        saved = _read_json(self.state_dir / "ports.json", None)
        self.ports = ports or (Ports.saved(saved) if saved else Ports())

    # ---- state -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.public}"

    @property
    def components(self) -> tuple[str, ...]:
        return (CONTAINER_COMPONENTS if self.containers else COMPONENTS) + (
            servicex.COMPONENTS if self.servicex else ()
        )

    @property
    def internal_ip(self) -> str:
        """Where the ports containers must not reach listen (see af.tools.local.containers)."""
        return INTERNAL_IP if self.containers else "127.0.0.1"

    @property
    def servicex_placement(self) -> servicex.Placement:
        if not self.containers:
            return servicex.Placement()
        facility_id = self.secrets()["facility_id"]
        return servicex.Placement(internal=INTERNAL_IP, image=self.containers.image, facility_id=facility_id)

    @property
    def issuer(self) -> str:
        scheme = "https" if self.iam_certificate else "http"
        return f"{scheme}://127.0.0.1:{self.ports.oidc}"

    @property
    def trusted_cas(self) -> Path | None:
        """With `iam_certificate`: the system's CA bundle plus that certificate (the components' SSL_CERT_FILE)."""
        return self.state_dir / "oidc" / "trusted-cas.pem" if self.iam_certificate else None

    def ssl_context(self) -> ssl.SSLContext:
        """What verifies the facility's https endpoints (the IAM's with `iam_certificate`)."""
        return ssl.create_default_context(cafile=str(self.trusted_cas) if self.trusted_cas else None)

    def secrets(self) -> dict[str, str]:
        """The generated secrets of this state folder (created on first use, kept across restarts)."""
        path = self.state_dir / "secrets.json"
        values = _read_json(path, {})
        missing = [name for name in SECRET_NAMES if name not in values]
        if missing:
            for name in missing:
                values[name] = _new_secret(name)
            _write_private(path, json.dumps(values, indent=1))
        return values

    def accounts(self) -> list[Account]:
        """The demo accounts (generated passwords, kept in accounts.json), plus `extra_users` ATLAS users."""
        path = self.state_dir / "accounts.json"
        stored = _read_json(path, {})
        wanted = list(DEMO_ACCOUNTS) + [
            (f"user{i:02d}", ("atlas",), "ATLAS user (load tests)") for i in range(1, self.extra_users + 1)
        ]
        changed = False
        accounts = []
        for username, groups, role in wanted:
            if username not in stored:
                stored[username] = secrets.token_urlsafe(12)
                changed = True
            accounts.append(Account(username, stored[username], groups, role))
        if changed:
            _write_private(path, json.dumps(stored, indent=1))
        return accounts

    def account(self, username: str) -> Account:
        for account in self.accounts():
            if account.username == username:
                return account
        raise KeyError(f"no demo account {username!r} in {self.state_dir / 'accounts.json'}")

    def pids(self) -> dict[str, int]:
        return _read_json(self.state_dir / "pids.json", {})

    def settings(self) -> dict[str, Any]:
        """The facility settings of this local facility (template + addresses of this run)."""
        settings = yaml.safe_load((HERE / "settings.yaml").read_text())
        public = self.url
        this_run = {
            "hub.base_url": "/",
            "hub.public_url": public,
            "auth.issuer": self.issuer,
            "gateway.address": f"{public}/services/dask-gateway",
            "gateway.proxy_address": f"gateway://127.0.0.1:{self.ports.gateway_tcp}",
            "gateway.public_address": f"{public}/services/dask-gateway",
            "gateway.service_url": f"http://127.0.0.1:{self.ports.guard}",
            "tutorials.source": str(self.tutorials or ""),
            "local.state_dir": str(self.state_dir),
            **(servicex.settings(self.ports, self.servicex_placement) if self.servicex else {}),
        }
        for dotted, value in {**this_run, **self.settings_overrides}.items():
            node = settings
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return settings

    def _check_trusted_ca_dir(self) -> None:
        folder = self.trusted_ca_dir
        if folder is not None and not (folder.is_dir() and any(folder.glob("*.[0-9]"))):
            raise FacilityError(
                f"trusted CA folder {folder}: not a folder of hashed CA certificates (<hash>.0, as made by "
                "`openssl rehash`)"
            )

    def _prepare(self) -> dict[str, str]:
        self._check_trusted_ca_dir()
        for sub in ("logs", "hub", "gateway/clusters", "oidc", "homes", "servicex/s3"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        values = self.secrets()
        (self.state_dir / "ports.json").write_text(json.dumps(self.ports.as_dict(), indent=1))
        if self.containers:
            self.containers.save(self.state_dir)
            # SeaweedFS's container runs as the image's user
            give_to_uid(self.state_dir / "servicex" / "s3", CONTAINER_UID)
        else:
            (self.state_dir / MODE_FILE).unlink(missing_ok=True)
        (self.state_dir / "settings.yaml").write_text(yaml.safe_dump(self.settings(), sort_keys=False))
        provider_config = {
            "issuer": self.issuer,
            "host": "127.0.0.1",
            "port": self.ports.oidc,
            "keys_file": str(self.state_dir / "oidc" / "keys.json"),
            "node_modules": str(self.node_modules),
            "access_token_ttl": self.access_token_ttl,
            **self._iam_tls(),
            "clients": [
                {
                    "client_id": "jupyterhub-local",
                    "client_secret": values["oidc_client_secret"],
                    "redirect_uris": [f"{self.url}/hub/oauth_callback"],
                    # hub_config.auth.post_logout_url: the provider sends the browser back here after logout
                    "post_logout_redirect_uris": [f"{self.url}/hub/login"],
                }
            ],
            "accounts": {
                a.username: {"password": a.password, "groups": list(a.groups)} for a in self.accounts()
            },
        }
        _write_private(self.state_dir / "oidc" / "config.json", json.dumps(provider_config, indent=1))
        return values

    def _iam_tls(self) -> dict[str, str]:
        """The provider's https settings (none without `iam_certificate`); writes `trusted_cas`."""
        if not self.iam_certificate:
            return {}
        cert, key = (Path(p).resolve() for p in self.iam_certificate)
        paths = ssl.get_default_verify_paths()
        system = Path(paths.cafile or paths.openssl_cafile)
        self.trusted_cas.write_text(system.read_text() + "\n" + cert.read_text())
        return {"tls_cert": str(cert), "tls_key": str(key)}

    def environment(self, component: str = "") -> dict[str, str]:
        """Environment of a component (secrets, ports, settings file, and the marker used by `down`)."""
        values = self.secrets()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "DASK_GATEWAY", "AF_", "CONFIGPROXY"))
        }
        env.update(
            {
                MARKER: values["facility_id"],
                "AF_STATE_DIR": str(self.state_dir),
                "AF_SETTINGS": str(self.state_dir / "settings.yaml"),
                "AF_PORTS": json.dumps(self.ports.as_dict()),
                "AF_OIDC_CLIENT_SECRET": values["oidc_client_secret"],
                "AF_GATEWAY_API_TOKEN": values["gateway_token"],
                "AF_SERVICEX_API_TOKEN": values["servicex_token"],
                "AF_OPERATOR_TOKEN": values["operator_token"],
                "AF_GATEWAY_DB_KEY": values["gateway_db_key"],
                "JUPYTERHUB_CRYPT_KEY": values["crypt_key"],
                "CONFIGPROXY_AUTH_TOKEN": values["proxy_token"],
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            }
        )
        # Where the example PHYSLITE files are (the health check and the tutorials read them).
        if self.example_data is not None:
            env[EXAMPLE_DATA] = str(self.example_data)
        if self.containers:
            env.update(self.containers.environment(self.state_dir))
        if self.trusted_cas:
            env["SSL_CERT_FILE"] = str(self.trusted_cas)
        if self.trusted_ca_dir:
            env["AF_TRUSTED_CA_DIR"] = str(self.trusted_ca_dir)
        if component in ("gateway", "guard"):
            env["JUPYTERHUB_API_TOKEN"] = values["gateway_token"]
        env.update(servicex.environment(component, values))
        return env

    # ---- processes ---------------------------------------------------------------------------------------
    def _commands(self) -> dict[str, list[str]]:
        p = self.ports
        podman = {"podman": self.containers.service_command(self.state_dir)} if self.containers else {}
        servicex_settings = self.settings().get("servicex", {})
        days = float(servicex_settings.get("results_days", 7))
        workers = int(servicex_settings.get("max_workers", 4))
        rucio = servicex.rucio_options(servicex_settings)
        return {
            **servicex.commands(
                self.state_dir, p, servicex.seaweedfs_env(), days, self.servicex_placement, workers, rucio
            ),
            **podman,
            "oidc": ["node", str(PROVIDER_SCRIPT), str(self.state_dir / "oidc" / "config.json")],
            "proxy": [
                "node",
                str(self.node_modules / "configurable-http-proxy" / "bin" / "configurable-http-proxy"),
                "--ip=127.0.0.1",
                f"--port={p.public}",
                f"--api-ip={self.internal_ip}",
                f"--api-port={p.proxy_api}",
                f"--default-target=http://127.0.0.1:{p.hub}",
                f"--error-target=http://127.0.0.1:{p.hub}/hub/error",
                "--log-level=warn",
            ],
            "hub": [_bin("jupyterhub"), "-f", str(HUB_CONFIG)],
            "gateway": [_bin("dask-gateway-server"), "-f", str(GATEWAY_CONFIG)],
            "guard": [
                sys.executable,
                "-m",
                "af.gateway.dashboard_guard",
                f"--listen=127.0.0.1:{p.guard}",
                f"--upstream=http://{self.internal_ip}:{p.gateway_web}",
                f"--hub-api=http://127.0.0.1:{p.hub}/hub/api",
                "--prefix=/services/dask-gateway",
            ],
        }

    def _ready_urls(self) -> dict[str, str]:
        p = self.ports
        return {
            "oidc": f"{self.issuer}/.well-known/openid-configuration",
            "proxy": f"http://{self.internal_ip}:{p.proxy_api}/api/routes",
            "hub": f"http://127.0.0.1:{p.hub}/hub/health",
            # through the gateway's own proxy, which it starts after its API
            "gateway": f"http://{self.internal_ip}:{p.gateway_web}/services/dask-gateway/api/health",
            "guard": f"http://127.0.0.1:{p.guard}/services/dask-gateway/api/health",
            **servicex.ready_urls(p, self.servicex_placement),
        }

    def start_component(self, name: str, timeout: float = 120.0) -> int:
        """Start one component (unless already running), wait until it answers, record its PID."""
        pids = self.pids()
        if name in pids and _alive(pids[name]):
            return pids[name]
        log_path = self.state_dir / "logs" / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                self._commands()[name],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(name),
                cwd=self.state_dir,
                start_new_session=True,
            )
        pids[name] = process.pid
        (self.state_dir / "pids.json").write_text(json.dumps(pids, indent=1))

        def check() -> None:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise FacilityError(f"{name} exited with code {process.returncode}; log {log_path}:\n{tail}")

        try:
            if name == "podman" and self.containers:
                wait_api_service(self.containers.socket(self.state_dir), timeout, check)
            else:
                # The proxy's API answers 403 without its token; the others must answer 200.
                limit = 500 if name == "proxy" else 300
                _wait_http(self._ready_urls()[name], timeout, check, limit, self.ssl_context())
        except (FacilityError, ContainerError) as err:
            raise FacilityError(f"{name} did not start: {err} (log: {log_path})") from None
        return process.pid

    def stop_component(self, name: str, grace: float = 10.0) -> None:
        """Stop one component by its recorded PID (servers and clusters it started keep running)."""
        pids = self.pids()
        pid = pids.pop(name, None)
        if pid is not None and _alive(pid):
            terminate([pid], grace)
        (self.state_dir / "pids.json").write_text(json.dumps(pids, indent=1))

    def up(self) -> None:
        """Start every component that is not already running."""
        self._prepare()
        try:
            if self.containers:
                self.containers.check_image()
            if self.servicex:
                servicex.weed_binary(servicex.seaweedfs_env())
            for name in self.components:
                self.start_component(name)
            # The hub answers its health check before it has added the gateway's route to the proxy.
            _wait_http(f"{self.url}/services/dask-gateway/api/health", 60, lambda: None, limit=300)
            if self.servicex:  # 401 (no token) once routed; the hub answers 404 before
                _wait_http(f"{self.url}{servicex.PREFIX}/servicex", 60, lambda: None, limit=402)
        except FileNotFoundError as err:  # a program not installed (SeaweedFS: `make seaweedfs-env`)
            self.down()
            raise FacilityError(str(err)) from None
        except ContainerError as err:
            self.down()
            raise FacilityError(str(err)) from None
        except FacilityError:
            self.down()
            raise

    def down(self) -> list[int]:
        """Stop every component by PID, then every process carrying this facility's marker (users' servers,
        kernels, gateway schedulers and workers, the hub's services) and every process the components had
        started that is still running. Returns the PIDs found running."""
        stopped = []
        facility_id = _read_json(self.state_dir / "secrets.json", {}).get("facility_id")
        # the mode of the last start (`af down` is not told): containers go before podman's API service stops,
        # their monitors are among the components' children
        containers = self.containers or ContainerMode.load(self.state_dir)
        if containers and facility_id:
            remove_containers(facility_id, containers.environment(self.state_dir))
        started_by_components = descendants([pid for pid in self.pids().values() if _alive(pid)])
        for name in reversed(CONTAINER_COMPONENTS + servicex.COMPONENTS):
            pid = self.pids().get(name)
            if pid is not None and _alive(pid):
                stopped.append(pid)
            self.stop_component(name)
        leftovers = marked_processes(facility_id) if facility_id else []
        leftovers += [pid for pid in started_by_components if pid not in leftovers and _alive(pid)]
        terminate(leftovers, grace=5.0)
        return stopped + leftovers

    def running(self) -> dict[str, bool]:
        return {name: _alive(pid) for name, pid in self.pids().items()}

    def banner(self) -> str:
        """What `make up` prints: the URL and the demo accounts with their passwords."""
        lines = [
            f"Local facility running: {self.url}   (state: {self.state_dir}, stop with `make down`)",
            f"Development IAM (OpenID Connect): {self.issuer}",
            "Demo accounts:",
        ]
        for account in self.accounts()[: len(DEMO_ACCOUNTS)]:
            lines.append(
                f"  {account.username:<6} password {account.password:<18} groups {','.join(account.groups):<24}"
                f" ({account.role})"
            )
        return "\n".join(lines)


def remove_state(state_dir: Path) -> None:
    """Delete a state folder (after `down`)."""
    shutil.rmtree(state_dir, ignore_errors=True)
