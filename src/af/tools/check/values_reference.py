"""docs/values-reference.md, generated from the chart's values.schema.json and the defaults in values.yaml.

One schema drives validation and the reference (as in Zero to JupyterHub): ``python -m af.tools.check reference
--write`` regenerates the file, and the check fails when the committed file is stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from af.tools.check.findings import Finding
from af.tools.check.repo import Repo
from af.tools.check.yamlfile import load_one

REFERENCE = "docs/values-reference.md"


def _type(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return f"const `{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(schema.get("items"), Mapping) and "type" in schema["items"]:
        kind = f"array of {schema['items']['type']}"
    return kind


def _default(defaults: Any, path: list[str]) -> str:
    for part in path:
        if not isinstance(defaults, Mapping) or part not in defaults:
            return "—"
        defaults = defaults[part]
    if isinstance(defaults, (Mapping, list)) and len(json.dumps(defaults)) > 60:
        return "see values.yaml"
    return f"`{json.dumps(defaults)}`"


def _walk(schema: Mapping[str, Any], path: list[str]) -> Iterator[tuple[list[str], Mapping[str, Any]]]:
    for key, sub in (schema.get("properties") or {}).items():
        yield [*path, key], sub
        # the subcharts' values are documented upstream, the settings by hub_config: one level is enough
        if path == [] and key in ("jupyterhub", "dask-gateway", "global"):
            continue
        yield from _walk(sub, [*path, key])


def render_reference(repo: Repo) -> str:
    """The Markdown reference of the chart's values.

    Example:
        >>> render_reference(Repo.discover()).splitlines()[0]
        '# Values reference: analysis-facility chart'
    """
    schema = json.loads((repo.chart / "values.schema.json").read_text())
    defaults = load_one(repo.chart / "values.yaml")
    chart = load_one(repo.chart / "Chart.yaml")
    lines = [
        f"# Values reference: {chart['name']} chart",
        "",
        f"<!-- generated from {repo.rel(repo.chart)}/values.schema.json by `make values-reference`; "
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
        lines.append(f"| `{'.'.join(path)}` | {_type(sub)} | {_default(defaults, path)} | {description} |")
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


def check_reference(repo: Repo) -> list[Finding]:
    """The committed reference equals the generated one."""
    path = repo.root / REFERENCE
    if not path.is_file():
        return [Finding(REFERENCE, "", "missing: run `make values-reference`")]
    if path.read_text() != render_reference(repo):
        return [
            Finding(
                REFERENCE, "", "out of date with values.schema.json/values.yaml: run `make values-reference`"
            )
        ]
    return []


def write_reference(repo: Repo) -> str:
    """Regenerate the reference file; returns its path."""
    path = repo.root / REFERENCE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_reference(repo))
    return str(path)
