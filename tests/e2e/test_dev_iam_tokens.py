"""The development IAM (af.tools.local's OIDC provider) issues JWT access tokens as ATLAS IAM does: signed with
the key of its JWKS, audience ``rucio``, the granted scopes in ``scope``, also after a refresh; its userinfo
endpoint accepts them (the hub reads the user's claims there) and refuses a forged one. Served over https
(LocalFacility's iam_certificate), a real rucio server that trusts it (servers.secure_site) maps a user's token
to the user's rucio account, and refuses the token of a user without one."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility

CLIENT = "jupyterhub-local"
SCOPE = "openid profile email wlcg.groups offline_access"
FORM_ACTION = re.compile(r'action="([^"]+)"')


def only_the_iam(state: Path, certificate: tuple[Path, Path] | None = None) -> Iterator[LocalFacility]:
    """Only the facility's OIDC provider (https with `certificate`)."""
    facility = LocalFacility(state, ports=Ports.free(), iam_certificate=certificate)
    facility._prepare()
    facility.start_component("oidc")
    try:
        yield facility
    finally:
        facility.stop_component("oidc")


@pytest.fixture(scope="module")
def iam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFacility]:
    yield from only_the_iam(tmp_path_factory.mktemp("iam"))


def verify(iam: LocalFacility) -> str | bool:
    """What `requests` verifies the provider's https with."""
    return str(iam.trusted_cas) if iam.trusted_cas else True


def discovery(iam: LocalFacility) -> dict:
    url = f"{iam.issuer}/.well-known/openid-configuration"
    return requests.get(url, timeout=30, verify=verify(iam)).json()


def tokens(iam: LocalFacility, username: str) -> dict:
    """The token response of the hub's authorization code flow for `username` (the hub is not running: the
    provider's redirect to its callback is read, not followed)."""
    redirect_uri = f"{iam.url}/hub/oauth_callback"
    session = requests.Session()
    form = session.get(
        discovery(iam)["authorization_endpoint"],
        params={"client_id": CLIENT, "redirect_uri": redirect_uri, "response_type": "code", "scope": SCOPE},
        timeout=30,
        verify=verify(iam),
    )
    action = urllib.parse.urljoin(form.url, FORM_ACTION.search(form.text).group(1))
    answer = session.post(
        action,
        data={"username": username, "password": iam.account(username).password},
        allow_redirects=False,
        timeout=30,
        verify=verify(iam),
    )
    while not answer.headers.get("Location", "").startswith(redirect_uri):
        assert answer.status_code in (302, 303), (
            f"{answer.url}: HTTP {answer.status_code} {answer.text[:500]}"
        )
        answer = session.get(
            urllib.parse.urljoin(answer.url, answer.headers["Location"]),
            allow_redirects=False,
            timeout=30,
            verify=verify(iam),
        )
    code = urllib.parse.parse_qs(urllib.parse.urlparse(answer.headers["Location"]).query)["code"][0]
    return token_request(iam, grant_type="authorization_code", code=code, redirect_uri=redirect_uri)


def token_request(iam: LocalFacility, **form: str) -> dict:
    basic = base64.b64encode(f"{CLIENT}:{iam.secrets()['oidc_client_secret']}".encode()).decode()
    response = requests.post(
        discovery(iam)["token_endpoint"],
        data=form,
        headers={"Authorization": f"Basic {basic}"},
        timeout=30,
        verify=verify(iam),
    )
    assert response.status_code == 200, response.text
    return response.json()


def verified(iam: LocalFacility, token: str) -> dict:
    """The claims of `token`, verified as rucio does: signature from the issuer's JWKS, issuer, audience."""
    keys = jwt.PyJWKClient(discovery(iam)["jwks_uri"], ssl_context=iam.ssl_context())
    key = keys.get_signing_key_from_jwt(token).key
    return jwt.decode(token, key, algorithms=["RS256"], audience="rucio", issuer=iam.issuer)


def userinfo(iam: LocalFacility, token: str) -> requests.Response:
    return requests.get(
        discovery(iam)["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=verify(iam),
    )


def test_access_tokens_are_jwts_for_rucio_that_userinfo_accepts(iam):
    answer = tokens(iam, "alice")
    claims = verified(iam, answer["access_token"])
    assert claims["sub"] == "alice" and claims["aud"] == "rucio"
    assert {"openid", "profile", "wlcg.groups"} <= set(claims["scope"].split())
    info = userinfo(iam, answer["access_token"])
    assert info.status_code == 200, info.text
    assert info.json()["preferred_username"] == "alice" and info.json()["wlcg.groups"] == ["/atlas"]

    refreshed = token_request(iam, grant_type="refresh_token", refresh_token=answer["refresh_token"])
    again = verified(iam, refreshed["access_token"])
    assert again["sub"] == "alice" and again["aud"] == "rucio" and again["jti"] != claims["jti"]
    assert set(again["scope"].split()) == set(claims["scope"].split())
    assert userinfo(iam, refreshed["access_token"]).status_code == 200


def test_userinfo_refuses_a_forged_or_expired_token(iam):
    claims = verified(iam, tokens(iam, "bob")["access_token"])
    kid = jwt.get_unverified_header(tokens(iam, "bob")["access_token"])["kid"]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": kid})
    assert userinfo(iam, forged).status_code == 401
    assert userinfo(iam, "not-a-token").status_code == 401


@pytest.fixture(scope="module")
def https_iam_and_rucio(tmp_path_factory, r22_path):
    """The provider over https and a rucio server trusting it (one certificate for both), where alice's IAM
    subject is rucio account alice and bob has no account."""
    from rucio.common.config import clean_cached_config
    from servers.common import self_signed_certificate
    from servers.secure_site import start_secure_site

    run = tmp_path_factory.mktemp("https-iam")
    certificate = self_signed_certificate(run)
    served = run / "served"
    (served / "test").mkdir(parents=True)
    (served / "test" / r22_path.name).symlink_to(r22_path)
    for iam in only_the_iam(run / "state", certificate):
        clean_cached_config()
        site = start_secure_site(
            run / "site", served, [served / "test" / r22_path.name], [iam.issuer], certificate
        )
        try:
            site.add_token_account("alice", "alice", iam.issuer)
            yield iam, site
        finally:
            site.stop()
            clean_cached_config()


def test_rucio_trusting_the_https_iam_maps_alice_and_refuses_bob(https_iam_and_rucio, r22_path):
    from physlite.io.errors import SourceError
    from physlite.io.rucio import list_pfns, token_client

    iam, site = https_iam_and_rucio
    assert iam.issuer.startswith("https://")
    did = f"test:{r22_path.name}"

    def pfns(user: str):
        client = token_client(
            tokens(iam, user)["access_token"], did, rucio_host=site.rucio_url, ca_cert=str(site.cert)
        )
        return list_pfns(did, client, schemes=["https"])

    assert {rse for _, rse in pfns("alice")} == {"SECURE_DISK", "X509_DISK"}
    with pytest.raises(SourceError, match=did):
        pfns("bob")
