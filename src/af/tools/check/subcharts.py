"""What our chart must agree on with each subchart: the values it hands over (validated against the subchart's
published values schema) and the Kubernetes versions it allows (the chart's ``kubeVersion``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from af.tools.check import schema as schema_check
from af.tools.check.findings import Finding
from af.tools.check.repo import KUBE_VERSIONS, Repo
from af.tools.check.yamlfile import load_one


@dataclass(frozen=True)
class Subchart:
    """A dependency of the chart: its name (= values key), pinned version, schema file in the schema dir, and
    the ``kubeVersion`` its own Chart.yaml declares (with where that was read: the charts are not here offline)."""

    name: str
    version: str
    schema_file: str
    kube_version: str
    kube_version_source: str


SUBCHARTS = (
    Subchart(
        "jupyterhub",
        "4.4.0",
        "z2jh-4.4.0.values.schema.json",
        ">=1.28.0-0",
        "github.com/jupyterhub/zero-to-jupyterhub-k8s tag 4.4.0, jupyterhub/Chart.yaml",
    ),
    Subchart(
        "dask-gateway",
        "2026.3.0",
        "dask-gateway-2026.3.0.values.schema.json",
        ">=1.30.0-0",
        "github.com/dask/dask-gateway tag 2026.3.0, resources/helm/dask-gateway/Chart.yaml",
    ),
)
_LOWER_BOUND = re.compile(r"^\s*>=\s*v?(\d+)\.(\d+)(?:\.(\d+))?(?:-0)?\s*$")


def lower_bound(constraint: str) -> tuple[int, int, int] | None:
    """The oldest Kubernetes a ``kubeVersion`` of the form ``>=X.Y[.Z][-0]`` allows; None for other forms.

    Example:
        >>> lower_bound(">=1.30.0-0")
        (1, 30, 0)
    """
    match = _LOWER_BOUND.match(constraint)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3] or 0))


def check_kube_version(repo: Repo) -> list[Finding]:
    """The chart's ``kubeVersion`` allows no Kubernetes that a subchart refuses, and its oldest version is the
    one the manifests are validated against (:data:`af.tools.check.repo.KUBE_VERSIONS`).

    Example:
        >>> check_kube_version(Repo.discover())
        []
    """
    chart_yaml = repo.rel(repo.chart / "Chart.yaml")
    declared = str(load_one(repo.chart / "Chart.yaml").get("kubeVersion") or "")
    ours = lower_bound(declared)
    if ours is None:
        return [
            Finding(
                chart_yaml,
                "kubeVersion",
                f"{declared!r}: write a lower bound '>=X.Y.Z-0' so that it can be compared with the subcharts'",
            )
        ]
    findings = []
    for sub in SUBCHARTS:
        theirs = lower_bound(sub.kube_version)
        if theirs is not None and theirs > ours:
            findings.append(
                Finding(
                    chart_yaml,
                    "kubeVersion",
                    f"{declared!r} allows Kubernetes {'.'.join(map(str, ours))}, but {sub.name} {sub.version} "
                    f"requires {sub.kube_version!r} ({sub.kube_version_source}): raise it to at least that",
                )
            )
    validated = tuple(int(x) for x in KUBE_VERSIONS[0].split("."))
    if validated != ours:
        findings.append(
            Finding(
                chart_yaml,
                "kubeVersion",
                f"{declared!r}, but the manifests are validated against Kubernetes {KUBE_VERSIONS[0]} as the "
                "oldest supported (af.tools.check.repo.KUBE_VERSIONS): keep them equal",
            )
        )
    return findings


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
