"""Fixtures of the notebook tests: the kernel environment pointing at the real test data, the remote-reading
test servers (the very fixtures of tests/io, loaded from there), and the local facility for dask-gateway."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _load_io_fixtures():
    # tests/io/conftest.py defines the servers (nginx https, XRootD, rucio) with the files the io tests
    # expect; loading it here under another name reuses those fixtures instead of duplicating them.
    path = Path(__file__).resolve().parents[1] / "io" / "conftest.py"
    spec = importlib.util.spec_from_file_location("notebook_tests_io_servers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_io = _load_io_fixtures()
served, nginx, xrootd, rucio = _io.served, _io.nginx, _io.xrootd, _io.rucio


@pytest.fixture(scope="session")
def data_env(r21_path: Path, r22_path: Path) -> dict[str, str]:
    """What the facility sets in a user's server: ``AF_EXAMPLE_DATA``, the folder of the example PHYSLITE files
    (here the test suite's own ``PHYSLITE_TEST_DATA`` folder, which holds both)."""
    assert r21_path.parent == r22_path.parent
    return {"AF_EXAMPLE_DATA": str(r22_path.parent)}


@pytest.fixture(scope="session")
def local_facility(tmp_path_factory: pytest.TempPathFactory, data_env: dict[str, str]):
    """The local facility, started by the same code as `make up` (tutorials from notebooks/), stopped with
    everything it started (servers, kernels, clusters) at the end."""
    from af.tools.local.ports import Ports
    from af.tools.local.runner import LocalFacility

    facility = LocalFacility(
        tmp_path_factory.mktemp("facility-state"),
        ports=Ports.free(),
        tutorials=Path(__file__).resolve().parents[2] / "notebooks",
        example_data=Path(data_env["AF_EXAMPLE_DATA"]),
    )
    try:
        facility.up()
        yield facility
    finally:
        facility.down()


def hub_api(facility, method: str, path: str, **kwargs):
    """The hub's REST API with the facility's operator token."""
    import requests

    headers = {"Authorization": f"token {facility.secrets()['operator_token']}"}
    return requests.request(method, f"{facility.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)


def user_token(facility, username: str) -> str:
    hub_api(facility, "POST", "/users", json={"usernames": [username]})
    response = hub_api(
        facility, "POST", f"/users/{username}/tokens", json={"note": "notebook tests", "expires_in": 1800}
    )
    response.raise_for_status()
    return response.json()["token"]


@pytest.fixture(scope="module")
def facility_user_env(local_facility, data_env: dict[str, str]) -> dict[str, str]:
    """What a user's server gets from the facility: hub_config's ``DASK_GATEWAY__*`` settings and a hub token of
    an ATLAS user, so that ``Gateway()`` works with no arguments in a kernel started by the tests."""
    from hub_config.gateway import user_environment
    from hub_config.settings import validate_settings

    return {
        **data_env,
        **user_environment(validate_settings(local_facility.settings()).gateway),
        "JUPYTERHUB_API_TOKEN": user_token(local_facility, "alice"),
        "JUPYTERHUB_USER": "alice",
        # the marker `LocalFacility.down` uses to find every process it must stop (the kernel included)
        "AF_FACILITY_ID": local_facility.secrets()["facility_id"],
    }
