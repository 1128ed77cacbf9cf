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
    """What the facility sets in a user's server: where the PHYSLITE files are."""
    return {"PHYSLITE_TEST_DATA": str(r22_path.parent)}


@pytest.fixture(scope="module")
def facility_user_env(tmp_path_factory: pytest.TempPathFactory, data_env: dict[str, str]):
    """What a user's server gets from the local facility (started here by the same code as `make up`): the
    ``DASK_GATEWAY__*`` settings of hub_config and a hub token of an ATLAS user, so that ``Gateway()`` works
    with no arguments. Everything the facility started is stopped afterwards (clusters included)."""
    import requests

    from af.local.ports import Ports
    from af.local.runner import LocalFacility
    from hub_config.gateway import user_environment

    state = tmp_path_factory.mktemp("facility-state")
    facility = LocalFacility(state, ports=Ports.free(), tutorials=tmp_path_factory.mktemp("no-tutorials"))
    try:
        facility.up()
        operator = {"Authorization": f"token {facility.secrets()['operator_token']}"}
        api = f"{facility.url}/hub/api"
        requests.post(f"{api}/users", json={"usernames": ["alice"]}, headers=operator, timeout=60)
        response = requests.post(
            f"{api}/users/alice/tokens",
            json={"note": "notebook tests", "expires_in": 1800},
            headers=operator,
            timeout=60,
        )
        response.raise_for_status()
        yield {
            **data_env,
            **user_environment(facility.settings()),
            "JUPYTERHUB_API_TOKEN": response.json()["token"],
            "JUPYTERHUB_USER": "alice",
            # the marker `LocalFacility.down` uses to find every process it must stop (the kernel included)
            "AF_FACILITY_ID": facility.secrets()["facility_id"],
        }
    finally:
        facility.down()
