"""Lint and render our chart offline for each values file, and validate everything it produces.

The subcharts (jupyterhub, dask-gateway) cannot be downloaded here. Helm's ``render`` silently leaves out a
dependency that is missing, so we never rely on that: the declared dependencies are checked against what
strict lint reports missing (exactly those two, nothing else), then a copy of the chart *without* the
``dependencies`` block is linted strictly and rendered (our own templates only), and the values handed to
each subchart are validated against its schema (:mod:`af.tools.check.subcharts`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

from af.tools.check import commands, netpol, servicex_command, settings_load, startup, subcharts, wiring
from af.tools.check import schema as schema_check
from af.tools.check.findings import Finding
from af.tools.check.manifests import validate_manifest
from af.tools.check.repo import KUBE_VERSION, Repo
from af.tools.check.yamlfile import YamlError, load_all, load_one

RELEASE = "analysis-facility"
NAMESPACE = "analysis-facility"


@dataclass(frozen=True)
class Rendered:
    """The result of rendering the chart with one values file."""

    values_file: str
    merged: dict[str, Any]
    manifests: dict[str, list[dict[str, Any]]]  # template path -> documents

    def documents(self) -> list[dict[str, Any]]:
        return [d for docs in self.manifests.values() for d in docs]


def values_files(repo: Repo) -> list[Path]:
    """The values files the chart is checked with: its examples and every cluster's Flux values."""
    files = sorted((repo.chart / "examples").glob("*.yaml"))
    files += sorted((repo.flux / "deploy").glob("*/values.yaml"))
    return files


# the version Flux gives the chart it builds from a commit (HelmRelease reconcileStrategy Revision)
FLUX_BUILD_METADATA = "+0123456789ab"


@contextmanager
def standalone_copy(repo: Repo, flux_build: bool = False) -> Iterator[Path]:
    """A temporary copy of the chart with its remote dependencies removed from Chart.yaml; with `flux_build`, its
    version is the one Flux gives it (``<version>+<commit>``), which every label made from it must survive."""
    with tempfile.TemporaryDirectory(prefix="af-chart-") as tmp:
        target = Path(tmp) / repo.chart.name
        shutil.copytree(repo.chart, target, ignore=shutil.ignore_patterns("charts", "*.tgz", "Chart.lock"))
        meta = load_one(target / "Chart.yaml")
        meta.pop("dependencies", None)
        if flux_build:
            meta["version"] = f"{meta['version']}{FLUX_BUILD_METADATA}"
        (target / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        yield target


def check_dependencies(repo: Repo) -> list[Finding]:
    """Strict lint of the real chart must report exactly the declared subcharts as missing, nothing else."""
    chart_yaml = repo.rel(repo.chart / "Chart.yaml")
    dependencies = load_one(repo.chart / "Chart.yaml").get("dependencies") or []
    declared = [d["name"] for d in dependencies]
    expected = {s.name for s in subcharts.SUBCHARTS}
    findings = []
    for i, dep in enumerate(dependencies):
        sub = next((s for s in subcharts.SUBCHARTS if s.name == dep.get("name")), None)
        if sub is not None and str(dep.get("version")) != sub.version:
            findings.append(
                Finding(
                    chart_yaml,
                    f"dependencies[{i}].version",
                    f"{dep.get('version')!r}: the values are validated against {sub.name} {sub.version} "
                    f"({sub.schema_file}); pin that version or add the schema of the new one",
                )
            )
    findings += _check_conditions(repo, dependencies, chart_yaml)
    if set(declared) != expected:
        findings.append(
            Finding(
                chart_yaml, "dependencies", f"declares {sorted(declared)}, checks know {sorted(expected)}"
            )
        )
    report = helm_python.lint(repo.chart, None, strict=True, kube_version=f"v{KUBE_VERSION}")
    missing: set[str] = set()
    for message in report.get("messages", []):
        text = message["error"]
        if "missing these dependencies:" in text:
            missing |= {n.strip() for n in text.split(":", 1)[1].split(",")}
        elif message["severity"] >= 2:
            findings.append(Finding(repo.rel(Path(message["path"])), "", f"helm lint: {text}"))
    if missing - set(declared):
        findings.append(
            Finding(chart_yaml, "dependencies", f"helm reports unknown missing {sorted(missing)}")
        )
    return findings + subcharts.check_kube_version(repo)


def _check_conditions(repo: Repo, dependencies: list[dict[str, Any]], chart_yaml: str) -> list[Finding]:
    """Each subchart can be switched off by ``condition: <name>.enabled`` (tools/cluster/chart.py installs our own
    part that way), and the chart's defaults leave it on: the real deployment needs both subcharts."""
    defaults = load_one(repo.chart / "values.yaml")
    findings = []
    for i, dep in enumerate(dependencies):
        name = dep.get("name")
        if dep.get("condition") != f"{name}.enabled":
            findings.append(
                Finding(
                    chart_yaml,
                    f"dependencies[{i}].condition",
                    f"{dep.get('condition')!r}: write '{name}.enabled' so that the subchart can be switched off",
                )
            )
        if (defaults.get(name) or {}).get("enabled", True) is not True:
            findings.append(
                Finding(
                    repo.rel(repo.chart / "values.yaml"),
                    f"{name}.enabled",
                    "must stay true by default: the facility needs the subchart (switch it off per install)",
                )
            )
    return findings


def _blame_sources(repo: Repo, path: Path, user: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    defaults = load_one(repo.chart / "values.yaml")
    return [(repo.rel(path), user), (repo.rel(repo.chart / "values.yaml"), defaults)]


def render(repo: Repo, chart_dir: Path, path: Path | None) -> tuple[Rendered | None, list[Finding]]:
    """Validate and render the standalone chart ``chart_dir`` with the values file ``path`` (None: defaults)."""
    label = repo.rel(path) if path else repo.rel(repo.chart / "values.yaml")
    try:
        user = load_one(path) if path else {}
    except YamlError as exc:
        return None, [Finding(label, "", str(exc))]
    if not isinstance(user, dict):
        return None, [Finding(label, "", "values must be a mapping")]
    chart = helm_python.Chart.load(chart_dir)
    merged = chart.merge_values(user)
    sources = _blame_sources(repo, path or repo.chart / "values.yaml", user)
    own_schema = json.loads((chart_dir / "values.schema.json").read_text())
    findings = schema_check.validate(merged, own_schema, prefix=[], sources=sources)
    findings += subcharts.check_subchart_values(repo, merged, sources)
    report = helm_python.lint(chart_dir, user, strict=True, kube_version=f"v{KUBE_VERSION}")
    for message in report.get("messages", []):
        if message["severity"] >= 2:
            findings.append(Finding(label, "", f"helm lint (strict): {message['error']}"))
    try:
        raw = chart.render(user, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm_python.HelmError as exc:
        return None, [*findings, Finding(label, "", f"helm render failed: {exc}")]
    manifests = {}
    for template, text in sorted(raw.items()):
        if template.endswith("NOTES.txt"):
            continue
        origin = f"{repo.rel(repo.chart)}/{template.split('/', 1)[1]} (values {label})"
        try:
            manifests[template] = load_all(text, origin)
        except YamlError as exc:
            findings.append(Finding(origin, "", str(exc)))
            continue
        for doc in manifests[template]:
            findings += validate_manifest(doc, origin)
            if doc.get("kind") == "Secret":
                findings.append(
                    Finding(
                        origin,
                        doc["metadata"].get("name", "?"),
                        "the chart renders a Secret: use hubEnvSecret",
                    )
                )
    rendered = Rendered(label, merged, manifests)
    blame = label
    findings += wiring.check_hub_env(merged, blame)
    findings += wiring.check_prefixes(merged, blame)
    findings += wiring.check_servicex(merged, blame)
    findings += wiring.check_mounts(merged, rendered.documents(), blame)
    findings += settings_load.check_rendered_settings(rendered.documents(), blame, sources)
    findings += commands.check_af_commands(
        rendered.documents(), f"{repo.rel(repo.chart)}/templates (values {label})"
    )
    findings += servicex_command.check_servicex_command(
        rendered.documents(), f"{repo.rel(repo.chart)}/templates/servicex.yaml (values {label})"
    )
    findings += netpol.check_network_policies(
        rendered.documents(),
        merged,
        f"{repo.rel(repo.chart)}/templates/networkpolicies.yaml (values {label})",
    )
    return rendered, findings


def check_chart(repo: Repo, only: list[str] | None = None) -> list[Finding]:
    """All chart checks, for the defaults and every values file (or ``only`` those, by repository path; the
    defaults are ``charts/analysis-facility/values.yaml``).

    Example:
        >>> check_chart(Repo.discover(), only=["flux/deploy/staging/values.yaml"])  # doctest: +SKIP
        []
    """
    findings = check_dependencies(repo)
    started = []
    defaults = repo.rel(repo.chart / "values.yaml")
    paths = [None, *values_files(repo)]
    if only is not None:
        paths = [p for p in paths if (repo.rel(p) if p else defaults) in only]
        if len(paths) != len(only):
            raise ValueError(f"values files {only}: not all are checked values files")
    with standalone_copy(repo, flux_build=True) as chart_dir:
        for path in paths:
            rendered, more = render(repo, chart_dir, path)
            findings += more
            # start-up is tried only where the settings are valid (else hub_config's own error was reported)
            if rendered is not None and not settings_load.settings_rejected(more):
                started.append((rendered.merged, rendered.documents(), rendered.values_file))
    return findings + startup.check_startup(started)


def render_all(repo: Repo) -> dict[str, Rendered]:
    """The rendering per values file (for ``diff``); raises if any values file does not render."""
    out = {}
    with standalone_copy(repo) as chart_dir:
        for path in [None, *values_files(repo)]:
            rendered, _ = render(repo, chart_dir, path)
            if rendered is None:
                raise RuntimeError(f"{repo.rel(path) if path else 'defaults'}: the chart does not render")
            out[rendered.values_file] = rendered
    return out
