"""Strict validation of Kubernetes manifests against the API schemas of a Kubernetes version (offline)."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate

from af.tools.check.findings import Finding, dotted
from af.tools.check.repo import KUBE_VERSIONS

# Kinds that are custom resources: validated elsewhere (Flux models), never silently accepted here.
CUSTOM_GROUPS = ("toolkit.fluxcd.io",)
# what the API server accepts as a label value (the schemas say only "string")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


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
    bad_labels = label_findings(doc, origin)
    if bad_labels:
        return bad_labels
    for version in kube_versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = dotted(list(exc.absolute_path))
            return [Finding(origin, name, f"{where}: {exc.message} (Kubernetes {exc.version}, strict)")]
        except kubernetes_validate.SchemaNotFoundError as exc:
            return [Finding(origin, name, exc.message)]
    return []


def label_findings(doc: dict[str, Any], origin: str) -> list[Finding]:
    """Label values of the object (and of its pod template) that the API server would refuse.

    Example:
        >>> label_findings({"kind": "Pod", "metadata": {"name": "p", "labels": {"v": "1.0+abc"}}}, "x.yaml")[0].key
        'Pod p'
    """
    template = ((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}
    found = []
    for where, meta in (("metadata", doc.get("metadata") or {}), ("spec.template.metadata", template)):
        for key, value in (meta.get("labels") or {}).items():
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                found.append(
                    Finding(
                        origin,
                        object_name(doc),
                        f"{where}.labels.{key}: {value!r} is not a valid label value (at most 63 characters "
                        "of letters, digits, '-', '_' and '.', starting and ending with a letter or digit)",
                    )
                )
    return found
