"""`af down` leaves no process of its facility behind, the hub's idle culler included, even when the hub
crashed before (its services are then children of init, not of the hub)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility, descendants

pytestmark = pytest.mark.e2e
CULLER = "jupyterhub_idle_culler"


def command_line(pid: int) -> str:
    """The command line of a running process, '' when it is gone (or a zombie)."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return ""
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def facility_processes(facility: LocalFacility) -> dict[int, str]:
    """Every process of the facility now: its components and all they started, with their command lines."""
    components = list(facility.pids().values())
    return {pid: command_line(pid) for pid in components + descendants(components)}


@pytest.mark.parametrize("hub_crashed", [False, True], ids=["hub running", "hub crashed"])
def test_down_leaves_no_process_culler_included(tmp_path, hub_crashed):
    facility = LocalFacility(tmp_path / "state", ports=Ports.free(), tutorials=tmp_path / "no-tutorials")
    try:
        facility.up()
        # Once it has asked the hub for the users, the culler runs on its own (before, a dead hub stops it).
        hub_log = facility.state_dir / "logs" / "hub.log"
        deadline = time.monotonic() + 60
        while "/hub/api/users?state=" not in hub_log.read_text():
            assert time.monotonic() < deadline, f"the hub's {CULLER} never asked for the users"
            time.sleep(0.2)
        before = facility_processes(facility)
        assert any(CULLER in cmd for cmd in before.values()), before
        if hub_crashed:
            os.kill(facility.pids()["hub"], signal.SIGKILL)
    finally:
        facility.down()
    left = {pid: cmd for pid, cmd in before.items() if cmd and command_line(pid) == cmd}
    assert left == {}, f"still running after down: {left}"
