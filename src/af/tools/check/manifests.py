"""Strict validation of Kubernetes manifests against the API schemas of a Kubernetes version (offline)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from af.tools.check.findings import Finding, dotted
from af.tools.check.repo import KUBE_VERSIONS

# Kinds that are custom resources: validated elsewhere (Flux models), never silently accepted here.
CUSTOM_GROUPS = ("toolkit.fluxcd.io",)


def object_name(doc: dict[str, Any]) -> str:
    """``Kind namespace/name`` of a manifest, for messages.

    Example:
        >>> object_name({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "b"}})
        'ConfigMap b/a'
    """
    meta = doc.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{doc.get('kind', '?')} {ns}{meta.get('name', '?')}"


def validate_manifest(
    doc: dict[str, Any], origin: str, kube_versions: tuple[str, ...] = KUBE_VERSIONS
) -> list[Finding]:
    """Validate one manifest strictly (unknown fields are errors) for each Kubernetes version; a kind without a
    schema is an error too.

    Example:
        >>> validate_manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
        ...                    "dat": {}}, "x.yaml")[0].key
        'ConfigMap a'
    """
    name = object_name(doc)
    for field in ("apiVersion", "kind"):
        if not doc.get(field):
            return [Finding(origin, name, f"manifest has no {field}")]
    for version in kube_versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = dotted(list(exc.absolute_path))
            return [Finding(origin, name, f"{where}: {exc.message} (Kubernetes {exc.version}, strict)")]
        except kubernetes_validate.SchemaNotFoundError as exc:
            return [Finding(origin, name, exc.message)]
    return []
