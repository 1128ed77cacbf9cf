"""Login through an OpenID Connect provider (ATLAS IAM, or the development provider locally).

GenericOAuthenticator (as `hub_config.authenticator.IAMAuthenticator`) with: endpoints read from the issuer's
discovery document, groups taken from both the `groups` and `wlcg.groups` claims with the leading ``/`` removed
(IAM sends ``/atlas`` in `wlcg.groups`), `allowed_groups`/`admin_groups` from the settings, tokens kept in
encrypted auth_state and refreshed; logout ends the provider's session when it announces an
``end_session_endpoint`` (the provider must allow `post_logout_url` for the client), and a user outside the
allowed groups is told which groups are allowed.

Example:
    >>> groups_from_claims({"groups": ["atlas"], "wlcg.groups": ["/atlas", "/atlas/higgs"]})
    ['atlas', 'atlas/higgs']
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from hub_config.settings import SettingsError
from hub_config.settings_schema import AuthSettings, Settings

GROUP_CLAIMS = ("groups", "wlcg.groups")
DISCOVERY_PATH = "/.well-known/openid-configuration"


def groups_from_claims(claims: Mapping[str, Any]) -> list[str]:
    """Sorted group names from the `groups` and `wlcg.groups` claims, leading ``/`` removed."""
    found: set[str] = set()
    for claim in GROUP_CLAIMS:
        value = claims.get(claim) or []
        if isinstance(value, str):
            value = [value]
        for group in value:
            if isinstance(group, str) and group.strip("/"):
                found.add(group.strip().lstrip("/").rstrip("/"))
    return sorted(found)


def groups_from_auth_state(auth_state: Mapping[str, Any]) -> list[str]:
    """Groups of a user from oauthenticator's auth_state (userinfo response under ``oauth_user``)."""
    return groups_from_claims(auth_state.get("oauth_user") or {})


def discover_endpoints(issuer: str, timeout: float = 10.0) -> dict[str, str]:
    """Authorization, token and userinfo endpoints from the issuer's discovery document.

    Example:
        >>> discover_endpoints("https://atlas-auth.cern.ch/")["token_endpoint"]  # doctest: +SKIP
        'https://atlas-auth.cern.ch/token'
    """
    url = issuer.rstrip("/") + DISCOVERY_PATH
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise SettingsError(f"auth.issuer: cannot read the OIDC discovery document {url}: {err}") from None
    missing = [
        k for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint") if k not in document
    ]
    if missing:
        raise SettingsError(f"auth.issuer: discovery document {url} lacks {', '.join(missing)}")
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise SettingsError(
            f"auth.issuer: {issuer!r} differs from the issuer {document.get('issuer')!r} announced by {url}"
        )
    return document


def post_logout_url(settings: Settings) -> str:
    """Where the provider sends the browser back after logout: the hub's login page, beside the callback.

    Example:
        >>> post_logout_url(Settings(platform="local", auth={"client_id": "hub"},
        ...                          hub={"public_url": "https://af.example.org"}))
        'https://af.example.org/hub/login'
    """
    return urllib.parse.urljoin(settings.callback_url, "login")


def client_secret(auth: AuthSettings, environ: Mapping[str, str] = os.environ) -> str:
    """The OIDC client secret from the environment variable named by ``auth.client_secret_env``."""
    name = auth.client_secret_env
    secret = environ.get(name, "")
    if not secret:
        raise SettingsError(f"auth.client_secret_env: environment variable {name} is not set or empty")
    return secret


def _names(groups: Iterable[str]) -> set[str]:
    return {g.lstrip("/") for g in groups}


def configure_auth(c: Any, settings: Settings, discovery: Mapping[str, str] | None = None) -> None:
    """Set up the hub's authenticator (IAMAuthenticator, a GenericOAuthenticator) on the traitlets config `c` from
    ``settings.auth``."""
    auth = settings.auth
    endpoints = discovery or discover_endpoints(auth.issuer)
    c.JupyterHub.authenticator_class = "hub_config.authenticator.IAMAuthenticator"
    c.IAMAuthenticator.end_session_endpoint = endpoints.get("end_session_endpoint", "")
    c.IAMAuthenticator.post_logout_redirect_url = post_logout_url(settings)
    generic = c.GenericOAuthenticator
    generic.client_id = auth.client_id
    generic.client_secret = client_secret(auth)
    generic.oauth_callback_url = settings.callback_url
    generic.authorize_url = endpoints["authorization_endpoint"]
    generic.token_url = endpoints["token_endpoint"]
    generic.userdata_url = endpoints["userinfo_endpoint"]
    generic.scope = list(auth.scopes)
    generic.username_claim = auth.username_claim
    generic.basic_auth = True
    # urllib (discover_endpoints) reads $SSL_CERT_FILE itself, tornado's curl client does not: an IAM whose CA is
    # not the system's (the local facility's https development IAM) is trusted through it for every request
    if os.environ.get("SSL_CERT_FILE"):
        generic.http_request_kwargs = {"ca_certs": os.environ["SSL_CERT_FILE"]}
    generic.login_service = "ATLAS IAM"
    generic.manage_groups = True
    generic.auth_state_groups_key = groups_from_auth_state
    generic.allowed_groups = _names(auth.allowed_groups)
    generic.admin_groups = _names(auth.admin_groups)
    generic.enable_auth_state = True
    generic.refresh_pre_spawn = True
    generic.auth_refresh_age = int(auth.refresh_age)
    # JUPYTERHUB_CRYPT_KEY must be set (Kubernetes: the chart's hub secret; locally: the state folder).
    if not os.environ.get("JUPYTERHUB_CRYPT_KEY"):
        raise SettingsError("auth: JUPYTERHUB_CRYPT_KEY must be set to keep tokens in encrypted auth_state")
