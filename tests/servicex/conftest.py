"""The facility's ServiceX service started for real: a real JupyterHub (tokens), SeaweedFS (S3), a dask cluster
of worker processes, and `python -m af.servicex` on loopback; the real `servicex` client talks to it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))  # the `servers` package lives in tests/

from servers.minimal_hub import start_hub  # noqa: E402
from servers.seaweedfs import start_seaweedfs  # noqa: E402

from tests.servicex.gateway_server import HubTokens, hub_extra_config  # noqa: E402
from tests.servicex.service_process import SERVICE, start_service, write_user_config  # noqa: E402
from tests.servicex.transforms import RESULTS_SECONDS, RETRY_DELAY  # noqa: E402

# the remote-reading servers of tests/io (the files they serve, nginx, a faulty server)
_io = importlib.util.spec_from_file_location("io_servers_conftest", TESTS / "io" / "conftest.py")
_io_conftest = importlib.util.module_from_spec(_io)
_io.loader.exec_module(_io_conftest)
served, nginx, faulty = _io_conftest.served, _io_conftest.nginx, _io_conftest.faulty


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hub_tokens() -> HubTokens:
    return HubTokens()


@pytest.fixture(scope="session")
def hub(tmp_path_factory, hub_tokens):
    """The hub, with the gateway registered and the service's token and role (for the gateway engine)."""
    server = start_hub(tmp_path_factory.mktemp("hub"), SERVICE, hub_extra_config(hub_tokens, SERVICE))
    yield server
    server.stop()


@contextlib.contextmanager
def local_workers(n_workers: int = 2, **environment: str | None):
    """A dask cluster of worker processes on loopback whose environment has `environment` (None: removed);
    its scheduler's address."""
    from distributed import LocalCluster

    saved = dict(os.environ)
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:  # fmt: skip
            os.environ.clear()
            os.environ.update(saved)
            yield cluster.scheduler_address
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def dask_scheduler():
    """Workers in processes of their own, with no rucio configuration (DIDs come with their replicas)."""
    with local_workers(RUCIO_CONFIG=None) as address:
        yield address


@pytest.fixture(scope="session")
def servicex_service(tmp_path_factory, hub, seaweedfs, dask_scheduler):
    run = tmp_path_factory.mktemp("servicex")
    service = start_service(
        run, hub, seaweedfs, dask_scheduler, "--retries", "2", "--retry-delay", str(RETRY_DELAY),
        environment={"RUCIO_CONFIG": None},
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="session")
def expiring_service(tmp_path_factory, hub, seaweedfs, dask_scheduler):
    """A second service (own state, same hub, S3 and dask) whose results expire after RESULTS_SECONDS; a retry
    waits longer than that."""
    service = start_service(
        tmp_path_factory.mktemp("servicex-expiring"), hub, seaweedfs, dask_scheduler,
        "--results-days", str(RESULTS_SECONDS / 86400), "--expire-every", "0.5",
        "--retries", "1", "--retry-delay", str(RESULTS_SECONDS + 1),
    )  # fmt: skip
    yield service
    service.stop()


@dataclass
class User:
    name: str
    token: str  # the hub token of the user's servicex.yaml
    config: Path

    def deliver(self, spec: dict, **options):
        from servicex import ProgressBarFormat, deliver

        return deliver(spec, config_path=str(self.config), progress_bar=ProgressBarFormat.none, **options)

    def call(self, method: str, path: str):
        """A call of the service's API as the client makes it (access token from /token/refresh)."""
        import httpx

        adapter = self.adapter()
        headers = asyncio.run(adapter._get_authorization())
        return httpx.request(method, f"{adapter.url}{path}", headers=headers, timeout=30)

    def failures(self, request_id: str) -> list[dict]:
        answer = self.call("GET", f"/servicex/transformation/{request_id}/results?status=failure")
        answer.raise_for_status()
        return answer.json()["results"]

    def adapter(self):
        from servicex.servicex_adapter import ServiceXAdapter

        url = next(
            line.split(": ", 1)[1] for line in self.config.read_text().splitlines() if "endpoint:" in line
        )
        return ServiceXAdapter(url.strip(), self.token)


def _user(hub, service, tmp_path_factory, name: str) -> User:
    token = hub.user_token(name)
    config = write_user_config(tmp_path_factory.mktemp(f"home-{name}"), service.url, token)
    return User(name, token, config)


@pytest.fixture(scope="session")
def alice(hub, servicex_service, tmp_path_factory) -> User:
    return _user(hub, servicex_service, tmp_path_factory, "alice")


@pytest.fixture(scope="session")
def bob(hub, servicex_service, tmp_path_factory) -> User:
    return _user(hub, servicex_service, tmp_path_factory, "bob")


@pytest.fixture(scope="session")
def carol(hub, expiring_service, tmp_path_factory) -> User:
    """A user of the `expiring_service`."""
    return _user(hub, expiring_service, tmp_path_factory, "carol")
