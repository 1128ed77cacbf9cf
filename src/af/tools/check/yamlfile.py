"""Reading YAML files into plain data, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlError(ValueError):
    """A file is not valid YAML (the message names it and the line)."""


def load_one(path: Path) -> Any:
    """The single YAML document in ``path`` (``{}`` for an empty file).

    Example:
        >>> load_one(Path("charts/analysis-facility/Chart.yaml"))["name"]  # doctest: +SKIP
        'analysis-facility'
    """
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise YamlError(f"{path}: not valid YAML: {exc}") from exc
    return {} if data is None else data


def load_all(text: str, origin: str) -> list[dict[str, Any]]:
    """Every non-empty mapping document of a YAML stream (rendered manifests, kustomize output)."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise YamlError(f"{origin}: not valid YAML: {exc}") from exc
    return [d for d in docs if d]
