"""The generated files: the ``settings`` subtree of the chart's values.schema.json (from hub_config's settings
models) and docs/values-reference.md (from that schema and the defaults in values.yaml).

One schema drives validation and the reference (as in Zero to JupyterHub): ``make values-reference``
(``python -m af.tools.check reference --write``) regenerates both, and the ``reference`` check fails naming the
file when a committed one is stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from af.tools.check.findings import Finding
from af.tools.check.repo import Repo
from af.tools.check.values_schema import SCHEMA_FILE, render_values_schema
from af.tools.check.yamlfile import load_one

REFERENCE = "docs/values-reference.md"
REGENERATE = "make values-reference"


def _type(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return f"const `{json.dumps(schema['const'])}`"
    if "anyOf" in schema and "type" not in schema:
        return " or ".join(_type(option) for option in schema["anyOf"])
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(schema.get("items"), Mapping) and "type" in schema["items"]:
        kind = f"array of {schema['items']['type']}"
    return kind


def _default(defaults: Any, path: list[str], schema: Mapping[str, Any]) -> str:
    """What values.yaml sets at `path`, else the schema's default (hub_config's, for the settings)."""
    for part in path:
        if not isinstance(defaults, Mapping) or part not in defaults:
            return f"`{json.dumps(schema['default'])}`" if "default" in schema else "—"
        defaults = defaults[part]
    if isinstance(defaults, (Mapping, list)) and len(json.dumps(defaults)) > 60:
        return "see values.yaml"
    return f"`{json.dumps(defaults)}`"


def _walk(schema: Mapping[str, Any], path: list[str]) -> Iterator[tuple[list[str], Mapping[str, Any]]]:
    """(path, schema) of every key; the keys of a list's items under ``name[]``."""
    for key, sub in (schema.get("properties") or {}).items():
        yield [*path, key], sub
        # the subcharts' values are documented upstream: one level is enough
        if path == [] and key in ("jupyterhub", "dask-gateway", "global"):
            continue
        yield from _walk(sub, [*path, key])
        items = sub.get("items")
        if isinstance(items, Mapping) and "properties" in items:
            yield from _walk(items, [*path, f"{key}[]"])


def render_reference(repo: Repo, schema_text: str | None = None) -> str:
    """The Markdown reference of the chart's values (from `schema_text`, default: the generated schema).

    Example:
        >>> render_reference(Repo.discover()).splitlines()[0]
        '# Values reference: analysis-facility chart'
    """
    schema = json.loads(schema_text or render_values_schema(repo))
    defaults = load_one(repo.chart / "values.yaml")
    chart = load_one(repo.chart / "Chart.yaml")
    lines = [
        f"# Values reference: {chart['name']} chart",
        "",
        f"<!-- generated from {repo.rel(repo.chart)}/{SCHEMA_FILE} (its settings from "
        f"hub_config/settings_schema.py) by `{REGENERATE}`; "
        "do not edit by hand -->",
        "",
        schema.get("description", ""),
        "",
        f"Chart version {chart['version']}, app version {chart['appVersion']}. Subcharts: "
        + ", ".join(
            f"`{d['name']}` {d['version']} ({d['repository']})" for d in chart.get("dependencies", [])
        )
        + ".",
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for path, sub in _walk(schema, []):
        description = " ".join(str(sub.get("description", "")).split()).replace("|", "\\|")
        lines.append(
            f"| `{'.'.join(path)}` | {_type(sub)} | {_default(defaults, path, sub)} | {description} |"
        )
    lines += [
        "",
        "## Defaults",
        "",
        "```yaml",
        yaml.safe_dump(
            {k: v for k, v in defaults.items() if k not in ("jupyterhub", "dask-gateway")}, sort_keys=False
        ).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def generated_files(repo: Repo) -> dict[str, str]:
    """Every generated file (repository path -> its content as generated now)."""
    schema_text = render_values_schema(repo)
    return {
        repo.rel(repo.chart / SCHEMA_FILE): schema_text,
        REFERENCE: render_reference(repo, schema_text),
    }


def check_reference(repo: Repo) -> list[Finding]:
    """Each committed generated file equals what its generator makes now; a finding names the stale file.

    Example:
        >>> check_reference(Repo.discover())
        []
    """
    findings = []
    for rel, text in generated_files(repo).items():
        path = repo.root / rel
        if not path.is_file():
            findings.append(Finding(rel, "", f"missing: run `{REGENERATE}`"))
        elif path.read_text() != text:
            findings.append(
                Finding(
                    rel,
                    "",
                    "out of date with hub_config/settings_schema.py and the chart's values: "
                    f"run `{REGENERATE}`",
                )
            )
    return findings


def write_reference(repo: Repo) -> list[str]:
    """Regenerate every generated file; returns their paths."""
    written = []
    for rel, text in generated_files(repo).items():
        path = repo.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(str(path))
    return written
