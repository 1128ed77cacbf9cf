"""Servers for the remote-reading tests (started once per session, on 127.0.0.1) and their data folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `servers` package lives in tests/

from servers.faulty import start_faulty
from servers.nginx import start_nginx


@pytest.fixture(scope="session")
def served(tmp_path_factory, r21_path, r22_path) -> Path:
    """A folder with the real files (symlinked) and a renamed copy, served by every test server."""
    root = tmp_path_factory.mktemp("served")
    for path in (r21_path, r22_path):
        (root / path.name).symlink_to(path)
    (root / "sibling_of_example.root").symlink_to(r22_path)
    root.chmod(0o755)
    return root


@pytest.fixture(scope="session")
def nginx(served, tmp_path_factory):
    server = start_nginx(served, tmp_path_factory.mktemp("nginx"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def faulty(served):
    server = start_faulty(served)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def xrootd(r21_path, r22_path):
    from servers.xrootd import start_xrootd

    server = start_xrootd([r21_path, r22_path])
    yield server
    server.stop()
