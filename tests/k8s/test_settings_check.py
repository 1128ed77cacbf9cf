"""make check and the facility settings: generated files kept fresh, an absolute OAuth callback on Kubernetes,
the scopes the hub needs; each planted defect is named by file and key."""

from __future__ import annotations

import json

import pytest

from af.tools.check.chart import check_chart
from af.tools.check.values_reference import check_reference
from af.tools.check.values_schema import settings_subtree
from tests.k8s.conftest import edit
from tests.k8s.test_chart_check import STAGING, _messages

MINIMAL = "charts/analysis-facility/examples/minimal.yaml"
SCHEMA = "charts/analysis-facility/values.schema.json"
REFERENCE = "docs/values-reference.md"
STALE = "run `make values-reference`"


def test_generated_files_are_fresh(real_repo) -> None:
    assert check_reference(real_repo) == []
    committed = json.loads((real_repo.root / SCHEMA).read_text())["properties"]["settings"]
    assert committed == settings_subtree()


def test_every_setting_has_a_description_in_the_chart_schema() -> None:
    def walk(schema, path):
        for key, sub in (schema.get("properties") or {}).items():
            yield f"{path}.{key}", sub
            yield from walk(sub, f"{path}.{key}")
            if "properties" in (sub.get("items") or {}):
                yield from walk(sub["items"], f"{path}.{key}[]")

    undocumented = [path for path, sub in walk(settings_subtree(), "settings") if not sub.get("description")]
    assert undocumented == []
    keys = {path for path, _ in walk(settings_subtree(), "settings")}
    assert {
        "settings.gateway.limits.max_memory",
        "settings.auth.refresh_age",
        "settings.auth.username_claim",
    } <= keys


def test_reference_lists_every_setting(real_repo) -> None:
    text = (real_repo.root / REFERENCE).read_text()
    for key in (
        "settings.gateway.limits.max_cores",
        "settings.auth.refresh_age",
        "settings.hub.public_url",
        "settings.profiles[].memory",
        "settings.culling.every",
    ):
        assert f"| `{key}` |" in text, key


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        # a settings description edited in the generated subtree of the chart's schema
        (SCHEMA, "Seconds between culler runs.", "How often the culler runs."),
        # ... and in the generated reference
        (REFERENCE, "Seconds between culler runs.", "How often the culler runs."),
    ],
)
def test_stale_generated_file_is_named(scratch, path, old, new) -> None:
    edit(scratch.root / path, old, new)
    messages = [str(f) for f in check_reference(scratch)]
    assert messages and all(m.startswith(f"{path}: ") and m.endswith(STALE) for m in messages), messages


def test_relative_callback_is_named_with_the_file(scratch) -> None:
    edit(scratch.root / STAGING, "public_url: https://af-staging.example.org", 'public_url: ""')
    messages = _messages(check_chart(scratch, only=[STAGING]))
    assert any(
        m.startswith(
            f"{STAGING}: settings.hub.public_url: rejected by hub_config.settings.load_settings: "
            "required when platform is 'kubernetes' (or set auth.callback_url)"
        )
        and "'/hub/oauth_callback'" in m
        for m in messages
    ), messages


def test_relative_callback_url_is_named(scratch) -> None:
    edit(scratch.root / MINIMAL, "  auth:\n", "  auth:\n    callback_url: /hub/oauth_callback\n")
    messages = _messages(check_chart(scratch, only=[MINIMAL]))
    assert any(m.startswith(f"{MINIMAL}: settings.auth.callback_url: ") for m in messages), messages


def test_scopes_without_offline_access_are_named(scratch) -> None:
    edit(scratch.root / STAGING, "  auth:\n", "  auth:\n    scopes: [openid, profile, email, wlcg.groups]\n")
    messages = _messages(check_chart(scratch, only=[STAGING]))
    # the chart's JSON schema names file and key; Helm itself (`helm install`) refuses to render the values
    assert any(
        m.startswith(f'{STAGING}: settings.auth.scopes: must contain "offline_access"') for m in messages
    ), messages
    assert any("helm render failed" in m and "/settings/auth/scopes" in m for m in messages), messages
