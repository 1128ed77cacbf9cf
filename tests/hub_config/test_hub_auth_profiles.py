"""Groups from IAM claims, group-limited profiles and their KubeSpawner form."""

from __future__ import annotations

import pytest

from hub_config.auth import client_secret, groups_from_auth_state, groups_from_claims
from hub_config.profiles import (
    ProfileNotAllowed,
    choose_profile,
    kubespawner_profile,
    options_form,
    options_from_form,
    profiles_for_groups,
)
from hub_config.settings import SettingsError, validate_settings

PROFILES = validate_settings(
    {
        "platform": "local",
        "auth": {"client_id": "hub"},
        "profiles": [
            {"name": "standard", "cores": 1, "memory": "2G"},
            {
                "name": "large",
                "cores": 4,
                "memory": "8G",
                "image": "af/notebook:big",
                "groups": ["/atlas/power"],
            },
        ],
    }
).profiles


def test_groups_from_both_claims_with_slash_normalised():
    claims = {"groups": ["atlas", "atlas/higgs"], "wlcg.groups": ["/atlas", "/atlas/af-admins", "/"]}
    assert groups_from_claims(claims) == ["atlas", "atlas/af-admins", "atlas/higgs"]
    assert groups_from_claims({"wlcg.groups": "/cms"}) == ["cms"]
    assert groups_from_claims({}) == []
    assert groups_from_auth_state({"oauth_user": {"wlcg.groups": ["/atlas"]}}) == ["atlas"]


def test_callback_and_secret(monkeypatch):
    settings = validate_settings(
        {"platform": "local", "hub": {"public_url": "https://af.example.org/"}, "auth": {"client_id": "h"}}
    )
    assert settings.callback_url == "https://af.example.org/hub/oauth_callback"
    with pytest.raises(SettingsError, match="AF_OIDC_CLIENT_SECRET"):
        client_secret(settings.auth, environ={})
    assert client_secret(settings.auth, environ={"AF_OIDC_CLIENT_SECRET": "s"}) == "s"


def test_profiles_filtered_by_group():
    assert [p.name for p in profiles_for_groups(PROFILES, ["atlas"])] == ["standard"]
    assert [p.name for p in profiles_for_groups(PROFILES, ["/atlas/power"])] == ["standard", "large"]


def test_choose_profile_enforces_groups():
    assert choose_profile(PROFILES, "alice", ["atlas"], None).name == "standard"
    assert choose_profile(PROFILES, "pat", ["atlas/power"], "large").name == "large"
    with pytest.raises(ProfileNotAllowed) as refused:
        choose_profile(PROFILES, "alice", ["atlas"], "large")
    assert refused.value.status_code == 403
    assert "large" in refused.value.log_message and "standard" in refused.value.log_message
    with pytest.raises(ProfileNotAllowed):
        choose_profile(PROFILES, "alice", ["atlas"], "does-not-exist")


def test_options_form_only_with_a_choice():
    assert options_form(PROFILES, ["atlas"]) == ""
    form = options_form(PROFILES, ["atlas/power"])
    assert form.count('type="radio"') == 2 and 'value="large"' in form
    assert options_from_form({"profile": ["large"]}) == {"profile": "large"}


def test_kubespawner_profile_mapping():
    entry = kubespawner_profile(PROFILES[1])
    assert entry["slug"] == "large"
    assert entry["kubespawner_override"] == {
        "cpu_limit": 4.0,
        "cpu_guarantee": 2.0,
        "mem_limit": 8 * 2**30,
        "mem_guarantee": 4 * 2**30,
        "image": "af/notebook:big",
    }
    assert "image" not in kubespawner_profile(PROFILES[0])["kubespawner_override"]
