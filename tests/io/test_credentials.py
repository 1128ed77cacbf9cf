"""Credentials: WLCG bearer token discovery, X509 proxy discovery, the proxy upload helper (file mode 0600)."""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, datetime

import pytest
from servers.common import openssl_self_signed
from servers.hub_users_api import HubUsersAPI

from physlite.io import CredentialError
from physlite.io.credentials import (
    FACILITY_TOKEN_FILE,
    AccessTokenError,
    bearer_token,
    current_access_token,
    proxy_upload_widget,
    store_facility_token,
    store_proxy,
    store_token,
    token_expiry,
    x509_proxy,
)

NOW = datetime.now(UTC)


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    for variable in (
        "BEARER_TOKEN",
        "BEARER_TOKEN_FILE",
        "XDG_RUNTIME_DIR",
        "X509_USER_PROXY",
        "RUCIO_AUTH_TYPE",
        FACILITY_TOKEN_FILE,
        "JUPYTERHUB_API_URL",
        "JUPYTERHUB_API_TOKEN",
        "JUPYTERHUB_USER",
    ):
        monkeypatch.setenv(variable, "")  # recorded, so that what store_proxy sets is undone afterwards
        monkeypatch.delenv(variable)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    return monkeypatch


@pytest.fixture
def proxy_pem(tmp_path) -> bytes:
    """A certificate and key in one PEM file, like a grid proxy (made with openssl)."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    openssl_self_signed(cert, key, "/CN=jdoe/CN=proxy")
    return cert.read_bytes() + key.read_bytes()


def test_token_discovery_order(clean_environment, tmp_path):
    assert bearer_token() is None
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / f"bt_u{os.geteuid()}").write_text("from-runtime-dir\n")
    assert bearer_token() == "from-runtime-dir"
    token_file = tmp_path / "token"
    token_file.write_text("from-file")
    clean_environment.setenv("BEARER_TOKEN_FILE", str(token_file))
    assert bearer_token() == "from-file"
    clean_environment.setenv("BEARER_TOKEN", "from-variable")
    assert bearer_token() == "from-variable"


def test_store_token_writes_0600_where_discovery_finds_it_and_configures_rucio(clean_environment, tmp_path):
    clean_environment.setenv("BEARER_TOKEN", "an-older-token")
    target = store_token("  eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl\n")
    assert target == tmp_path / "runtime" / f"bt_u{os.geteuid()}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl\n"
    assert "BEARER_TOKEN" not in os.environ  # the stale variable would win over the stored token
    assert "BEARER_TOKEN_FILE" not in os.environ  # found by discovery (the servicex client would send it)
    assert os.environ["RUCIO_AUTH_TYPE"] == "oidc"
    assert bearer_token() == "eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl"
    store_token("a-fresh-token", tmp_path / "elsewhere")
    assert bearer_token() == "a-fresh-token"


@pytest.mark.parametrize("junk", ["", "   ", "two words", "caf\u00e9"])
def test_store_token_refuses_what_is_not_a_token(clean_environment, tmp_path, junk):
    with pytest.raises(CredentialError, match="one word of ASCII"):
        store_token(junk, tmp_path / "bt")
    assert not (tmp_path / "bt").exists()
    assert "RUCIO_AUTH_TYPE" not in os.environ


def _jwt(lifetime: float) -> str:
    import jwt

    return jwt.encode(
        {"sub": "jdoe", "exp": int(time.time() + lifetime)},
        "an HMAC key of 32 bytes or more, not verified here",
        algorithm="HS256",
    )


def test_token_expiry_is_read_from_jwts_only():
    token = _jwt(100)
    assert abs(token_expiry(token) - (time.time() + 100)) < 5
    assert token_expiry("an-opaque-token") is None
    assert token_expiry("not.a.jwt") is None


def test_facility_token_is_fetched_again_when_it_is_about_to_expire(clean_environment):
    hub = HubUsersAPI("jdoe", [lambda: _jwt(30), lambda: _jwt(600)])
    try:
        for name, value in hub.environment().items():
            clean_environment.setenv(name, value)
        stored = store_facility_token()
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert os.environ[FACILITY_TOKEN_FILE] == str(stored)
        assert bearer_token() == hub.handed_out[1]  # 30 s left: fetched again
        assert stored.read_text().strip() == hub.handed_out[1]
        assert bearer_token() == hub.handed_out[1]  # 600 s left: kept
        assert len(hub.handed_out) == 2
        store_token(_jwt(10))  # the user's own token replaces the facility's: never replaced by the hub
        assert FACILITY_TOKEN_FILE not in os.environ
        assert bearer_token() != hub.handed_out[-1] and len(hub.handed_out) == 2
    finally:
        hub.stop()


def test_facility_token_that_cannot_be_fetched_again_is_a_clear_error(clean_environment):
    hub = HubUsersAPI("jdoe", [lambda: _jwt(10)])
    for name, value in hub.environment().items():
        clean_environment.setenv(name, value)
    store_facility_token()
    hub.stop()
    with pytest.raises(CredentialError, match="no access token from the facility: cannot reach the hub"):
        bearer_token()


def test_current_access_token_comes_from_the_hub_and_says_why_not(clean_environment):
    hub = HubUsersAPI("jdoe", [lambda: _jwt(300)])
    try:
        environment = hub.environment()
        assert current_access_token(environment) == hub.handed_out[-1]
        with pytest.raises(AccessTokenError, match=r"/users/jdoe answered HTTP 403"):
            current_access_token({**environment, "JUPYTERHUB_API_TOKEN": "another server's token"})
        without_user = {k: v for k, v in environment.items() if k != "JUPYTERHUB_USER"}
        with pytest.raises(
            CredentialError, match="JUPYTERHUB_USER is not set: not running in a facility server"
        ):
            current_access_token(without_user)
    finally:
        hub.stop()


def test_store_proxy_writes_0600_and_configures_sources_and_rucio(clean_environment, tmp_path, proxy_pem):
    target = store_proxy(proxy_pem, tmp_path / "x509up_test")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == proxy_pem
    assert os.environ["X509_USER_PROXY"] == str(target)
    assert os.environ["RUCIO_AUTH_TYPE"] == "x509_proxy"
    assert x509_proxy() == str(target)


def test_store_proxy_refuses_what_is_not_a_proxy(clean_environment, tmp_path):
    with pytest.raises(CredentialError, match="not an X509 proxy"):
        store_proxy(b"hello", tmp_path / "x509up_test")
    assert not (tmp_path / "x509up_test").exists()


def test_upload_widget_stores_the_uploaded_proxy(clean_environment, tmp_path, proxy_pem):
    widget = proxy_upload_widget(tmp_path / "uploaded")
    upload, status = widget.children
    upload.value = (
        {
            "name": "x509up_u1000",
            "type": "",
            "size": len(proxy_pem),
            "content": memoryview(proxy_pem),
            "last_modified": NOW,
        },
    )
    stored = tmp_path / "uploaded"
    assert stored.read_bytes() == proxy_pem
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "Proxy stored" in status.value
    assert upload.value == ()  # the private key does not stay in the widget (nor in the notebook's state)
    upload.value = (
        {"name": "junk", "type": "", "size": 4, "content": memoryview(b"junk"), "last_modified": NOW},
    )
    assert "Not stored" in status.value


def test_proxy_is_presented_as_client_certificate_to_https(clean_environment, tmp_path, proxy_pem):
    from physlite.io.http import HTTPSource

    path = store_proxy(proxy_pem, tmp_path / "x509up_test")
    context = HTTPSource._tls_context(None, True, str(path))
    assert context is not None
    broken = tmp_path / "broken"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(CredentialError, match="cannot be used as a client certificate"):
        HTTPSource._tls_context(None, True, str(broken))
