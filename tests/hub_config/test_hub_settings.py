"""Settings: defaults fill in, bad values are refused with the key (and the file) named."""

from __future__ import annotations

import pytest

from hub_config.settings import SettingsError, load_settings, parse_memory, validate_settings
from hub_config.settings_schema import REQUIRED_SCOPES

MINIMAL = {
    "platform": "kubernetes",
    "hub": {"public_url": "https://af.example.org"},
    "auth": {"client_id": "af-hub"},
}


def test_defaults_are_filled_in():
    settings = validate_settings(MINIMAL)
    assert settings.auth.issuer == "https://atlas-auth.cern.ch/"
    assert settings.auth.allowed_groups == ["atlas"]
    assert settings.gateway.limits.model_dump() == {
        "max_clusters": 2,
        "max_workers": 8,
        "max_cores": 8,
        "max_memory": "16G",
    }
    assert [p.name for p in settings.profiles] == ["standard"]
    assert set(REQUIRED_SCOPES) <= set(settings.auth.scopes)
    assert settings.callback_url == "https://af.example.org/hub/oauth_callback"


def test_leading_slash_removed_from_group_settings():
    settings = validate_settings(
        {
            **MINIMAL,
            "auth": {"client_id": "x", "allowed_groups": ["/atlas"], "admin_groups": ["/atlas/admins"]},
        }
    )
    assert settings.auth.allowed_groups == ["atlas"]
    assert settings.auth.admin_groups == ["atlas/admins"]


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ({"platform": "docker"}, "platform"),
        ({"auth": {"client_id": ""}}, "auth.client_id"),
        ({"auth": {}}, "auth.client_id"),
        ({"auth": {"client_id": "x", "issuer": "atlas-auth"}}, "auth.issuer"),
        ({"auth": {"client_id": "x", "scopes": ["profile"]}}, "auth.scopes"),
        ({"auth": {"client_id": "x", "scopes": ["openid", "profile", "wlcg.groups"]}}, "auth.scopes"),
        ({"auth": {"client_id": "x", "client_secret_env": "not a name"}}, "auth.client_secret_env"),
        ({"auth": {"client_id": "x", "colour": "red"}}, "auth.colour"),
        ({"auth": {"client_id": "x", "refresh_age": "5m"}}, "auth.refresh_age"),
        ({"profiles": []}, "profiles"),
        ({"profiles": [{"name": "Big One"}]}, "profiles[0].name"),
        ({"profiles": [{"name": "a", "memory": "lots"}]}, "profiles[0].memory"),
        ({"profiles": [{"name": "a", "memory": "0G"}]}, "profiles[0].memory"),
        ({"profiles": [{"name": "a", "cores": 0}]}, "profiles[0].cores"),
        ({"profiles": [{"name": "a"}, {"name": "a"}]}, "profiles[1].name"),
        ({"profiles": [{"name": "a", "gpus": 1}]}, "profiles[0].gpus"),
        ({"profiles": [{"name": "a", "groups": "atlas"}]}, "profiles[0].groups"),
        ({"culling": {"server_idle_timeout": -1}}, "culling.server_idle_timeout"),
        ({"culling": {"every": 0}}, "culling.every"),
        ({"gateway": {"limits": {"max_clusters": 0}}}, "gateway.limits.max_clusters"),
        ({"gateway": {"limits": {"max_workers": True}}}, "gateway.limits.max_workers"),
        ({"gateway": {"worker": {"cores": 16}}}, "gateway.worker.cores"),
        ({"gateway": {"worker": {"memory": "32G"}}}, "gateway.worker.memory"),
        ({"gateway": {"address": ""}}, "gateway.address"),
        ({"gateway": {"api_token_env": "A-B"}}, "gateway.api_token_env"),
        ({"servicex": {"endpoint": "servicex.cern.ch"}}, "servicex.endpoint"),
        ({"servicex": {"rucio_host": "voatlasrucio-server-prod.cern.ch"}}, "servicex.rucio_host"),
        (
            {"servicex": {"rucio_host": "https://r.cern.ch", "rucio_auth_host": "r"}},
            "servicex.rucio_auth_host",
        ),
        ({"servicex": {"rucio_auth_host": "https://auth.cern.ch"}}, "servicex.rucio_auth_host"),
        ({"servicex": {"rucio_ca_cert": "ca.pem"}}, "servicex.rucio_ca_cert"),
        ({"hub": {"base_url": "hub"}}, "hub.base_url"),
        ({"hub": "x"}, "hub"),
        ({"hub": {}}, "hub.public_url"),
        ({"hub": {"public_url": "af.example.org"}}, "hub.public_url"),
        ({"auth": {"client_id": "x", "callback_url": "/hub/oauth_callback"}}, "auth.callback_url"),
    ],
)
def test_bad_values_name_the_key(given, key):
    merged = {**MINIMAL, **given}
    with pytest.raises(SettingsError) as error:
        validate_settings(merged, source="values.yaml")
    assert str(error.value).startswith(f"values.yaml: {key}: "), str(error.value)
    assert (error.value.key, error.value.source) == (key, "values.yaml")


def test_kubernetes_needs_an_absolute_callback_local_does_not():
    with pytest.raises(
        SettingsError, match=r"hub.public_url: required when platform is 'kubernetes'"
    ) as error:
        validate_settings({"platform": "kubernetes", "auth": {"client_id": "x"}}, source="v.yaml")
    assert "auth.callback_url" in str(error.value) and "'/hub/oauth_callback'" in str(error.value)
    explicit = {"client_id": "x", "callback_url": "https://af.example.org/af/hub/oauth_callback"}
    settings = validate_settings({"platform": "kubernetes", "auth": explicit})
    assert settings.callback_url == explicit["callback_url"]
    assert (
        validate_settings({"platform": "local", "auth": {"client_id": "x"}}).callback_url
        == "/hub/oauth_callback"
    )


def test_every_problem_is_reported():
    given = {**MINIMAL, "culling": {"every": -1}, "gateway": {"limits": {"max_clusters": 0}}}
    with pytest.raises(SettingsError) as error:
        validate_settings(given, source="v.yaml")
    assert "culling.every" in str(error.value) and "; also gateway.limits.max_clusters" in str(error.value)


def test_load_settings_names_the_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("platform: local\nauth: {client_id: hub}\nprofiles: [{name: small, memory: 1G}]\n")
    assert load_settings(path).profiles[0].memory == "1G"
    path.write_text("platform: local\nauth: {client_id: hub}\nprofiles: [{name: small, memory: 1X}]\n")
    with pytest.raises(SettingsError, match=f"^{path}: profiles\\[0\\].memory: "):
        load_settings(path)
    path.write_text("platform: [unclosed\n")
    with pytest.raises(SettingsError, match=f"{path}: not valid YAML"):
        load_settings(path)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")


def test_settings_cannot_be_changed():
    settings = validate_settings(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        settings.auth.client_id = "other"


def test_parse_memory():
    assert parse_memory("2G", "k") == 2 * 2**30
    assert parse_memory("512M", "k") == 512 * 2**20
    assert parse_memory("1.5Gi", "k") == int(1.5 * 2**30)
    assert parse_memory(1000, "k") == 1000
    with pytest.raises(SettingsError, match=r"^k:"):
        parse_memory("-1G", "k")
