"""The hub's authenticator: oauthenticator's GenericOAuthenticator with the facility's logout and 403 page.

Configured by `hub_config.auth.configure_auth` (which sets the GenericOAuthenticator section, read by this
subclass too); the two traits below come from the provider's discovery document and the hub's public address.

- logout ends the provider's session too (`hub_config.logout.ProviderLogoutHandler`);
- a user outside ``auth.allowed_groups`` is told which groups are allowed and can sign out
  (`hub_config.forbidden_page.ForbiddenExplainedCallbackHandler`).

Example (jupyterhub_config.py):
    >>> c.JupyterHub.authenticator_class = "hub_config.authenticator.IAMAuthenticator"  # doctest: +SKIP
    >>> c.IAMAuthenticator.end_session_endpoint = "https://iam.example.org/logout"  # doctest: +SKIP
"""

from __future__ import annotations

from oauthenticator.generic import GenericOAuthenticator
from traitlets import Unicode

from hub_config.forbidden_page import ForbiddenExplainedCallbackHandler
from hub_config.logout import ProviderLogoutHandler


class IAMAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose logout also ends the provider's session and whose 403 explains itself."""

    end_session_endpoint = Unicode(
        "",
        help="The provider's end_session_endpoint (from its discovery document); empty: the hub's own logout only.",
    ).tag(config=True)
    post_logout_redirect_url = Unicode(
        "",
        help="Where the provider sends the browser after logout; must be registered for the client at the provider.",
    ).tag(config=True)

    logout_handler = ProviderLogoutHandler
    callback_handler = ForbiddenExplainedCallbackHandler
