"""The development IAM (af.tools.local's OIDC provider) issues JWT access tokens as ATLAS IAM does: signed with
the key of its JWKS, audience ``rucio``, the granted scopes in ``scope``, also after a refresh; its userinfo
endpoint accepts them (the hub reads the user's claims there) and refuses a forged one."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterator

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility

CLIENT = "jupyterhub-local"
SCOPE = "openid profile email wlcg.groups offline_access"
FORM_ACTION = re.compile(r'action="([^"]+)"')


@pytest.fixture(scope="module")
def iam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFacility]:
    """Only the facility's OIDC provider."""
    facility = LocalFacility(tmp_path_factory.mktemp("iam"), ports=Ports.free())
    facility._prepare()
    facility.start_component("oidc")
    try:
        yield facility
    finally:
        facility.stop_component("oidc")


def discovery(iam: LocalFacility) -> dict:
    return requests.get(f"{iam.issuer}/.well-known/openid-configuration", timeout=30).json()


def tokens(iam: LocalFacility, username: str) -> dict:
    """The token response of the hub's authorization code flow for `username` (the hub is not running: the
    provider's redirect to its callback is read, not followed)."""
    redirect_uri = f"{iam.url}/hub/oauth_callback"
    session = requests.Session()
    form = session.get(
        discovery(iam)["authorization_endpoint"],
        params={"client_id": CLIENT, "redirect_uri": redirect_uri, "response_type": "code", "scope": SCOPE},
        timeout=30,
    )
    action = urllib.parse.urljoin(form.url, FORM_ACTION.search(form.text).group(1))
    answer = session.post(
        action,
        data={"username": username, "password": iam.account(username).password},
        allow_redirects=False,
        timeout=30,
    )
    while not answer.headers.get("Location", "").startswith(redirect_uri):
        assert answer.status_code in (302, 303), (
            f"{answer.url}: HTTP {answer.status_code} {answer.text[:500]}"
        )
        answer = session.get(
            urllib.parse.urljoin(answer.url, answer.headers["Location"]), allow_redirects=False, timeout=30
        )
    code = urllib.parse.parse_qs(urllib.parse.urlparse(answer.headers["Location"]).query)["code"][0]
    return token_request(iam, grant_type="authorization_code", code=code, redirect_uri=redirect_uri)


def token_request(iam: LocalFacility, **form: str) -> dict:
    basic = base64.b64encode(f"{CLIENT}:{iam.secrets()['oidc_client_secret']}".encode()).decode()
    response = requests.post(
        discovery(iam)["token_endpoint"], data=form, headers={"Authorization": f"Basic {basic}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def verified(iam: LocalFacility, token: str) -> dict:
    """The claims of `token`, verified as rucio does: signature from the issuer's JWKS, issuer, audience."""
    keys = jwt.PyJWKClient(discovery(iam)["jwks_uri"])
    key = keys.get_signing_key_from_jwt(token).key
    return jwt.decode(token, key, algorithms=["RS256"], audience="rucio", issuer=iam.issuer)


def userinfo(iam: LocalFacility, token: str) -> requests.Response:
    return requests.get(
        discovery(iam)["userinfo_endpoint"], headers={"Authorization": f"Bearer {token}"}, timeout=30
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
