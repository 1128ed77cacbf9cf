"""The committed deployment passes every offline check (what `make check` runs, check by check)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from af.tools.check.__main__ import CHECKS
from tests.k8s.conftest import ROOT, errors


# `image-install` (uv sync of both images, kernel warm-up: the slowest) is left to `make check`, which `make test`
# runs right before pytest; its failure path is tested in test_images_and_skew.py.
@pytest.mark.parametrize("name", [n for n in CHECKS if n != "image-install"])
def test_check_passes_on_the_repository(name: str, real_repo) -> None:
    _, check = CHECKS[name]
    assert errors(check(real_repo)) == []


def test_cli_exit_status_and_report(real_repo, scratch) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "af.tools.check", "chart", "skew"], cwd=ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "af.tools.check: all checks passed" in ok.stdout
    values = scratch.root / "flux/deploy/staging/values.yaml"
    values.write_text(values.read_text() + "healthCheck:\n  shedule: '* * * * *'\n")
    bad = subprocess.run(
        [sys.executable, "-m", "af.tools.check", "chart", "--root", str(scratch.root)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "flux/deploy/staging/values.yaml: healthCheck.shedule: unknown key" in bad.stdout


def test_cli_rejects_unknown_check() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "af.tools.check", "chrat"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "unknown check(s) ['chrat']" in done.stderr
