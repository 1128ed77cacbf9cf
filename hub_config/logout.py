"""Logging out of the hub also ends the identity provider's session (OpenID Connect RP-initiated logout).

Without it the provider's session outlives the hub's: "Sign in" signs the same account in again without a form,
and nobody can switch accounts in one browser. When the provider's discovery document announces an
``end_session_endpoint``, `ProviderLogoutHandler` clears the hub's cookies as usual and then sends the browser
there with the ID token kept in auth_state (``id_token_hint``, when it is still valid), the hub's ``client_id``
and a ``post_logout_redirect_uri`` back to the hub (it must be registered for the client at the provider).
Without an end-session endpoint the hub's own logout is unchanged.

Example:
    >>> end_session_url("https://iam.example.org/logout", "hub", "https://hub.example.org/hub/login")
    'https://iam.example.org/logout?client_id=hub&post_logout_redirect_uri=https%3A%2F%2Fhub.example.org%2Fhub%2Flogin'
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from urllib.parse import urlencode

from oauthenticator.oauth2 import OAuthLogoutHandler


def id_token_usable(id_token: str, now: float | None = None) -> bool:
    """Whether an ID token (a JWT) is not yet expired by its ``exp`` claim: a provider refuses an expired hint.

    The signature is not checked: the hub only hands the token back to the provider that signed it.

    Example:
        >>> id_token_usable("")
        False
    """
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"]) > (time.time() if now is None else now)
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return False


def end_session_url(endpoint: str, client_id: str, post_logout_redirect_uri: str, id_token: str = "") -> str:
    """The provider's end-session URL for this hub; `id_token` is sent as ``id_token_hint`` when usable."""
    params = {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token_usable(id_token):
        params["id_token_hint"] = id_token
    separator = "&" if "?" in endpoint else "?"
    return endpoint + separator + urlencode(params)


class ProviderLogoutHandler(OAuthLogoutHandler):
    """The hub's logout, then a redirect to the provider's ``end_session_endpoint`` (when it has one).

    Reads ``end_session_endpoint``, ``client_id`` and ``post_logout_redirect_url`` from the authenticator
    (`hub_config.authenticator.IAMAuthenticator`).
    """

    id_token = ""

    async def get(self) -> None:
        # The ID token must be read before the hub forgets who is logging out.
        user = self.current_user
        if user is not None:
            auth_state = await user.get_auth_state() or {}
            self.id_token = auth_state.get("id_token") or ""
        await super().get()

    async def render_logout_page(self) -> None:
        authenticator = self.authenticator
        if not authenticator.end_session_endpoint:
            await super().render_logout_page()
            return
        self.redirect(
            end_session_url(
                authenticator.end_session_endpoint,
                authenticator.client_id,
                authenticator.post_logout_redirect_url,
                self.id_token,
            )
        )
