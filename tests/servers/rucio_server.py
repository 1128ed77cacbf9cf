"""A real rucio server (PyPI `rucio`, in its own virtual environment build/rucioenv) with SQLite on loopback,
and a client configuration for it (userpass root account, as bootstrapped)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from servers.common import free_port, stop, wait_for_http

REPO = Path(__file__).resolve().parents[2]
RUCIO_ENV = Path(os.environ.get("PHYSLITE_RUCIO_ENV", REPO / "build" / "rucioenv"))
USERNAME, PASSWORD = "ddmlab", "secret"

SERVER_CONFIG = """
[common]
logdir = {run}
loglevel = WARNING
[database]
default = sqlite:///{run}/rucio.db
[alembic]
cfg = {run}/alembic.ini
[bootstrap]
userpass_identity = {username}
userpass_pwd = {password}
userpass_email = root@localhost
[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = identity
"""

CLIENT_CONFIG = """
[client]
rucio_host = {url}
auth_host = {url}
auth_type = userpass
username = {username}
password = {password}
account = root
auth_token_file_path = {run}/client/token
request_retries = 1
"""


@dataclass
class RucioServer:
    url: str
    run: Path
    client_config: Path
    process: subprocess.Popen

    def stop(self) -> None:
        stop(self.process)


def bootstrap_rucio(run: Path, extra_config: str = "") -> dict[str, str]:
    """Write the server configuration (SERVER_CONFIG + `extra_config`) to `run`, create the SQLite schema and
    the root account; return the environment the server runs with."""
    python = RUCIO_ENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no rucio server environment in {RUCIO_ENV}: run `make rucio-server-env`")
    run.mkdir(parents=True, exist_ok=True)
    (run / "client").mkdir(exist_ok=True)
    site = next((RUCIO_ENV / "lib").glob("python3*/site-packages"))
    template = (RUCIO_ENV / "rucio" / "etc" / "alembic.ini.template").read_text()
    alembic = []
    for line in template.splitlines():
        if line.startswith(("sqlalchemy.url", "default =", "version_table_schema")):
            continue
        if line.startswith("script_location"):
            line = f"script_location = {site}/rucio/db/sqla/migrate_repo"
        alembic.append(line)
        if line.strip() == "[alembic]":
            alembic.append(f"sqlalchemy.url = sqlite:///{run}/rucio.db")
    (run / "alembic.ini").write_text("\n".join(alembic) + "\n")
    server_config = SERVER_CONFIG.format(run=run, username=USERNAME, password=PASSWORD) + extra_config
    (run / "rucio.cfg").write_text(server_config)
    environment = {**os.environ, "RUCIO_CONFIG": str(run / "rucio.cfg")}
    subprocess.run(
        [str(python), str(RUCIO_ENV / "rucio" / "tools" / "bootstrap.py")],
        env=environment,
        check=True,
        capture_output=True,
        cwd=run,
    )
    return environment


def start_rucio(run: Path) -> RucioServer:
    """Bootstrap the SQLite schema and the root account, then start the flask application."""
    environment = bootstrap_rucio(run)
    port = free_port()
    log = open(run / "server.log", "wb")  # noqa: SIM115 (kept open for the server's lifetime)
    process = subprocess.Popen(
        [
            str(RUCIO_ENV / "bin" / "flask"),
            "--app",
            "rucio.web.rest.flaskapi.v1.main:application",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=run,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/ping", process, run / "server.log", "rucio server", error_answers=False)
    client_config = run / "client.cfg"
    client_config.write_text(CLIENT_CONFIG.format(url=url, username=USERNAME, password=PASSWORD, run=run))
    return RucioServer(url, run, client_config, process)
