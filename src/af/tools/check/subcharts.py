"""The values our chart hands to each subchart, validated against that subchart's published values schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from af.tools.check import schema as schema_check
from af.tools.check.findings import Finding
from af.tools.check.repo import Repo


@dataclass(frozen=True)
class Subchart:
    """A dependency of the chart: its name (= values key), pinned version and schema file in the schema dir."""

    name: str
    version: str
    schema_file: str


SUBCHARTS = (
    Subchart("jupyterhub", "4.4.0", "z2jh-4.4.0.values.schema.json"),
    Subchart("dask-gateway", "2026.3.0", "dask-gateway-2026.3.0.values.schema.json"),
)


def load_schema(repo: Repo, sub: Subchart) -> dict[str, Any]:
    """The subchart's schema with ``required`` stripped (see :func:`af.tools.check.schema.without_required`)."""
    path = repo.schemas / sub.schema_file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: schema of subchart {sub.name} not found (set AF_SUBCHART_SCHEMAS)")
    return schema_check.without_required(json.loads(path.read_text()))


def check_subchart_values(
    repo: Repo, merged: Mapping[str, Any], sources: list[tuple[str, Mapping[str, Any]]]
) -> list[Finding]:
    """Validate ``merged[<subchart>]`` (plus ``global``) for every subchart.

    Example:
        >>> check_subchart_values(Repo.discover(), {"jupyterhub": {"hubb": {}}}, [("v.yaml", {})])[0].key
        'jupyterhub.hubb'
    """
    findings = []
    for sub in SUBCHARTS:
        values = dict(merged.get(sub.name) or {})
        values["global"] = dict(merged.get("global") or {})
        findings += schema_check.validate(values, load_schema(repo, sub), prefix=[sub.name], sources=sources)
    return findings
