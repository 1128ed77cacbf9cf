"""The settings.yaml our chart renders, loaded by hub_config itself (the same code the hub runs)."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from af.tools.check.findings import Finding

SETTINGS_CONFIGMAP = "analysis-facility-settings"


def check_rendered_settings(documents: list[dict[str, Any]], blame: str) -> list[Finding]:
    """Load the rendered settings with ``hub_config.settings.load_settings``; its errors become findings.

    The hub image installs hub_config from this repository, so the check uses the same code.
    """
    try:
        module = importlib.import_module("hub_config.settings")
    except ImportError as exc:
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
