"""The settings.yaml our chart renders, loaded by hub_config itself (the same code the hub runs).

A rejected key is blamed on the values file that set it (``settings.<key>``), or on the rendered values file when
no file sets it (a required key left out, e.g. ``settings.hub.public_url``).
"""

from __future__ import annotations

import importlib
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from af.tools.check.findings import Finding
from af.tools.check.schema import blame_file

SETTINGS_CONFIGMAP = "analysis-facility-settings"
REJECTED = "rejected by hub_config.settings.load_settings"


def key_path(key: str) -> list[str | int]:
    """A dotted settings key as a path of keys and indices.

    Example:
        >>> key_path("profiles[0].memory")
        ['profiles', 0, 'memory']
    """
    return [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", key)]


def settings_rejected(findings: list[Finding]) -> bool:
    """Whether hub_config refused the rendered settings (or none were rendered): the hub would not start."""
    return any(f.key == "settings" or f.message.startswith(REJECTED) for f in findings)


def check_rendered_settings(
    documents: list[dict[str, Any]], blame: str, sources: list[tuple[str, Mapping[str, Any]]] | None = None
) -> list[Finding]:
    """Load the rendered settings with ``hub_config.settings.load_settings``; its errors become findings.

    The hub image installs hub_config from this repository, so the check uses the same code. ``sources`` are
    (file, values) pairs, most specific first, to blame the file that set the rejected key.
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
        except module.SettingsError as exc:
            full = ["settings", *key_path(exc.key)]
            where = blame_file(sources or [], full) or blame
            key = "settings." + exc.key if exc.key else "settings"
            return [Finding(where, key, f"{REJECTED}: {exc.detail}")]
        except Exception as exc:  # a failure of hub_config itself is a finding too, with its type
            return [Finding(blame, "settings", f"{REJECTED}: {type(exc).__name__}: {exc}")]
    return []
