"""root:// with an X509 proxy: the Debian XRootD server requiring GSI (servers.xrootd_gsi) serves a real RFC 3820
proxy of the test CA, and refuses a missing proxy or one from a CA it does not trust with a clear error.

Each read runs in its own process: the XRootD client reads its credentials once per process and keeps the
authenticated connection, so a second credential in the same process would never be presented.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from servers.grid_proxy import make_grid_credentials
from servers.xrootd_gsi import client_environment, start_xrootd_gsi

import physlite

BRANCH = "EventInfoAuxDyn.eventNumber"
READ = """
import json, sys
import physlite
from physlite.io import AccessDenied
try:
    with physlite.open(sys.argv[1], retries=0) as file:
        print(json.dumps(file.arrays([sys.argv[2]])[sys.argv[2]].tolist()))
except AccessDenied as error:
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(3)
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid_credentials(tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def gsi_server(grid, r22_path):
    server = start_xrootd_gsi({r22_path.name: r22_path}, grid)
    yield server
    server.stop()


def _read_in_own_process(url: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "BEARER_TOKEN_FILE")}
    return subprocess.run(
        [sys.executable, "-c", READ, url, BRANCH],
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_proxy_reads_what_is_read_locally(gsi_server, grid, r22_path):
    with physlite.open(r22_path) as file:
        local = file.arrays([BRANCH])[BRANCH].tolist()
    done = _read_in_own_process(gsi_server.url(r22_path.name), client_environment(grid, grid.proxy))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == local
    assert len(local) == 100


@pytest.mark.parametrize("which", ["missing", "untrusted CA", "not a proxy"])
def test_bad_or_missing_proxy_is_refused_with_a_clear_error(gsi_server, grid, r22_path, which):
    proxy = {"missing": None, "untrusted CA": grid.stranger_proxy, "not a proxy": grid.tls_proxy}[which]
    url = gsi_server.url(r22_path.name)
    done = _read_in_own_process(url, client_environment(grid, proxy))
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"AccessDenied: {url}: " in done.stderr
    assert "Auth failed" in done.stderr
    assert "Traceback" not in done.stderr
