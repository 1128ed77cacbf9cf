"""`make diff REF=...`: the change an upgrade would make, from a real git history."""

from __future__ import annotations

import subprocess

import pytest

from af.tools.check.diff import compare, diff
from tests.k8s.conftest import edit


def _git(root, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_diff_against_a_commit(scratch) -> None:
    _git(scratch.root, "init", "-q", "-b", "main")
    _git(scratch.root, "add", "-A")
    _git(scratch.root, "commit", "-q", "-m", "before")
    edit(
        scratch.root / "flux/deploy/staging/values.yaml",
        "server_idle_timeout: 1800",
        "server_idle_timeout: 900",
    )
    text, counts = diff(scratch, "HEAD")
    # the chart's settings ConfigMap, the generated values ConfigMap, the HelmRelease pointing at its new name, and
    # the ServiceX Deployment (staging runs it), which restarts on a settings change (its checksum annotation), and
    # the settings-rollout hook Job (the new checksum it writes on the hub's and the gateway's Deployments)
    assert counts == {"added": 0, "removed": 0, "changed": 5}
    assert "Job analysis-facility-settings-rollout (before)" in text
    assert "chart[flux/deploy/staging/values.yaml] Deployment analysis-facility-servicex (before)" in text
    assert "-      server_idle_timeout: 1800\n+      server_idle_timeout: 900" in text
    assert (
        "chart[flux/deploy/staging/values.yaml] ConfigMap analysis-facility/analysis-facility-settings"
        not in text
    )
    assert "chart[flux/deploy/staging/values.yaml] ConfigMap analysis-facility-settings (before)" in text
    assert "flux[staging] ConfigMap analysis-facility/analysis-facility-values (after)" in text
    assert "flux[staging] HelmRelease analysis-facility/analysis-facility (after)" in text


def test_unknown_ref_is_an_error_naming_it(scratch) -> None:
    _git(scratch.root, "init", "-q", "-b", "main")
    _git(scratch.root, "add", "-A")
    _git(scratch.root, "commit", "-q", "-m", "x")
    with pytest.raises(ValueError, match="git ref 'no-such-ref'"):
        diff(scratch, "no-such-ref")


def test_compare_counts() -> None:
    _, counts = compare({"a": "1\n", "gone": "x\n"}, {"a": "2\n", "new": "y\n"})
    assert counts == {"added": 1, "removed": 1, "changed": 1}
