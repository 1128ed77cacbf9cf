"""Flux manifests built the way Flux builds them (kustomize), validated strictly, references resolved.

For every ``flux/clusters/<cluster>``: ``kubectl kustomize`` builds it; each Flux Kustomization in it points
at a path of this repository, which is built too. Flux kinds are validated with the Flux API models (unknown
fields rejected: the models ignore them, so input and model output are compared), other kinds with the
Kubernetes schemas (strict). Then every reference must resolve: sources, chart path, chart dependencies'
Helm repositories, ``valuesFrom`` ConfigMaps and their keys, the hub's env Secret and its keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cloudcoil.models.fluxcd.helm.v2 import HelmRelease
from cloudcoil.models.fluxcd.kustomize.v1 import Kustomization
from cloudcoil.models.fluxcd.source.v1 import GitRepository, HelmRepository
from pydantic import ValidationError

from af.tools.check.findings import Finding
from af.tools.check.manifests import object_name, validate_manifest
from af.tools.check.repo import Repo
from af.tools.check.tools import run
from af.tools.check.yamlfile import YamlError, load_all, load_one

FLUX_MODELS = {
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): HelmRelease,
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): Kustomization,
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): GitRepository,
    ("source.toolkit.fluxcd.io/v1", "HelmRepository"): HelmRepository,
}
# Created once per cluster by the admin, outside git (docs/admin.md): allowed to be unresolved.
OUT_OF_BAND_SECRETS = {("flux-system", "sops-age")}


@dataclass
class Built:
    """The objects of one cluster: (origin directory, document) pairs."""

    cluster: str
    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def find(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        for _, doc in self.objects:
            meta = doc.get("metadata") or {}
            if doc.get("kind") == kind and meta.get("name") == name and meta.get("namespace") == namespace:
                return doc
        return None


def build(repo: Repo, path: Path) -> tuple[list[dict[str, Any]], list[Finding]]:
    """``kubectl kustomize path`` as documents."""
    rel = repo.rel(path)
    if not (path / "kustomization.yaml").is_file():
        return [], [Finding(rel, "", "no kustomization.yaml")]
    done = run(["kubectl", "kustomize", str(path)])
    if done.returncode != 0:
        return [], [Finding(rel, "", f"kustomize build failed: {done.stderr.strip()}")]
    try:
        return load_all(done.stdout, rel), []
    except YamlError as exc:
        return [], [Finding(rel, "", str(exc))]


def unknown_fields(given: Any, known: Any, path: str = "") -> list[str]:
    """Keys present in ``given`` but absent from ``known`` (the model's dump), as dotted paths.

    Example:
        >>> unknown_fields({"spec": {"a": 1, "b": 2}}, {"spec": {"a": 1}})
        ['spec.b']
    """
    if isinstance(given, Mapping) and isinstance(known, Mapping):
        out = []
        for key, value in given.items():
            sub = f"{path}.{key}" if path else str(key)
            out += [sub] if key not in known else unknown_fields(value, known[key], sub)
        return out
    if isinstance(given, list) and isinstance(known, list):
        return [
            u
            for i, (g, k) in enumerate(zip(given, known, strict=False))
            for u in unknown_fields(g, k, f"{path}[{i}]")
        ]
    return []


def validate_flux_object(doc: dict[str, Any], origin: str) -> list[Finding]:
    """A Flux kind against its API model, unknown fields rejected; any other kind against Kubernetes."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    model = FLUX_MODELS.get(key)  # type: ignore[arg-type]
    if model is None:
        if str(doc.get("apiVersion", "")).endswith(".fluxcd.io/v2beta1") or "toolkit.fluxcd.io" in str(
            key[0]
        ):
            return [Finding(origin, object_name(doc), f"unsupported Flux API {key[0]} {key[1]}")]
        plain = {k: v for k, v in doc.items() if k != "sops"}
        return validate_manifest(plain, origin)
    try:
        parsed = model.model_validate(doc)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return [Finding(origin, object_name(doc), errors)]
    dumped = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    return [Finding(origin, f"{object_name(doc)}: {u}", "unknown field") for u in unknown_fields(doc, dumped)]


def _ns(doc: Mapping[str, Any], default: str | None) -> str | None:
    return (doc.get("metadata") or {}).get("namespace") or default


def check_references(repo: Repo, built: Built) -> list[Finding]:
    """Every reference of the cluster's Flux objects resolves within the cluster's objects or the repo."""
    findings = []
    for origin, doc in built.objects:
        kind, name, ns = doc.get("kind"), object_name(doc), _ns(doc, None)
        spec = doc.get("spec") or {}
        if kind == "Kustomization" and "toolkit" in doc.get("apiVersion", ""):
            ref = spec.get("sourceRef") or {}
            if built.find(ref.get("kind", ""), ref.get("namespace") or ns, ref.get("name", "")) is None:
                findings.append(Finding(origin, f"{name}: spec.sourceRef", f"{ref} does not exist"))
            secret = ((spec.get("decryption") or {}).get("secretRef") or {}).get("name")
            if (
                secret
                and (ns, secret) not in OUT_OF_BAND_SECRETS
                and built.find("Secret", ns, secret) is None
            ):
                findings.append(
                    Finding(origin, f"{name}: spec.decryption.secretRef", f"Secret {secret} missing")
                )
        if kind == "HelmRelease":
            findings += _check_helmrelease(repo, built, origin, doc)
    return findings


def _check_helmrelease(repo: Repo, built: Built, origin: str, doc: dict[str, Any]) -> list[Finding]:
    name, ns, spec = object_name(doc), _ns(doc, None), doc.get("spec") or {}
    findings = []
    if built.find("Namespace", None, ns or "") is None and ns != "flux-system":
        findings.append(Finding(origin, f"{name}: metadata.namespace", f"Namespace {ns} is not created"))
    chart = (spec.get("chart") or {}).get("spec") or {}
    ref = chart.get("sourceRef") or {}
    if built.find(ref.get("kind", ""), ref.get("namespace") or ns, ref.get("name", "")) is None:
        findings.append(Finding(origin, f"{name}: spec.chart.spec.sourceRef", f"{ref} does not exist"))
    if ref.get("kind") == "GitRepository":
        chart_dir = repo.root / chart.get("chart", "")
        if not (chart_dir / "Chart.yaml").is_file():
            findings.append(
                Finding(origin, f"{name}: spec.chart.spec.chart", f"{chart.get('chart')}: no chart there")
            )
        else:
            urls = {
                (d.get("spec") or {}).get("url", "").rstrip("/")
                for _, d in built.objects
                if d.get("kind") == "HelmRepository"
            }
            for dep in load_one(chart_dir / "Chart.yaml").get("dependencies") or []:
                if dep.get("repository", "").rstrip("/") not in urls:
                    findings.append(
                        Finding(
                            origin,
                            f"{name}: spec.chart",
                            f"dependency {dep.get('name')} comes from {dep.get('repository')}: no HelmRepository",
                        )
                    )
    values: dict[str, Any] = {}
    for i, source in enumerate(spec.get("valuesFrom") or []):
        target = built.find(source.get("kind", ""), ns, source.get("name", ""))
        key = source.get("valuesKey", "values.yaml")
        where = f"{name}: spec.valuesFrom[{i}]"
        if target is None:
            findings.append(
                Finding(origin, where, f"{source.get('kind')} {ns}/{source.get('name')} does not exist")
            )
        elif key not in (target.get("data") or {}):
            findings.append(Finding(origin, where, f"{object_name(target)} has no key {key!r}"))
        elif source.get("kind") == "ConfigMap":
            values.update(yaml.safe_load(target["data"][key]) or {})
    defaults = load_one(repo.root / chart.get("chart", "") / "values.yaml") if chart.get("chart") else {}
    env = {**(defaults.get("hubEnvSecret") or {}), **(values.get("hubEnvSecret") or {})}
    if env.get("name"):
        secret = built.find("Secret", ns, env["name"])
        if secret is None:
            findings.append(
                Finding(origin, f"{name}: hubEnvSecret.name", f"Secret {ns}/{env['name']} is not deployed")
            )
        else:
            present = set(secret.get("stringData") or {}) | set(secret.get("data") or {})
            for key in env.get("keys") or []:
                if key not in present:
                    findings.append(
                        Finding(origin, f"{name}: hubEnvSecret.keys", f"Secret {env['name']} has no {key}")
                    )
    return findings


def source_files(repo: Repo) -> dict[tuple[str, str], str]:
    """(kind, name) -> the file under flux/ that defines it, so that findings name a file, not a directory."""
    index: dict[tuple[str, str], str] = {}
    for path in sorted(repo.flux.rglob("*.yaml")):
        try:
            docs = load_all(path.read_text(), repo.rel(path))
        except YamlError:
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") and (doc.get("metadata") or {}).get("name"):
                index.setdefault((doc["kind"], doc["metadata"]["name"]), repo.rel(path))
    return index


def _origin(index: dict[tuple[str, str], str], built_from: str, doc: dict[str, Any]) -> str:
    name = str((doc.get("metadata") or {}).get("name", ""))
    found = index.get((str(doc.get("kind")), name))
    return f"{found} (built from {built_from})" if found else built_from


def check_cluster(repo: Repo, cluster_dir: Path) -> list[Finding]:
    """Build, validate and resolve one cluster directory and the paths its Flux Kustomizations apply."""
    built = Built(cluster_dir.name)
    index = source_files(repo)
    docs, findings = build(repo, cluster_dir)
    built.objects += [(_origin(index, repo.rel(cluster_dir), d), d) for d in docs]
    for doc in docs:
        if doc.get("kind") == "Kustomization" and "toolkit" in doc.get("apiVersion", ""):
            path = (repo.root / str((doc.get("spec") or {}).get("path", ""))).resolve()
            if not path.is_dir() or not path.is_relative_to(repo.root):
                findings.append(
                    Finding(repo.rel(cluster_dir), f"{object_name(doc)}: spec.path", f"{path} missing")
                )
                continue
            applied, more = build(repo, path)
            findings += more
            built.objects += [(_origin(index, repo.rel(path), d), d) for d in applied]
    for origin, doc in built.objects:
        findings += validate_flux_object(doc, origin)
    findings += check_references(repo, built)
    return findings


def check_flux(repo: Repo) -> list[Finding]:
    """All clusters under flux/clusters.

    Example:
        >>> check_flux(Repo.discover())  # doctest: +SKIP
        []
    """
    clusters = sorted(p for p in (repo.flux / "clusters").iterdir() if p.is_dir())
    if not clusters:
        return [Finding(repo.rel(repo.flux / "clusters"), "", "no cluster directories")]
    return [f for c in clusters for f in check_cluster(repo, c)]


def build_all(repo: Repo) -> dict[str, list[dict[str, Any]]]:
    """Built objects per cluster (for ``diff``)."""
    out = {}
    for cluster in sorted(p for p in (repo.flux / "clusters").iterdir() if p.is_dir()):
        docs, _ = build(repo, cluster)
        for doc in list(docs):
            if doc.get("kind") == "Kustomization" and "toolkit" in doc.get("apiVersion", ""):
                docs += build(repo, (repo.root / str(doc["spec"].get("path", ""))).resolve())[0]
        out[cluster.name] = docs
    return out
