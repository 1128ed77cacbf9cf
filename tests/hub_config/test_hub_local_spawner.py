"""Pieces of the local spawner that need no hub: CPU choice, tutorials, JupyterLab defaults."""

from __future__ import annotations

import json

from af.user_server.tutorials import copy_tutorials
from hub_config.local_spawner import NOTIFICATION_SETTINGS, pick_cpus, quiet_jupyterlab


def test_pick_cpus():
    assert len(pick_cpus("alice", 1, [0, 1, 2, 3])) == 1
    assert sorted(pick_cpus("alice", 2, [0, 1, 2, 3])) in ([0, 1], [1, 2], [2, 3], [0, 3])
    assert pick_cpus("alice", 8, [0, 1]) in ([0, 1], [1, 0])
    assert pick_cpus("bob", 0.5, [5]) == [5]
    assert pick_cpus("alice", 1, [0, 1, 2, 3]) == pick_cpus("alice", 1, [0, 1, 2, 3])


def test_copy_tutorials_keeps_user_copies(tmp_path):
    source, home = tmp_path / "notebooks", tmp_path / "home"
    source.mkdir()
    (source / "01-intro.ipynb").write_text("{}")
    (source / "02-gateway.ipynb").write_text("{}")
    (source / "notes.txt").write_text("not a notebook")
    (home / "tutorials").mkdir(parents=True)
    (home / "tutorials" / "01-intro.ipynb").write_text("edited by the user")
    copied = copy_tutorials(source, home)
    assert [p.name for p in copied] == ["02-gateway.ipynb"]
    assert (home / "tutorials" / "01-intro.ipynb").read_text() == "edited by the user"
    assert not (home / "tutorials" / "notes.txt").exists()
    assert copy_tutorials(tmp_path / "missing", home) == []


def test_quiet_jupyterlab(tmp_path):
    quiet_jupyterlab(tmp_path)
    assert json.loads((tmp_path / NOTIFICATION_SETTINGS).read_text())["fetchNews"] == "false"
    (tmp_path / NOTIFICATION_SETTINGS).write_text('{"fetchNews": "true"}')
    quiet_jupyterlab(tmp_path)
    assert json.loads((tmp_path / NOTIFICATION_SETTINGS).read_text())["fetchNews"] == "true"


def test_port_reservations_never_repeat_while_held(monkeypatch):
    from hub_config import local_spawner

    offered = iter([5000, 5000, 5001, 5000, 5002])
    monkeypatch.setattr(local_spawner, "random_port", lambda: next(offered))
    reservations = local_spawner.PortReservations(hold_seconds=60)
    assert [reservations.reserve() for _ in range(3)] == [5000, 5001, 5002]
    expired = local_spawner.PortReservations(hold_seconds=0)
    monkeypatch.setattr(local_spawner, "random_port", lambda: 6000)
    assert [expired.reserve(), expired.reserve()] == [6000, 6000]
