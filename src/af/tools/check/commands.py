"""Commands the chart runs with our own code: `af ...` parsed by af's parser, `python -m <our module>` must exist."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from typing import Any

from af.tools.check.findings import Finding


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    elif doc.get("kind") in ("Job", "Deployment", "StatefulSet", "DaemonSet"):
        spec = (spec.get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or [])


def check_af_commands(documents: list[dict[str, Any]], origin: str) -> list[Finding]:
    """Every container running ``af ...`` passes `af`'s own argument parser (af.tools.cli.build_parser).

    Example:
        >>> check_af_commands([], "x.yaml")
        []
    """
    findings = []
    for doc in documents:
        for container in _containers(doc):
            argv = [*(container.get("command") or []), *(container.get("args") or [])]
            if (
                argv[:2] == ["python", "-m"]
                and len(argv) > 2
                and argv[2].split(".")[0] in ("af", "hub_config")
            ):
                # our own modules run with `python -m` must exist in the project the image installs
                if importlib.util.find_spec(argv[2]) is None:
                    where = (
                        f"{doc.get('kind')} {doc['metadata'].get('name')}: container {container.get('name')}"
                    )
                    findings.append(Finding(origin, where, f"module {argv[2]} does not exist"))
                continue
            if not argv or argv[0] != "af":
                continue
            where = f"{doc.get('kind')} {doc['metadata'].get('name')}: container {container.get('name')}"
            try:
                from af.tools.cli import build_parser
            except ImportError as exc:
                return [Finding(origin, where, f"af.tools.cli cannot be imported: {exc}")]
            errors = io.StringIO()
            try:
                with contextlib.redirect_stderr(errors):
                    build_parser().parse_args(argv[1:])
            except SystemExit:
                message = (errors.getvalue().strip().splitlines() or ["rejected"])[-1]
                findings.append(Finding(origin, where, f"`{' '.join(argv)}`: {message}"))
    return findings
