"""The ``settings`` subtree of the chart's values.schema.json, generated from hub_config's settings models.

The rest of values.schema.json is written by hand; ``make values-reference`` replaces only
``properties.settings``, and the ``reference`` check fails when the committed subtree differs from the models.
The chart adds two rules of its own to the models' schema (`CHART_RULES`): `platform` is fixed (the chart sets
it), and every profile names a pinned image (the skew check compares its tag with the chart's).

Example:
    >>> settings_subtree()["properties"]["auth"]["properties"]["scopes"]["default"][:2]
    ['openid', 'profile']
"""

from __future__ import annotations

import json
from typing import Any

from af.tools.check.repo import Repo
from hub_config.settings_schema import Settings

SCHEMA_FILE = "values.schema.json"
SETTINGS_DESCRIPTION = (
    "Facility settings for hub_config, rendered to settings.yaml in the ConfigMap `analysis-facility-settings` "
    "(mounted at /usr/local/etc/jupyterhub/analysis-facility/settings.yaml) and loaded by "
    "`hub_config.settings.load_settings`; keys left out take hub_config's defaults. Generated from "
    "hub_config/settings_schema.py by `make values-reference`: change the models, not this subtree. "
    "Never put secrets here."
)
PLATFORM = {"description": "Always `kubernetes` in this chart (the chart sets it).", "const": "kubernetes"}
PINNED_IMAGE = {
    "description": "Notebook image with a tag; must be the chart's notebook image (make check compares tags).",
    "type": "string",
    "pattern": "^[^:@]+(:[^:@]+)$",
}


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """`node` with every ``$ref`` to `definitions` replaced by the definition, and without ``title``."""
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _inline(definitions[node["$ref"].rsplit("/", 1)[1]], definitions)
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _inline(sub, definitions) for name, sub in value.items()}
            continue
        if key == "title" and isinstance(value, str):
            continue
        # the default of a whole section repeats its keys' defaults, which the reference shows one by one
        if key == "default" and isinstance(value, dict):
            continue
        out[key] = value if key in ("default", "const", "enum") else _inline(value, definitions)
    return out


def settings_subtree() -> dict[str, Any]:
    """The JSON schema of the chart's ``settings`` value: hub_config's models plus the chart's own rules."""
    raw = Settings.model_json_schema(mode="validation")
    schema = _inline({k: v for k, v in raw.items() if k != "$defs"}, raw.get("$defs", {}))
    schema["description"] = SETTINGS_DESCRIPTION
    schema["required"] = [key for key in schema.get("required", []) if key != "platform"]
    schema["properties"]["platform"] = PLATFORM
    profile = schema["properties"]["profiles"]["items"]
    profile["properties"]["image"] = {**PINNED_IMAGE}
    profile["required"] = sorted({*profile.get("required", []), "image"})
    return schema


def render_values_schema(repo: Repo) -> str:
    """The chart's values.schema.json with its ``settings`` subtree generated from the models.

    Example:
        >>> json.loads(render_values_schema(Repo.discover()))["properties"]["settings"]["properties"]["platform"]
        {'description': 'Always `kubernetes` in this chart (the chart sets it).', 'const': 'kubernetes'}
    """
    schema = json.loads((repo.chart / SCHEMA_FILE).read_text())
    schema["properties"]["settings"] = settings_subtree()
    return json.dumps(schema, indent=2) + "\n"
