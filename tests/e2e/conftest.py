"""The local facility for the end-to-end tests: started once for this package on free ports in a temporary state
folder, by the same code as `make up` (users' servers and dask clusters in containers of the notebook image), and
stopped (every process and container it started) when the package's tests end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import requests

from af.tools.local.containers import ContainerMode, default_image
from af.tools.local.login import login
from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility
from tests.conftest import REPO

BUILD = REPO / "build" / "e2e"
CONTAINERS_CONF = REPO / "images" / "containers.conf"
E2E_NOTEBOOK = "e2e_gateway.ipynb"
ACCESS_TOKEN_TTL = 20
LOAD_USERS = 30
# The cell the browser test runs: a gateway cluster, scaled to 2 workers, a computation, shutdown.
GATEWAY_CELL = """\
import time
from dask_gateway import Gateway
import dask.array as da

started = time.perf_counter()
gateway = Gateway()
cluster = gateway.new_cluster()
cluster.scale(2)
client = cluster.get_client()
client.wait_for_workers(2, timeout=120)
ready = time.perf_counter() - started
total = da.arange(1_000_000, chunks=100_000).sum().compute()
workers = len(client.scheduler_info()["workers"])
cluster.shutdown()
print(f"E2E workers={workers} total={total} cluster_ready_s={ready:.2f}")
"""


def container_mode() -> ContainerMode:
    """Users' code in containers of this version's notebook image (`make images`), as `make up` runs it."""
    return ContainerMode(image=default_image(), conf=CONTAINERS_CONF)


def write_e2e_notebook(folder: Path) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(GATEWAY_CELL)]
    path = folder / E2E_NOTEBOOK
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="package")
def tutorials_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's tutorials plus the notebook the browser test runs."""
    folder = tmp_path_factory.mktemp("tutorials")
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copyfile(notebook, folder / notebook.name)
    write_e2e_notebook(folder)
    return folder


@pytest.fixture(scope="package")
def facility(tmp_path_factory: pytest.TempPathFactory, tutorials_dir: Path) -> Iterator[LocalFacility]:
    state = tmp_path_factory.mktemp("facility-state")
    # Short-lived IAM access tokens, checked often: the refresh path is exercised by every test.
    local = LocalFacility(
        state,
        ports=Ports.free(),
        tutorials=tutorials_dir,
        access_token_ttl=ACCESS_TOKEN_TTL,
        extra_users=LOAD_USERS,
        settings_overrides={"auth.refresh_age": 2},  # with the facility's own ServiceX
        containers=container_mode(),
    )
    try:
        local.up()
        yield local
    finally:
        stopped = local.down()
        BUILD.mkdir(parents=True, exist_ok=True)
        for log in (state / "logs").glob("*.log"):
            shutil.copyfile(log, BUILD / f"facility-{log.name}")
        print(f"facility stopped ({len(stopped)} processes)")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The podman CLI with the project's containers.conf (what the facility's containers run under)."""
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    return subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=300, check=check
    )


class Hub:
    """Small helper around the hub API with the operator token."""

    def __init__(self, facility: LocalFacility):
        self.url = facility.url
        self.headers = {"Authorization": f"token {facility.secrets()['operator_token']}"}

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=self.headers, timeout=60, **kwargs
        )

    def user_token(self, username: str, expires_in: int = 900) -> str:
        self.api("POST", "/users", json={"usernames": [username]})
        response = self.api(
            "POST", f"/users/{username}/tokens", json={"note": "e2e", "expires_in": expires_in}
        )
        response.raise_for_status()
        return response.json()["token"]


@pytest.fixture(scope="package")
def hub(facility: LocalFacility) -> Hub:
    return Hub(facility)


@pytest.fixture(scope="package")
def screenshots() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    return BUILD


# Debian's chromium headless, as every browser test here launches it (tests/cluster too)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]


# Module scope: Playwright's sync API keeps an event loop running in the main thread while it is open, which
# would break asyncio.run() in the tests that follow.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.fail(
            "Debian's chromium is missing: run `make sysdeps` (APT_PACKAGES += chromium)", pytrace=False
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=CHROMIUM_ARGS,
        )
        yield chromium
        chromium.close()


def http_login(facility: LocalFacility, username: str) -> tuple[requests.Session, requests.Response]:
    return login(facility.url, username, facility.account(username).password)


def save_json(name: str, data: dict) -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / name).write_text(json.dumps(data, indent=1))


def gateway_for(facility, token: str):
    """A dask-gateway client of the facility, authenticated with a hub token."""
    from dask_gateway import Gateway, JupyterHubAuth

    return Gateway(
        address=f"{facility.url}/services/dask-gateway",
        proxy_address=f"gateway://127.0.0.1:{facility.ports.gateway_tcp}",
        auth=JupyterHubAuth(api_token=token),
    )
