"""Idle culling, on a facility of its own with short timeouts: idle servers are stopped by the culler and idle
gateway clusters by the gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from dask_gateway import Gateway, JupyterHubAuth

from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility
from tests.e2e.conftest import container_mode

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def quick_culling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFacility]:
    facility = LocalFacility(
        tmp_path_factory.mktemp("culling-state"),
        ports=Ports.free(),
        tutorials=tmp_path_factory.mktemp("no-tutorials"),
        settings_overrides={
            "culling.server_idle_timeout": 10,
            "culling.every": 2,
            "gateway.cluster_idle_timeout": 5,
        },
        containers=container_mode(),
    )
    try:
        facility.up()
        yield facility
    finally:
        facility.down()


def api(facility: LocalFacility, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {facility.secrets()['operator_token']}"}
    return requests.request(method, f"{facility.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_idle_server_is_culled(quick_culling):
    api(quick_culling, "POST", "/users", json={"usernames": ["alice"]})
    assert api(quick_culling, "POST", "/users/alice/server").status_code in (201, 202)
    wait_for(
        lambda: api(quick_culling, "GET", "/users/alice").json()["servers"].get("", {}).get("ready"),
        120,
        "server did not start",
    )
    wait_for(
        lambda: api(quick_culling, "GET", "/users/alice").json()["servers"] == {}, 90, "server not culled"
    )


def test_idle_cluster_is_stopped(quick_culling):
    api(quick_culling, "POST", "/users", json={"usernames": ["bob"]})
    token = api(quick_culling, "POST", "/users/bob/tokens", json={"note": "culling"}).json()["token"]
    with Gateway(
        address=f"{quick_culling.url}/services/dask-gateway",
        proxy_address=f"gateway://127.0.0.1:{quick_culling.ports.gateway_tcp}",
        auth=JupyterHubAuth(api_token=token),
    ) as gateway:
        cluster = gateway.new_cluster(shutdown_on_close=False)
        cluster.close()  # no client left: the cluster is idle from now on
        wait_for(lambda: gateway.list_clusters() == [], 90, "idle cluster still running")
