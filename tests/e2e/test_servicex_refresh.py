"""``~/servicex.yaml`` in every server points at the facility's ServiceX service through the hub's proxy and
carries the server's own hub token, which the service exchanges at ``/token/refresh`` (the user's IAM token is
refused there); the server rewrites the file when it is deleted, without a restart."""

from __future__ import annotations

import os
import stat
import time

import pytest
import requests
import yaml
from traitlets.config import Config

from af.user_server.servicex_config import write_private_atomically
from hub_config import configure
from hub_config.services import facility_roles
from hub_config.servicex import ACCESS_SCOPE
from hub_config.settings import SettingsError
from tests.e2e.conftest import http_login
from tests.e2e.test_isolation import run, start_server, stop_server
from tests.hub_config.test_hub_configure import DISCOVERY, env, settings_for  # noqa: F401 (env: a fixture)

USER = "user29"
CHECK_SECONDS = 2  # the user's own server setting: checks often, so the test needs not wait a minute


def refresh(facility, token: str) -> requests.Response:
    return requests.post(
        f"{facility.url}/services/servicex/token/refresh",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.mark.e2e
def test_servicex_yaml_carries_the_servers_token_that_the_service_accepts(facility, hub):
    home = facility.state_dir / "homes" / USER
    config = home / ".jupyter" / "jupyter_server_config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'{{"ServiceXConfigRefresher": {{"interval": {CHECK_SECONDS}}}}}')
    _, response = http_login(facility, USER)  # the hub holds an IAM token for the user
    assert response.status_code == 200
    assert start_server(hub, USER).status_code in (201, 202)
    try:
        path = home / "servicex.yaml"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        endpoint = yaml.safe_load(path.read_text())["api_endpoints"][0]
        # the public URL as the server's container reaches it (the host's 127.0.0.1 is 10.0.2.2 there)
        assert endpoint["endpoint"] == f"http://10.0.2.2:{facility.ports.public}/services/servicex"
        token = endpoint["token"]
        seen = run(
            f"{facility.url}/user/{USER}",
            hub.user_token(USER),
            "import os; from af.user_server.access_token import current_access_token; "
            f"print('SAME', os.environ['JUPYTERHUB_API_TOKEN'] == {token!r}); "
            "print('IAM', current_access_token())",
        )
        assert "SAME True" in seen, seen
        iam = next(line.split()[1] for line in seen.splitlines() if line.startswith("IAM "))
        exchanged = refresh(facility, token)
        assert exchanged.status_code == 200 and exchanged.json()["access_token"], exchanged.text
        assert refresh(facility, iam).status_code == 401, "the service must refuse the IAM token"
        # the IAM token stored for rucio and the storage clients (tutorial 4) leaves the client on the hub token
        stored = run(
            f"{facility.url}/user/{USER}",
            hub.user_token(USER),
            "import os, tempfile\n"
            "os.environ['XDG_RUNTIME_DIR'] = tempfile.mkdtemp()  # as a login session has it\n"
            "from physlite.io.credentials import store_facility_token\n"
            "from rucio.common.utils import wlcg_token_discovery\n"
            "from servicex.servicex_client import ServiceXClient\n"
            "store_facility_token()\n"
            f"print('RUCIO_SEES_IAM', wlcg_token_discovery() == {iam!r})\n"
            "print('SERVICEX', type(ServiceXClient().get_transforms()).__name__)\n",
        )
        assert "RUCIO_SEES_IAM True" in stored and "SERVICEX list" in stored, stored
        # a user who deletes the file gets it back from their running server
        path.unlink()
        deadline = time.monotonic() + 10 * CHECK_SECONDS + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert yaml.safe_load(path.read_text())["api_endpoints"][0]["token"] == token
        assert not list(home.glob(".servicex.yaml.*")), "a temporary file was left behind"
    finally:
        stop_server(hub, USER)
        config.unlink()
    # the hub revokes a stopped server's token: the service refuses it once its 60 s answer cache has expired
    whoami = requests.get(
        f"{facility.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert whoami.status_code in (401, 403), "a stopped server's token must no longer be known to the hub"


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


def test_facility_servicex_is_a_hub_service_servers_may_use(env, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("AF_SERVICEX_API_TOKEN", "sx-token")
    c = Config()
    settings = settings_for(
        "local",
        local={"state_dir": str(tmp_path)},
        hub={"public_url": "https://af.example.org", "base_url": "/af/"},
        servicex={"facility": True, "service_url": "http://127.0.0.1:5999"},
    )
    configure(c, settings, DISCOVERY)
    [service] = [s for s in c.JupyterHub.services if s["name"] == "servicex"]
    assert service["url"] == "http://127.0.0.1:5999" and service["api_token"] == "sx-token"
    assert c.Spawner.environment["AF_SERVICEX_ENDPOINT"] == "https://af.example.org/af/services/servicex"
    roles = {role["name"]: role["scopes"] for role in facility_roles()}
    assert ACCESS_SCOPE in roles["server"] and ACCESS_SCOPE in roles["user"]
    monkeypatch.delenv("AF_SERVICEX_API_TOKEN")
    with pytest.raises(SettingsError, match="AF_SERVICEX_API_TOKEN"):
        configure(Config(), settings, DISCOVERY)


@pytest.mark.parametrize(
    ("servicex", "hub", "key"),
    [
        ({"facility": True, "endpoint": "https://sx.example.org"}, {"public_url": "https://af.example.org"},
         "servicex.endpoint"),
        ({"facility": True}, {"public_url": ""}, "hub.public_url"),
    ],
)  # fmt: skip
def test_facility_servicex_settings_errors_name_the_key(tmp_path, servicex, hub, key):
    with pytest.raises(SettingsError) as error:
        settings_for("local", local={"state_dir": str(tmp_path)}, hub=hub, servicex=servicex)
    assert key in str(error.value)
