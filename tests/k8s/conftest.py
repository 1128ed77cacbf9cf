"""Fixtures of the deployment checks: a scratch copy of the repository's deployment files to break on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from af.tools.check.repo import Repo

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("charts", "flux", "images", "docs", ".sops.yaml", "pyproject.toml", "uv.lock", "Makefile")


@pytest.fixture(scope="session")
def real_repo() -> Repo:
    return Repo.at(ROOT)


@pytest.fixture
def scratch(tmp_path: Path, real_repo: Repo) -> Repo:
    """A copy of the files the checks read; tests edit it and expect the checks to name what they broke."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    return Repo.at(tmp_path, real_repo.schemas)


def edit(path: Path, old: str, new: str) -> None:
    """Replace exactly one occurrence of ``old`` in ``path`` (a test that edits nothing would prove nothing)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: expected one {old!r}"
    path.write_text(text.replace(old, new))


def errors(findings: list) -> list:
    return [f for f in findings if not f.warning]
