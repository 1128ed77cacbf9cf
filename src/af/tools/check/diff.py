"""What an upgrade would change: the chart and the Flux manifests rendered at a git ref and now, compared.

The ref is checked out as a git worktree under build/diff/ and rendered with *today's* renderer (so old
revisions compare the same way); each object is compared as sorted YAML. SOPS ciphertext changes with every
encryption, so encrypted values are masked and only reported as changed.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from af.tools.check import chart, flux, subcharts
from af.tools.check.manifests import object_name
from af.tools.check.repo import Repo


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (settings.yaml, config snippets) as literal blocks, so diffs show their lines."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def _dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=True, default_flow_style=False)


def _digest(value: Any) -> str:
    return hashlib.sha256(_dump(value).encode()).hexdigest()[:16]


def _mask(doc: dict[str, Any]) -> dict[str, Any]:
    if "sops" not in doc:
        return doc
    masked = {k: v for k, v in doc.items() if k != "sops"}
    for field in ("data", "stringData"):
        if isinstance(masked.get(field), dict):
            masked[field] = {k: "<sops-encrypted>" for k in masked[field]}
    return masked


def snapshot(repo: Repo) -> dict[str, str]:
    """Every object the chart (per values file) and Flux (per cluster) produce: id -> sorted YAML.

    The subcharts cannot be rendered offline, so the values our chart hands to each of them are part of the
    snapshot: a change there is what their templates would turn into changed objects.
    """
    out: dict[str, str] = {}
    if (repo.chart / "Chart.yaml").is_file():
        for values_file, rendered in chart.render_all(repo).items():
            for docs in rendered.manifests.values():
                for doc in docs:
                    out[f"chart[{values_file}] {object_name(doc)}"] = _dump(doc)
            for sub in subcharts.SUBCHARTS:
                out[f"chart[{values_file}] values handed to subchart {sub.name}"] = _dump(
                    rendered.merged.get(sub.name) or {}
                )
    if (repo.flux / "clusters").is_dir():
        for cluster, docs in flux.build_all(repo).items():
            for doc in docs:
                key = f"flux[{cluster}] {object_name(doc)}"
                text = _dump(_mask(doc))
                if "sops" in doc:
                    text += f"# ciphertext sha256: {_digest(doc.get('stringData') or doc.get('data'))}\n"
                out[key] = text
    return out


def _normalise_generated(key: str) -> str:
    # kustomize appends a content hash to generated ConfigMaps: compare them by their base name
    return re.sub(r"(analysis-facility-values)-[a-z0-9]{10}\b", r"\1", key)


def compare(before: dict[str, str], after: dict[str, str]) -> tuple[str, dict[str, int]]:
    """A unified diff of two snapshots and counts of added/removed/changed objects.

    Example:
        >>> text, counts = compare({"a": "x: 1\\n"}, {"a": "x: 2\\n", "b": "y: 1\\n"})
        >>> counts
        {'added': 1, 'removed': 0, 'changed': 1}
    """
    old = {_normalise_generated(k): v for k, v in before.items()}
    new = {_normalise_generated(k): v for k, v in after.items()}
    counts = {"added": 0, "removed": 0, "changed": 0}
    chunks = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        counts["added" if a is None else "removed" if b is None else "changed"] += 1
        lines = difflib.unified_diff(
            (a or "").splitlines(keepends=True),
            (b or "").splitlines(keepends=True),
            fromfile=f"{key} (before)" if a is not None else "/dev/null",
            tofile=f"{key} (after)" if b is not None else "/dev/null",
        )
        chunks.append("".join(lines))
    return "\n".join(chunks), counts


def worktree(repo: Repo, ref: str) -> Path:
    """A detached worktree of ``ref`` under build/diff/ (replaced if it exists)."""
    target = repo.root / "build" / "diff" / re.sub(r"[^A-Za-z0-9._-]", "_", ref)
    if target.exists():
        subprocess.run(
            ["git", "-C", str(repo.root), "worktree", "remove", "--force", str(target)], check=False
        )
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["git", "-C", str(repo.root), "worktree", "add", "--detach", str(target), ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(f"git ref {ref!r}: cannot be checked out: {done.stderr.strip()}")
    return target


def diff(repo: Repo, ref: str) -> tuple[str, dict[str, int]]:
    """Render at ``ref`` and in the working tree, and compare."""
    tree = worktree(repo, ref)
    try:
        before = snapshot(Repo.at(tree, repo.schemas))
    finally:
        subprocess.run(["git", "-C", str(repo.root), "worktree", "remove", "--force", str(tree)], check=False)
    return compare(before, snapshot(repo))
