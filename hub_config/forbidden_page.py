"""The page of a user the provider knows but the facility does not allow (HTTP 403 at the OAuth callback).

oauthenticator's 403 says only "not authorized". This one names the groups that are allowed and offers to sign
out of the provider (the hub's logout, which ends the provider's session: `hub_config.logout`), so that another
account can be used in the same browser.

Example:
    >>> "atlas" in forbidden_message_html(["atlas"], "/hub/logout", "ATLAS IAM")
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from oauthenticator.oauth2 import OAuthCallbackHandler
from tornado import web


def forbidden_message(allowed_groups: Iterable[str], login_service: str) -> str:
    """The reason in plain text (logs, clients that do not read HTML)."""
    groups = ", ".join(sorted(allowed_groups)) or "(none configured)"
    return (
        f"Your {login_service} account is not in a group allowed on this facility. Allowed groups: {groups}. "
        f"Sign out of {login_service} to sign in with another account."
    )


def forbidden_message_html(allowed_groups: Iterable[str], logout_url: str, login_service: str) -> str:
    """The reason and a sign-out button, for the hub's error page (inline: it is shown inside a paragraph)."""
    groups = ", ".join(f"<code>{escape(group)}</code>" for group in sorted(allowed_groups))
    service = escape(login_service)
    return (
        f"Your {service} account is not in a group allowed on this facility. Allowed groups: "
        f'<span id="allowed-groups">{groups or "(none configured)"}</span>.<br>'
        f'<a id="forbidden-logout" class="btn btn-primary" href="{escape(logout_url)}">'
        f"Sign out of {service}</a> to sign in with another account."
    )


class ForbiddenExplainedCallbackHandler(OAuthCallbackHandler):
    """oauthenticator's callback handler whose 403 explains itself (allowed groups, sign-out button)."""

    async def get(self) -> None:
        try:
            await super().get()
        except web.HTTPError as err:
            if err.status_code != 403:
                raise
            authenticator = self.authenticator
            groups = authenticator.allowed_groups
            text = forbidden_message(groups, authenticator.login_service)
            # The reason is the page's title; oauthenticator's would repeat its generic message there.
            forbidden = web.HTTPError(403, text, reason="Forbidden")
            forbidden.jupyterhub_message = text
            forbidden.jupyterhub_html_message = forbidden_message_html(
                groups, self.settings["logout_url"], authenticator.login_service
            )
            raise forbidden from None
