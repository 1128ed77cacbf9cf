"""The settings.yaml our chart renders, loaded by hub_config itself (the same code the hub runs)."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from af.check.findings import Finding

SETTINGS_CONFIGMAP = "analysis-facility-settings"


def check_rendered_settings(documents: list[dict[str, Any]], blame: str) -> list[Finding]:
    """Load the rendered settings with ``hub_config.settings.load_settings``; its errors become findings.

    When hub_config has no settings module yet (it is developed in parallel), the settings are not validated
    beyond the chart's schema, and a finding says so only if the module exists but cannot be imported.
    """
    try:
        module = importlib.import_module("hub_config.settings")
    except ModuleNotFoundError as exc:
        if exc.name in ("hub_config.settings", "hub_config"):
            return []
        return [Finding("hub_config/settings.py", "", f"cannot be imported: {exc}")]
    cm = next(
        (
            d
            for d in documents
            if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == SETTINGS_CONFIGMAP
        ),
        None,
    )
    if cm is None or "settings.yaml" not in (cm.get("data") or {}):
        return [
            Finding(blame, "settings", f"ConfigMap {SETTINGS_CONFIGMAP} with settings.yaml was not rendered")
        ]
    with tempfile.TemporaryDirectory(prefix="af-settings-") as tmp:
        path = Path(tmp) / "settings.yaml"
        path.write_text(cm["data"]["settings.yaml"])
        try:
            module.load_settings(path)
        except Exception as exc:  # hub_config's own error types name the key
            return [Finding(blame, "settings", f"rejected by hub_config.settings.load_settings: {exc}")]
    return []
