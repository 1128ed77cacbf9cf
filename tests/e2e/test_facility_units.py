"""Pieces of the facility tooling that need no running facility."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from af.gateway.dashboard_guard import cluster_of
from af.tools.health import HealthError, HealthReport, Step, operator_token, smoke_cells
from af.tools.local.load import percentile
from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility, marked_processes, terminate
from hub_config.settings import validate_settings

PREFIX = "/services/dask-gateway"


@pytest.mark.parametrize(
    ("path", "cluster"),
    [
        (f"{PREFIX}/clusters/abc/status", "abc"),
        (f"{PREFIX}/clusters/abc", "abc"),
        (f"{PREFIX}/Clusters/abc/ws", "abc"),
        (f"{PREFIX}/api/v1/clusters/abc", None),
        (f"{PREFIX}/api/health", None),
        ("/other/clusters/abc/status", None),
    ],
)
def test_cluster_of(path, cluster):
    assert cluster_of(path, PREFIX) == cluster


def test_percentile():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0


def test_smoke_notebook_cells():
    names = [name for name, _ in smoke_cells("")]
    assert names == ["parameters", "gateway", "compute", "physlite", "shutdown"]
    injected = smoke_cells("root://host//f.root")
    assert injected[0] == ("inject", "DATA = 'root://host//f.root'")


def test_health_report_verdict():
    report = HealthReport(url="http://hub", user="af-health")
    assert not report.ok, "an empty report is not a pass"
    report.steps = [Step("server start", True, 1.0), Step("physlite", False, 0.5, "NotFound: f.root")]
    assert not report.ok and "FAIL physlite" in report.text()
    report.steps[1].ok = True
    assert report.ok and report.as_dict()["ok"] is True


def test_operator_token_sources(tmp_path, monkeypatch):
    (tmp_path / "secrets.json").write_text('{"operator_token": "abc"}')
    assert operator_token("UNUSED", str(tmp_path)) == "abc"
    with pytest.raises(HealthError, match=r"secrets\.json"):
        operator_token("UNUSED", str(tmp_path / "nowhere"))
    monkeypatch.setenv("AF_TEST_TOKEN", "xyz")
    assert operator_token("AF_TEST_TOKEN", "") == "xyz"
    with pytest.raises(HealthError, match="AF_TEST_MISSING"):
        operator_token("AF_TEST_MISSING", "")


def test_local_settings_are_valid_and_use_the_ports(tmp_path):
    ports = Ports.free()
    facility = LocalFacility(
        tmp_path, ports=ports, settings_overrides={"servicex.endpoint": "https://sx.org"}
    )
    settings = validate_settings(facility.settings())
    assert settings.auth.issuer == f"http://127.0.0.1:{ports.oidc}"
    assert settings.gateway.service_url == f"http://127.0.0.1:{ports.guard}"
    assert settings.servicex.endpoint == "https://sx.org"
    assert len(set(ports.as_dict().values())) == len(ports.as_dict())


def test_secrets_and_accounts_are_kept(tmp_path):
    first = LocalFacility(tmp_path, extra_users=2)
    secrets, accounts = first.secrets(), first.accounts()
    again = LocalFacility(tmp_path, extra_users=2)
    assert again.secrets() == secrets and again.accounts() == accounts
    assert [a.username for a in accounts] == ["ada", "alice", "bob", "oscar", "user01", "user02"]
    assert oct((tmp_path / "secrets.json").stat().st_mode & 0o777) == "0o600"
    assert "oscar" in first.banner() and first.account("oscar").password in first.banner()


def test_down_finds_processes_by_marker():
    marker = f"test{os.getpid()}"
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env={**os.environ, "AF_FACILITY_ID": marker}
    )
    try:
        deadline = time.monotonic() + 10
        while child.pid not in marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marked_processes(marker) == [child.pid]
        terminate([child.pid], grace=5)
        assert child.wait(timeout=5) is not None
        assert marked_processes(marker) == []
    finally:
        child.kill()


def test_ports_of_an_older_state_folder_still_load(tmp_path):
    # ports.json of a version whose ServiceX had a dask scheduler of its own (ports this version no longer uses)
    recorded = {**Ports.free().as_dict(), "dask_scheduler": 8796, "dask_dashboard": 8797}
    (tmp_path / "ports.json").write_text(json.dumps(recorded))
    ports = LocalFacility(tmp_path).ports
    assert ports.public == recorded["public"] and ports.s3 == recorded["s3"]
    assert "dask_scheduler" not in ports.as_dict()
