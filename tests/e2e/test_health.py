"""`af health` against the running local facility: pass with timings, fail clearly, never leave a server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def af_health(facility, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "af.tools.cli", "health", "--url", facility.url, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_health_check_passes(facility, hub, r22_path):
    done = af_health(facility, "--state", str(facility.state_dir), "--data", str(r22_path), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    steps = {step["name"]: step for step in report["steps"]}
    assert report["ok"] is True
    assert list(steps) == [
        "server start",
        "inject",
        "parameters",
        "gateway",
        "compute",
        "physlite",
        "shutdown",
        "server stop",
    ]
    assert "workers: 1" in steps["gateway"]["detail"]
    assert "'AnalysisElectronsAuxDyn.pt': 10" in steps["physlite"]["detail"]
    assert all(step["seconds"] >= 0 for step in steps.values())
    assert hub.api("GET", "/users/af-health").json()["servers"] == {}


def test_health_check_reports_a_failing_step(facility, hub):
    done = af_health(facility, "--state", str(facility.state_dir), "--data", "/nonexistent/file.root")
    assert done.returncode == 1
    assert "FAIL physlite" in done.stdout and "/nonexistent/file.root" in done.stdout, done.stdout
    assert hub.api("GET", "/users/af-health").json()["servers"] == {}


def test_health_check_refuses_a_bad_token(facility):
    done = af_health(
        facility, "--token-env", "AF_TEST_BAD_TOKEN", env={"AF_TEST_BAD_TOKEN": "nope", "PATH": ""}
    )
    assert done.returncode == 1
    assert "HTTP 403; is the operator token valid?" in done.stderr
    missing = af_health(facility, "--token-env", "AF_TEST_UNSET_TOKEN")
    assert missing.returncode == 1 and "AF_TEST_UNSET_TOKEN" in missing.stderr
