"""Credentials end to end, against a site that requires them (servers.secure_site): a real rucio server that
validates the user's IAM access token (JWT from the test issuer) or X509 proxy (verified by the nginx TLS
front end), and storage that serves only with a valid token or a client certificate of the test CA.

The user's part is what a facility user does: the token is stored where WLCG discovery finds it
(store_token), or the proxy is uploaded through the notebook widget; then physlite.open("rucio://...").
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from servers import xrootd_gsi, xrootd_token
from servers.hub_users_api import HubUsersAPI
from servers.secure_site import start_secure_site

import physlite
from physlite.io import AccessDenied, CredentialError, RucioError, open_source
from physlite.io.credentials import (
    FACILITY_TOKEN_FILE,
    proxy_upload_widget,
    store_facility_token,
    store_proxy,
    store_token,
)

BRANCHES = ["AnalysisElectronsAuxDyn.pt", "AnalysisJetsAuxDyn.eta", "EventInfoAuxDyn.eventNumber"]


@pytest.fixture(scope="module")
def site(tmp_path_factory, served, r21_path, r22_path):
    from rucio.common.config import clean_cached_config

    clean_cached_config()
    site = start_secure_site(
        tmp_path_factory.mktemp("secure_site"),
        served,
        [served / "test" / r21_path.name, served / "test" / r22_path.name],
    )
    yield site
    site.stop()
    clean_cached_config()


@pytest.fixture
def user(site, monkeypatch, tmp_path):
    """A user's environment on the facility: a rucio client configuration (auth type left to what the user's
    credential sets), the site's CA trusted, no credential yet."""
    from rucio.common.config import clean_cached_config

    for variable in (
        "BEARER_TOKEN",
        "BEARER_TOKEN_FILE",
        "X509_USER_PROXY",
        "RUCIO_AUTH_TYPE",
        "X509_CERT_DIR",
        "JUPYTERHUB_API_URL",
        "JUPYTERHUB_API_TOKEN",
        "JUPYTERHUB_USER",
        FACILITY_TOKEN_FILE,
    ):
        monkeypatch.setenv(variable, "")  # recorded, so that what store_token/store_proxy set is undone
        monkeypatch.delenv(variable)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("RUCIO_CONFIG", str(site.client_config(tmp_path.name)))
    monkeypatch.setenv("SSL_CERT_FILE", str(site.cert))
    clean_cached_config()
    yield monkeypatch
    clean_cached_config()


@pytest.fixture(scope="module")
def local_arrays(r22_path):
    with physlite.open(r22_path) as file:
        return file.arrays(BRANCHES)


def _upload_through_widget(proxy: Path, stored: Path) -> str:
    """What the user does in the notebook: pick the proxy file in the upload widget; returns its status."""
    widget = proxy_upload_widget(stored)
    upload, status = widget.children
    content = proxy.read_bytes()
    upload.value = (
        {
            "name": "x509up_u1000",
            "type": "",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.now(UTC),
        },
    )
    return status.value


def _assert_reads_like_local(location: str, local_arrays, expected_area: str) -> None:
    with physlite.open(location) as file:
        assert f"/{expected_area}/test/" in file.location  # the replica that accepted the credential
        assert file.num_entries == 100
        remote = file.arrays(BRANCHES)
    for name in BRANCHES:
        assert ak.array_equal(remote[name], local_arrays[name]), name


def test_bearer_token_reads_through_rucio_and_token_protected_storage(site, user, r22_path, local_arrays):
    decisions = len(site.validator.decisions)
    stored = store_token(site.user_token())
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    _assert_reads_like_local(f"rucio://test/{r22_path.name}", local_arrays, expected_area="token")
    # the storage asked the validator about every request, and it accepted the token each time
    answers = site.validator.decisions[decisions:]
    assert answers and set(answers) == {200}


@pytest.mark.parametrize("first_token", ["valid", "expired"])
def test_facility_token_from_the_hub_reads_through_rucio(site, user, r22_path, local_arrays, first_token):
    """As inside a user's server: the token comes from the hub; one that has expired (the hub refreshes it on
    request) is fetched again before rucio and the storage see it."""
    lifetime = 600 if first_token == "valid" else -60
    hub = HubUsersAPI("jdoe", [lambda: site.user_token(lifetime=lifetime), lambda: site.user_token()])
    try:
        with pytest.raises(
            CredentialError, match="no access token from the facility: JUPYTERHUB_API_URL is not set"
        ):
            store_facility_token()
        for name, value in hub.environment().items():
            user.setenv(name, value)
        stored = store_facility_token()
        assert stored.read_text().strip() == hub.handed_out[0]
        _assert_reads_like_local(f"rucio://test/{r22_path.name}", local_arrays, expected_area="token")
        assert len(hub.handed_out) == (1 if first_token == "valid" else 2)
        assert stored.read_text().strip() == hub.handed_out[-1]
    finally:
        hub.stop()


def test_uploaded_proxy_reads_through_rucio_and_certificate_protected_storage(
    site, user, tmp_path, r22_path, local_arrays
):
    """The original demo: upload your proxy in the notebook, then read through rucio."""
    assert "Proxy stored" in _upload_through_widget(site.grid.tls_proxy, tmp_path / "x509up_upload")
    assert os.environ["RUCIO_AUTH_TYPE"] == "x509_proxy"
    # rucio found account jdoe by the proxy's DN (the proxy CN stripped); the token-only replica refused the
    # proxy-only user, and the certificate-protected one served the file
    _assert_reads_like_local(f"rucio://test/{r22_path.name}", local_arrays, expected_area="x509")


def test_token_and_proxy_both_work_with_a_did_in_scope_name_form(site, user, tmp_path, r21_path):
    store_proxy(site.grid.tls_proxy.read_bytes(), tmp_path / "x509up_both")
    store_token(site.user_token())  # the last credential stored is the one rucio uses
    with physlite.open(f"test:{r21_path.name}") as file:
        assert "/token/" in file.location
        assert file.num_entries > 0


@pytest.mark.parametrize(
    "kind",
    ["expired", "forged", "wrong audience", "unknown subject"],
)
def test_rucio_refuses_a_bad_token_with_a_clear_error_naming_the_server(site, user, r22_path, kind, capsys):
    from cryptography.hazmat.primitives.asymmetric import rsa

    if kind == "expired":
        token = site.user_token(lifetime=-60)
    elif kind == "forged":
        token = site.user_token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif kind == "wrong audience":
        token = site.user_token(audience=["https://wlcg.cern.ch/jwt/v1/any"])
    else:
        token = site.issuer.issue("nobody-known-to-rucio")
    store_token(token)
    with pytest.raises(AccessDenied) as refused:
        physlite.open(f"rucio://test/{r22_path.name}")
    message = str(refused.value)
    assert message.startswith(f"rucio://test/{r22_path.name}: the rucio server {site.rucio_url} refused")
    assert "refused the bearer token" in message
    assert "HTTP 401" in message
    assert "browser" not in capsys.readouterr().out  # rucio's interactive OIDC login never started


def test_missing_token_is_a_clear_error_before_any_request(site, user, r22_path):
    user.setenv("RUCIO_AUTH_TYPE", "oidc")
    expected = rf"rucio server {site.rucio_url} takes your bearer token .* none was found"
    with pytest.raises(AccessDenied, match=expected):
        physlite.open(f"rucio://test/{r22_path.name}")


def test_rucio_refuses_a_proxy_from_an_untrusted_ca(site, user, tmp_path, r22_path):
    store_proxy(site.grid.stranger_tls_proxy.read_bytes(), tmp_path / "x509up_stranger")
    with pytest.raises(AccessDenied) as refused:
        physlite.open(f"rucio://test/{r22_path.name}")
    message = str(refused.value)
    assert f"the rucio server {site.rucio_url} refused the X509 proxy" in message
    assert "Cannot get DN" in message  # the front end passed no DN: it could not verify the certificate


def test_missing_proxy_is_a_clear_error(site, user, tmp_path, r22_path):
    user.setenv("RUCIO_AUTH_TYPE", "x509_proxy")
    user.setenv("X509_USER_PROXY", str(tmp_path / "never-uploaded"))
    expected = rf"rucio server {site.rucio_url} takes an X509 proxy .* none was found"
    with pytest.raises(AccessDenied, match=expected):
        physlite.open(f"rucio://test/{r22_path.name}")


def _first_bytes(source) -> bytes:
    buffer, offsets = source.fetch(np.array([0]), np.array([4096]))
    return bytes(buffer[offsets[0] : offsets[0] + 4096])


def test_unreachable_rucio_is_not_mistaken_for_a_refused_proxy(site, user, tmp_path, r22_path):
    from servers.common import free_port

    nowhere = f"https://127.0.0.1:{free_port()}"
    config = tmp_path / "rucio.cfg"
    config.write_text(site.client_config("nowhere").read_text().replace(site.rucio_url, nowhere))
    user.setenv("RUCIO_CONFIG", str(config))
    store_proxy(site.grid.tls_proxy.read_bytes(), tmp_path / "x509up_test")
    with pytest.raises(RucioError, match=rf"cannot reach the rucio server {nowhere}"):
        physlite.open(f"rucio://test/{r22_path.name}")


def test_storage_checks_the_token_itself(site, user, r22_path):
    url = f"{site.storage_url}/token/test/{r22_path.name}"
    with open_source(url, token=site.user_token(), metadata_cache=False) as source:
        assert _first_bytes(source) == r22_path.read_bytes()[:4096]
    for token, status in (
        ("", 401),
        (site.user_token(lifetime=-60), 401),
        (site.issuer.issue("jdoe", scope="openid profile"), 403),  # valid, but without storage.read:/
    ):
        decisions = len(site.validator.decisions)
        with pytest.raises(AccessDenied, match=rf"{site.storage_url}/token/.*HTTP {status}"):
            open_source(url, token=token, metadata_cache=False)
        answers = site.validator.decisions[decisions:]
        assert answers and set(answers) == {status}  # the validator, not nginx, decided


def test_storage_checks_the_client_certificate(site, user, r22_path):
    url = f"{site.storage_url}/x509/test/{r22_path.name}"
    with open_source(url, x509_proxy=str(site.grid.tls_proxy), token="", metadata_cache=False) as source:
        assert _first_bytes(source) == r22_path.read_bytes()[:4096]
    for proxy in (None, str(site.grid.stranger_tls_proxy)):
        with pytest.raises(AccessDenied, match=rf"{site.storage_url}/x509/.*HTTP 403"):
            open_source(url, x509_proxy=proxy, token="", metadata_cache=False)


READ_IN_OWN_PROCESS = """
import json, sys
from pathlib import Path
import physlite
from physlite.io import AccessDenied
from physlite.io.credentials import store_proxy
if len(sys.argv) > 2:  # what the upload widget does with the uploaded file
    store_proxy(Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]))
try:
    with physlite.open(sys.argv[1], schemes=["root"]) as file:
        values = file.arrays(["EventInfoAuxDyn.eventNumber"])["EventInfoAuxDyn.eventNumber"].tolist()
        print(json.dumps({"location": file.location, "values": values}))
except AccessDenied as error:
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(3)
"""


@pytest.fixture(scope="module")
def xrootd_token_disk(site, r22_path):
    """RSE XROOTD_TOKEN_DISK: XRootD that takes the site issuer's tokens (servers.xrootd_token)."""
    server = xrootd_token.start_xrootd_token({f"test/{r22_path.name}": r22_path}, site.issuer, site.grid)
    site.add_rse("XROOTD_TOKEN_DISK", "root", server.root_port, "//", [r22_path])
    yield server
    server.stop()


@pytest.mark.parametrize("scope", ["openid profile storage.read:/", "openid profile"])
def test_bearer_token_reads_root_replica_through_rucio(
    site, xrootd_token_disk, r22_path, local_arrays, scope
):
    """The same token for rucio and XRootD (in a process of its own: the XRootD client keeps its first
    credential for the life of the process); without storage.read rucio answers and XRootD refuses."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BEARER_TOKEN", "X509", "RUCIO"))}
    environment.update(
        RUCIO_CONFIG=str(site.client_config(f"xrootd-{len(scope)}", "oidc")),
        BEARER_TOKEN=site.user_token(scope=scope),
        X509_CERT_DIR=str(site.ca_dir),  # the rucio server's certificate and the CA of XRootD's
    )
    did = f"rucio://test/{r22_path.name}"
    done = subprocess.run(
        [sys.executable, "-c", READ_IN_OWN_PROCESS, did],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "storage.read:/" in scope:
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        assert result["location"] == xrootd_token_disk.url(f"test/{r22_path.name}")
        assert result["values"] == local_arrays["EventInfoAuxDyn.eventNumber"].tolist()
    else:
        assert done.returncode == 3, done.stderr[-2000:]
        assert (
            f"AccessDenied: {did}: every replica refused the credentials: XROOTD_TOKEN_DISK: " in done.stderr
        )
        assert "permission denied" in done.stderr


@pytest.fixture(scope="module")
def xrootd_gsi_disk(site, r22_path):
    """RSEs XROOTD_GSI_DISK (root://) and XROOTD_GSI_HTTPS (https://, XrdHttp): XRootD that takes proxies of
    the test CA (servers.xrootd_gsi)."""
    server = xrootd_gsi.start_xrootd_gsi({f"test/{r22_path.name}": r22_path}, site.grid)
    site.add_rse("XROOTD_GSI_DISK", "root", server.root_port, "//", [r22_path])
    site.add_rse("XROOTD_GSI_HTTPS", "https", server.http_port, "/", [r22_path])
    yield server
    server.stop()


@pytest.mark.parametrize("whose", ["user", "stranger"])
def test_uploaded_real_proxy_reads_root_replica_through_rucio(
    site, xrootd_gsi_disk, xrootd_token_disk, r22_path, local_arrays, tmp_path, whose
):
    """The original demo with a real RFC 3820 proxy: upload, rucio (its entry that verifies proxies, as mod_ssl
    does at grid sites) finds the account by the proxy's DN, XRootD's GSI reads the replica with it."""
    proxy = site.grid.proxy if whose == "user" else site.grid.stranger_proxy
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BEARER_TOKEN", "X509", "RUCIO"))}
    environment.update(
        RUCIO_CONFIG=str(site.client_config(f"grid-{whose}", grid=True)),
        XDG_RUNTIME_DIR=str(tmp_path),  # no token of anyone's
        **xrootd_gsi.client_environment(site.grid, None),
    )
    did = f"rucio://test/{r22_path.name}"
    done = subprocess.run(
        [sys.executable, "-c", READ_IN_OWN_PROCESS, did, str(proxy), str(tmp_path / "x509up_uploaded")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if whose == "user":
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        # the token replica refused the proxy-only user; the GSI one served the file
        assert result["location"] == xrootd_gsi_disk.url(f"test/{r22_path.name}")
        assert result["values"] == local_arrays["EventInfoAuxDyn.eventNumber"].tolist()
    else:
        assert done.returncode == 3, done.stderr[-2000:]
        assert (
            f"AccessDenied: {did}: the rucio server {site.rucio_grid_url} refused the X509 proxy"
            in done.stderr
        )


def test_uploaded_real_proxy_reads_https_replica_through_rucio(
    site, user, xrootd_gsi_disk, tmp_path, r22_path, local_arrays
):
    """The demo over https in the notebook's own process: the real proxy is refused by nginx's two replicas
    (no token; a proxy nginx cannot verify) and read from XrdHttp, which verifies it."""
    user.setenv("RUCIO_CONFIG", str(site.client_config(tmp_path.name + "-grid", grid=True)))
    user.setenv("X509_CERT_DIR", str(site.ca_dir))
    assert "Proxy stored" in _upload_through_widget(site.grid.proxy, tmp_path / "x509up_upload")
    with physlite.open(f"rucio://test/{r22_path.name}", schemes=["https"]) as file:
        assert file.location == xrootd_gsi.https_url(xrootd_gsi_disk, f"test/{r22_path.name}")
        remote = file.arrays(BRANCHES)
    for name in BRANCHES:
        assert ak.array_equal(remote[name], local_arrays[name]), name
