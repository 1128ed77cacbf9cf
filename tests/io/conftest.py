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
    (root / "test").mkdir()  # rucio scope `test` (identity lfn2pfn: <prefix>/test/<name>)
    for path in (r21_path, r22_path):
        (root / "test" / path.name).symlink_to(path)
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

    # in scope `test` only the r22 file: rucio's replica of the r21 file on this server is broken on purpose
    server = start_xrootd(
        {r21_path.name: r21_path, r22_path.name: r22_path, f"test/{r22_path.name}": r22_path}
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rucio(tmp_path_factory, nginx, xrootd, r21_path, r22_path):
    """A rucio server with two RSEs: NGINX_DISK (https) and XROOTD_DISK (root), scope `test`."""
    import os

    from servers.rucio_server import start_rucio

    server = start_rucio(tmp_path_factory.mktemp("rucio"))
    previous = os.environ.get("RUCIO_CONFIG")
    os.environ["RUCIO_CONFIG"] = str(server.client_config)
    try:
        from rucio.client import Client

        client = Client()
        domains = {"lan": {"read": 1, "write": 1, "delete": 1}, "wan": {"read": 1, "write": 1, "delete": 1}}
        for rse, scheme, port, prefix in (
            ("NGINX_DISK", "https", nginx.https_port, "/data/"),
            ("XROOTD_DISK", "root", xrootd.root_port, "//"),
        ):
            client.add_rse(rse)
            client.add_protocol(
                rse,
                {
                    "scheme": scheme,
                    "hostname": "127.0.0.1",
                    "port": port,
                    "prefix": prefix,
                    "impl": "rucio.rse.protocols.gfal.Default",
                    "domains": domains,
                },
            )
        client.add_scope("root", "test")
        for path in (r21_path, r22_path):
            replica = {
                "scope": "test",
                "name": path.name,
                "bytes": path.stat().st_size,
                "adler32": "00000001",
            }
            for rse in ("NGINX_DISK", "XROOTD_DISK"):
                client.add_replicas(rse, [replica])
        ghost = {"scope": "test", "name": "ghost.root", "bytes": 100, "adler32": "00000001"}
        for rse in ("NGINX_DISK", "XROOTD_DISK"):
            client.add_replicas(rse, [ghost])
        yield server
    finally:
        if previous is None:
            os.environ.pop("RUCIO_CONFIG", None)
        else:
            os.environ["RUCIO_CONFIG"] = previous
        server.stop()
