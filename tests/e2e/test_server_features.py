"""What a user's JupyterLab offers: terminals, git, widgets, and the dask sidebar starting gateway clusters."""

from __future__ import annotations

import time

import pytest
import requests

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def alice_server(facility, hub):
    hub.api("POST", "/users", json={"usernames": ["alice"]})
    if not hub.api("GET", "/users/alice").json()["servers"]:
        assert hub.api("POST", "/users/alice/server").status_code in (201, 202)
    deadline = time.monotonic() + 120
    while not hub.api("GET", "/users/alice").json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.user_token('alice')}"
    return f"{facility.url}/user/alice", session


def test_extensions_and_terminals(alice_server):
    url, session = alice_server
    extensions = {e["name"] for e in session.get(f"{url}/lab/api/extensions", timeout=30).json()}
    assert {"jupyterlab-git", "dask-labextension", "jupyter-widgets-jupyterlab-manager"} <= extensions
    terminal = session.post(f"{url}/api/terminals", timeout=30)
    assert terminal.status_code == 200
    session.delete(f"{url}/api/terminals/{terminal.json()['name']}", timeout=30)


def test_dask_sidebar_starts_the_users_gateway_cluster(facility, hub, alice_server):
    url, session = alice_server
    created = session.put(f"{url}/dask/clusters", json={}, timeout=120)
    assert created.status_code == 200
    model = created.json()
    try:
        name = model["scheduler_address"].rsplit("/", 1)[-1]
        assert model["dashboard_link"] == f"{facility.url}/services/dask-gateway/clusters/{name}/status"
        listed = session.get(f"{url}/dask/clusters", timeout=30).json()
        assert [c["id"] for c in listed] == [model["id"]]
        owned = requests.get(
            f"{facility.url}/services/dask-gateway/api/v1/clusters/",
            headers={"Authorization": f"jupyterhub {hub.user_token('alice')}"},
            timeout=30,
        ).json()
        assert name in owned
    finally:
        session.delete(f"{url}/dask/clusters/{model['id']}", timeout=60)
