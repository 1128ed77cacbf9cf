"""JSON-schema validation of values, reported as findings that name the values file and the key."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from af.tools.check.findings import Finding, dotted


def without_required(schema: Any) -> Any:
    """A copy of ``schema`` with every ``required`` list removed.

    The values we hand a subchart are merged with its own defaults by Helm; those defaults cannot be loaded
    offline, so we check what we set (unknown keys, types, enums) and leave completeness to the real chart.

    Example:
        >>> without_required({"type": "object", "required": ["a"], "properties": {"a": {"required": ["b"]}}})
        {'type': 'object', 'properties': {'a': {}}}
    """
    if isinstance(schema, dict):
        return {
            k: without_required(v) for k, v in schema.items() if not (k == "required" and isinstance(v, list))
        }
    if isinstance(schema, list):
        return [without_required(v) for v in schema]
    return copy.copy(schema)


def blame_file(sources: list[tuple[str, Mapping[str, Any]]], path: Iterable[Any]) -> str | None:
    """The first of (file, values) `sources` that sets the key at `path`, or None.

    Example:
        >>> blame_file([("mine.yaml", {"a": {}}), ("values.yaml", {"a": {"b": 1}})], ["a", "b"])
        'values.yaml'
    """
    path = list(path)
    return next((name for name, data in sources if _has_path(data, path)), None)


def _has_path(data: Any, path: Iterable[Any]) -> bool:
    for part in path:
        found = (isinstance(data, Mapping) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and part < len(data)
        )
        if not found:
            return False
        data = data[part]
    return True


def _error_paths(error: jsonschema.ValidationError) -> list[tuple[list[Any], str]]:
    """The key path(s) an error is about; for unknown keys, the unknown keys themselves."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(error.schema.get("properties", {}))
        patterns = error.schema.get("patternProperties", {})
        extra = [k for k in error.instance if k not in allowed and not patterns]
        if extra:
            return [([*path, k], "unknown key (not in the schema: a typo?)") for k in extra]
    if error.validator == "contains" and isinstance(error.validator_value, Mapping):
        wanted = error.validator_value.get("const")
        if wanted is not None:
            return [(path, f"must contain {json.dumps(wanted)}, got {json.dumps(error.instance)}")]
    return [(path, error.message)]


def validate(
    values: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    prefix: list[Any],
    sources: list[tuple[str, Mapping[str, Any]]],
) -> list[Finding]:
    """Validate ``values`` against ``schema``; each error names the file that set the key.

    ``prefix`` is where ``values`` sit in the chart's values (``["jupyterhub"]`` for the z2jh subchart);
    ``sources`` are (file, values) pairs, most specific first: the first file containing the key is blamed.

    Example:
        >>> validate({"a": 1}, {"type": "object", "additionalProperties": False}, prefix=[],
        ...          sources=[("my.yaml", {"a": 1})])[0].key
        'a'
    """
    validator = jsonschema.Draft7Validator(schema)
    findings = []
    for error in sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.absolute_path))):
        for path, message in _error_paths(error):
            full = [*prefix, *path]
            blamed = blame_file(sources, full) or sources[-1][0]
            findings.append(Finding(blamed, dotted(full), message))
    return findings
