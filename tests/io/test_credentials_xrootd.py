"""root:// with credentials: the Debian XRootD server requiring GSI (servers.xrootd_gsi) serves a real RFC 3820
proxy of the test CA; requiring a token (servers.xrootd_token: ztn over TLS, SciTokens authorization) serves
a valid access token with the storage.read scope. A missing or bad credential gives a clear error.

Each read runs in its own process: the XRootD client reads its credentials once per process and keeps the
authenticated connection, so a second credential in the same process would never be presented.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from servers import xrootd_gsi, xrootd_token
from servers.grid_proxy import make_grid_credentials
from servers.token_issuer import TokenIssuer

import physlite
from physlite.io import AccessDenied, RemoteError, open_source

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
    server = xrootd_gsi.start_xrootd_gsi({f"test/{r22_path.name}": r22_path}, grid)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def issuer():
    return TokenIssuer("https://iam.physlite.test")  # only its keys are used: no one fetches them here


@pytest.fixture(scope="module")
def token_server(grid, issuer, r22_path):
    server = xrootd_token.start_xrootd_token({r22_path.name: r22_path}, issuer, grid)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def local_values(r22_path):
    with physlite.open(r22_path) as file:
        values = file.arrays([BRANCH])[BRANCH].tolist()
    assert len(values) == 100
    return values


def _read_in_own_process(url: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "BEARER_TOKEN_FILE")}
    return subprocess.run(
        [sys.executable, "-c", READ, url, BRANCH],
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_proxy_reads_what_is_read_locally(gsi_server, grid, r22_path, local_values):
    url = gsi_server.url(f"test/{r22_path.name}")
    done = _read_in_own_process(url, xrootd_gsi.client_environment(grid, grid.proxy))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == local_values


@pytest.mark.parametrize("which", ["missing", "untrusted CA", "not a proxy"])
def test_bad_or_missing_proxy_is_refused_with_a_clear_error(gsi_server, grid, r22_path, which):
    proxy = {"missing": None, "untrusted CA": grid.stranger_proxy, "not a proxy": grid.tls_proxy}[which]
    url = gsi_server.url(f"test/{r22_path.name}")
    done = _read_in_own_process(url, xrootd_gsi.client_environment(grid, proxy))
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"AccessDenied: {url}: " in done.stderr
    assert "Auth failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_token_reads_what_is_read_locally(token_server, grid, issuer, r22_path, local_values):
    token = issuer.issue("jdoe")
    done = _read_in_own_process(token_server.url(r22_path.name), xrootd_token.client_environment(grid, token))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == local_values


@pytest.mark.parametrize("which", ["missing", "forged", "expired", "without storage.read"])
def test_bad_or_missing_token_is_refused_with_a_clear_error(token_server, grid, issuer, r22_path, which):
    token = {
        "missing": lambda: None,
        "forged": lambda: issuer.issue(
            "jdoe", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "expired": lambda: issuer.issue("jdoe", lifetime=-60),
        "without storage.read": lambda: issuer.issue("jdoe", scope="openid profile"),
    }[which]()
    url = token_server.url(r22_path.name)
    done = _read_in_own_process(url, xrootd_token.client_environment(grid, token))
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"AccessDenied: {url}: " in done.stderr
    # a missing, forged or expired token fails the login (ztn asks SciTokens to validate it); a valid token
    # without the read scope logs in, and SciTokens refuses the open
    assert ("permission denied" if which == "without storage.read" else "Auth failed") in done.stderr
    assert "Traceback" not in done.stderr


def test_https_with_a_real_proxy_reads_what_is_read_locally(gsi_server, grid, r22_path, local_values):
    """XrdHttp verifies the RFC 3820 proxy that the https source presents as its client certificate."""
    url = xrootd_gsi.https_url(gsi_server, f"test/{r22_path.name}")
    options = {"x509_proxy": str(grid.proxy), "ca_file": str(grid.ca_cert), "token": ""}
    with physlite.open(url, **options) as file:
        assert file.arrays([BRANCH])[BRANCH].tolist() == local_values


@pytest.mark.parametrize("which", ["missing", "not a proxy, DN not in the grid-mapfile"])
def test_https_without_the_users_proxy_is_403(gsi_server, grid, r22_path, which):
    url = xrootd_gsi.https_url(gsi_server, f"test/{r22_path.name}")
    proxy = None if which == "missing" else str(grid.tls_proxy)
    with pytest.raises(AccessDenied, match=rf"{url}: HTTP 403"):
        open_source(url, x509_proxy=proxy, ca_file=str(grid.ca_cert), token="", metadata_cache=False)


def test_https_with_a_proxy_of_an_untrusted_ca_is_refused(gsi_server, grid, r22_path):
    # XrdHttp ends the TLS connection when the client certificate does not verify: the client sees the
    # connection closed or reset without an HTTP answer (no status to tell a refused certificate from a crash)
    url = xrootd_gsi.https_url(gsi_server, f"test/{r22_path.name}")
    with pytest.raises(RemoteError, match=rf"{url}: connection to 127.0.0.1:\d+ failed: "):
        open_source(url, x509_proxy=str(grid.stranger_proxy), ca_file=str(grid.ca_cert), token="", retries=0)
