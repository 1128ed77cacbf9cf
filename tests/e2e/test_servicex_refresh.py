"""``~/servicex.yaml`` follows the user's IAM access token while the server runs: when the hub refreshes the
token, the server rewrites the file (mode 0600) with the new one, without a restart."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
import requests
import yaml
from traitlets.config import Config

from af.user_server.servicex_config import write_private_atomically
from hub_config import configure
from tests.e2e.conftest import ACCESS_TOKEN_TTL, SERVICEX_ENDPOINT, http_login
from tests.e2e.test_isolation import start_server, stop_server
from tests.hub_config.test_hub_configure import DISCOVERY, env, settings_for  # noqa: F401 (env: a fixture)

USER = "user29"
CHECK_SECONDS = 2  # the user's own server setting: checks often, so the test needs not wait a minute


def written_token(path: Path) -> str:
    endpoint = yaml.safe_load(path.read_text())["api_endpoints"][0]
    assert endpoint["endpoint"] == SERVICEX_ENDPOINT
    return endpoint["token"]


def userinfo(facility, access_token: str) -> requests.Response:
    return requests.get(
        f"{facility.issuer}/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    )


@pytest.mark.e2e
def test_servicex_yaml_gets_the_refreshed_token_without_a_restart(facility, hub):
    home = facility.state_dir / "homes" / USER
    config = home / ".jupyter" / "jupyter_server_config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"ServiceXConfigRefresher": {"interval": CHECK_SECONDS}}))
    _, response = http_login(facility, USER)  # the hub holds a fresh IAM token for the user
    assert response.status_code == 200
    assert start_server(hub, USER).status_code in (201, 202)
    try:
        started = hub.api("GET", f"/users/{USER}").json()["servers"][""]["started"]
        path = home / "servicex.yaml"
        first = written_token(path)
        assert userinfo(facility, first).status_code == 200

        # The token expires after ACCESS_TOKEN_TTL s; the server's next check makes the hub refresh it.
        deadline = time.monotonic() + ACCESS_TOKEN_TTL + 60
        while (second := written_token(path)) == first and time.monotonic() < deadline:
            time.sleep(1)
        assert second != first, f"{path} still holds the first token after {ACCESS_TOKEN_TTL + 60} s"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert userinfo(facility, first).status_code == 401, "the first token should have expired"
        fresh = userinfo(facility, second)
        assert fresh.status_code == 200 and fresh.json()["sub"] == USER
        assert hub.api("GET", f"/users/{USER}").json()["servers"][""]["started"] == started
        assert not list(home.glob(".servicex.yaml.*")), "a temporary file was left behind"
    finally:
        stop_server(hub, USER)
        config.unlink()


def test_private_file_replaced_atomically_with_mode_0600(tmp_path):
    path = tmp_path / "servicex.yaml"
    path.write_text("old")
    path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        write_private_atomically(path, "new")
    finally:
        os.umask(old_umask)
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["servicex.yaml"]


@pytest.mark.parametrize("endpoint", ["https://servicex.example.org", ""])
def test_local_servers_get_the_servicex_endpoint(env, tmp_path, endpoint):  # noqa: F811
    c = Config()
    configure(
        c,
        settings_for("local", local={"state_dir": str(tmp_path)}, servicex={"endpoint": endpoint}),
        DISCOVERY,
    )
    assert c.Spawner.environment.get("AF_SERVICEX_ENDPOINT") == (endpoint or None)
