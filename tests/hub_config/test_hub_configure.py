"""`configure(c, settings)`: one entry point, local and Kubernetes differ only in the spawner."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import ClassVar

import pytest
from traitlets.config import Config

from af.gateway.server_config import FacilityHubAuthenticator, cluster_options
from hub_config import TERMINAL_SHELL, configure
from hub_config.auth import discover_endpoints
from hub_config.gateway import user_environment
from hub_config.servicex import servicex_yaml
from hub_config.settings import SettingsError, validate_settings

DISCOVERY = {
    "issuer": "https://iam.example.org",
    "authorization_endpoint": "https://iam.example.org/authorize",
    "token_endpoint": "https://iam.example.org/token",
    "userinfo_endpoint": "https://iam.example.org/userinfo",
}
ENV = {
    "AF_OIDC_CLIENT_SECRET": "client-secret",
    "AF_GATEWAY_API_TOKEN": "gateway-token",
    "AF_OPERATOR_TOKEN": "operator-token",
    "JUPYTERHUB_CRYPT_KEY": "00" * 32,
}


@pytest.fixture
def env(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def settings_for(platform: str, **extra):
    return validate_settings(
        {
            "platform": platform,
            "hub": {"public_url": "https://af.example.org"},
            "auth": {"client_id": "af-hub", "issuer": "https://iam.example.org"},
            **extra,
        }
    )


def test_kubernetes(env):
    c = Config()
    configure(c, settings_for("kubernetes", servicex={"endpoint": "https://servicex.example.org"}), DISCOVERY)
    assert c.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    assert c.GenericOAuthenticator.token_url == "https://iam.example.org/token"
    assert c.GenericOAuthenticator.client_secret == "client-secret"
    assert c.GenericOAuthenticator.allowed_groups == {"atlas"}
    assert c.GenericOAuthenticator.enable_auth_state is True
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["dask-gateway"]["api_token"] == "gateway-token"
    assert "command" not in services["dask-gateway"], "the gateway must outlive hub restarts"
    assert services["af-operator"]["api_token"] == "operator-token"
    assert services["idle-culler"]["command"][-2:] == ["--timeout=3600", "--cull-every=300"]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "access:services!service=dask-gateway" in roles["server"]["scopes"]
    assert "admin:auth_state!user" in roles["server"]["scopes"]
    assert c.KubeSpawner.environment["AF_SERVICEX_ENDPOINT"] == "https://servicex.example.org"
    # terminals keep the image's PATH (a login shell's /etc/profile would drop the environment's bin)
    assert TERMINAL_SHELL in c.KubeSpawner.args
    hook = c.KubeSpawner.lifecycle_hooks["postStart"]["exec"]["command"]
    assert hook == ["python", "-m", "af.user_server.servicex_config"]
    profile_list = c.KubeSpawner.profile_list

    user = SimpleNamespace(groups=[SimpleNamespace(name="atlas")])
    assert [p["slug"] for p in profile_list(SimpleNamespace(user=user))] == ["standard"]


def test_local(env, tmp_path):
    c = Config()
    configure(c, settings_for("local", local={"state_dir": str(tmp_path)}), DISCOVERY)
    assert c.JupyterHub.spawner_class == "hub_config.local_spawner.FacilityLocalSpawner"
    assert c.FacilityLocalSpawner.home_dir_template == str(tmp_path / "homes" / "{username}")
    assert c.Spawner.environment["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    assert c.JupyterHub.cleanup_servers is False
    assert TERMINAL_SHELL in c.Spawner.args


def test_missing_secret_names_the_variable(env, monkeypatch):
    monkeypatch.delenv("AF_GATEWAY_API_TOKEN")
    with pytest.raises(
        SettingsError, match=r"gateway\.api_token_env: environment variable AF_GATEWAY_API_TOKEN"
    ):
        configure(Config(), settings_for("kubernetes"), DISCOVERY)


def test_culling_off():
    c = Config()
    settings = settings_for("kubernetes", culling={"server_idle_timeout": 0})
    with pytest.MonkeyPatch.context() as mp:
        for key, value in ENV.items():
            mp.setenv(key, value)
        configure(c, settings, DISCOVERY)
    assert "idle-culler" not in {s["name"] for s in c.JupyterHub.services}


class Discovery(BaseHTTPRequestHandler):
    document: ClassVar[dict] = {}

    def do_GET(self):
        if self.path != "/.well-known/openid-configuration":
            self.send_error(404)
            return
        body = json.dumps(self.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_discovery_reads_endpoints_and_checks_issuer():
    server = HTTPServer(("127.0.0.1", 0), Discovery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{server.server_port}"
    try:
        Discovery.document = {**DISCOVERY, "issuer": issuer}
        assert discover_endpoints(issuer)["userinfo_endpoint"] == DISCOVERY["userinfo_endpoint"]
        Discovery.document = DISCOVERY
        with pytest.raises(SettingsError, match="differs from the issuer"):
            discover_endpoints(issuer)
        Discovery.document = {"issuer": issuer}
        with pytest.raises(SettingsError, match="lacks authorization_endpoint"):
            discover_endpoints(issuer)
    finally:
        server.shutdown()
    with pytest.raises(SettingsError, match="cannot read the OIDC discovery document"):
        discover_endpoints(issuer, timeout=2)


def test_user_environment_and_servicex():
    settings = settings_for("local")
    env = user_environment(settings.gateway)
    assert env["DASK_GATEWAY__ADDRESS"] == "http://127.0.0.1:8000/services/dask-gateway"
    assert "token: tok" in servicex_yaml("https://sx.example.org", "tok")


def test_cluster_options_bounded_by_limits():
    options = cluster_options(
        settings_for("local", gateway={"limits": {"max_cores": 4, "max_memory": "8G"}}).gateway
    )
    config = options.get_specification()
    by_name = {field["field"]: field for field in config}
    assert by_name["worker_cores"]["spec"]["max"] == 4
    assert by_name["worker_memory"]["spec"]["max"] == 8.0
    with pytest.raises(ValueError):
        options.parse_options({"worker_cores": 5})
    parsed = options.parse_options({"worker_cores": 2, "worker_memory": 1.5})
    assert options.get_configuration(parsed, user=None)["worker_memory"] == int(1.5 * 2**30)


def test_gateway_token_parsing_never_raises():
    auth = FacilityHubAuthenticator(jupyterhub_api_token="x", jupyterhub_api_url="http://hub/api")

    class Request:
        def __init__(self, header):
            self.headers = {"Authorization": header} if header is not None else {}

    assert auth.get_token(Request("jupyterhub abc")) == "abc"
    assert auth.get_token(Request("Bearer abc")) == "abc"
    assert auth.get_token(Request("garbage")) is None
    assert auth.get_token(Request("")) is None
    assert auth.get_token(Request(None)) is None


def test_merges_with_what_the_chart_configured(env):
    c = Config()
    c.JupyterHub.services = [
        {"name": "monitoring", "api_token": "m"},
        {"name": "idle-culler", "command": ["x"]},
    ]
    c.JupyterHub.load_roles = [{"name": "monitoring", "scopes": ["read:metrics"], "services": ["monitoring"]}]
    c.KubeSpawner.environment = {"FROM_CHART": "1", "DASK_GATEWAY__ADDRESS": "stale"}
    configure(c, settings_for("kubernetes"), DISCOVERY)
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"monitoring", "idle-culler", "dask-gateway", "af-operator"}
    assert services["idle-culler"]["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    assert {r["name"] for r in c.JupyterHub.load_roles} >= {"monitoring", "user", "server"}
    assert c.KubeSpawner.environment["FROM_CHART"] == "1"
    assert c.KubeSpawner.environment["DASK_GATEWAY__ADDRESS"] == "http://127.0.0.1:8000/services/dask-gateway"


def test_a_user_in_no_group_gets_the_default_profile_on_kubernetes(env):
    # the health check's user (made by the operator through the API) is in no group
    profiles = [
        {"name": "default", "cores": 2, "memory": "8G", "groups": ["atlas"]},
        {"name": "large", "cores": 8, "memory": "32G", "groups": ["atlas/af-power"]},
    ]
    c = Config()
    configure(c, settings_for("kubernetes", profiles=profiles), DISCOVERY)
    offered = c.KubeSpawner.profile_list(SimpleNamespace(user=SimpleNamespace(name="af-health", groups=[])))
    assert [p["slug"] for p in offered] == ["default"]
    assert offered[0]["kubespawner_override"]["cpu_limit"] == 2.0
    assert offered[0]["kubespawner_override"]["mem_limit"] == 8 * 1024**3
    outsider = SimpleNamespace(name="bob", groups=[SimpleNamespace(name="cms")])
    assert c.KubeSpawner.profile_list(SimpleNamespace(user=outsider)) == []


def test_the_hub_start_does_not_wait_30_s_for_the_gateway_service(env):
    # JupyterHub's start waits Service.timeout (default 30 s) for an external service's URL; the guard may
    # start after the hub, and the hub needs nothing from it to start
    from jupyterhub.services.service import Service

    c = Config()
    configure(c, settings_for("kubernetes"), DISCOVERY)
    gateway = next(s for s in c.JupyterHub.services if s["name"] == "dask-gateway")
    assert Service.timeout.default_value == 30
    assert Service(**{k: v for k, v in gateway.items() if k != "api_token"}).timeout <= 5


def test_kubernetes_servers_get_the_facilitys_servicex_in_the_cluster(env, monkeypatch):
    """The chart's settings: the service registered at its Service with its role, users' servers pointed at it
    through the hub's proxy inside the cluster (servicex.address), not through the public URL."""
    monkeypatch.setenv("AF_SERVICEX_API_TOKEN", "servicex-token")
    servicex = {
        "facility": True,
        "service_url": "http://analysis-facility-servicex:5000",
        "address": "http://proxy-public/services/servicex",
    }
    c = Config()
    configure(c, settings_for("kubernetes", servicex=servicex), DISCOVERY)
    assert c.KubeSpawner.environment["AF_SERVICEX_ENDPOINT"] == "http://proxy-public/services/servicex"
    [service] = [s for s in c.JupyterHub.services if s["name"] == "servicex"]
    assert (service["url"], service["api_token"]) == (
        "http://analysis-facility-servicex:5000",
        "servicex-token",
    )
    [role] = [r for r in c.JupyterHub.load_roles if r["name"] == "servicex"]
    assert role == {
        "name": "servicex",
        "scopes": ["access:services!service=dask-gateway"],
        "services": ["servicex"],
    }
    assert (
        c.KubeSpawner.lifecycle_hooks["postStart"]["exec"]["command"][-1] == "af.user_server.servicex_config"
    )
