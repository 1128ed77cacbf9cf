"""The user's *current* IAM access token, from inside their Jupyter server (for data access, ServiceX, rucio).

An environment variable set at spawn time goes stale when the token expires. Instead this asks the hub for the
user's auth_state with the server's own token (the facility's `server` role may read its owner's auth_state);
the hub checks the access token first and refreshes it with the refresh token when it has expired.

Example (in a notebook on the facility):
    >>> from af.access_token import current_access_token
    >>> headers = {"Authorization": f"Bearer {current_access_token()}"}  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping


class AccessTokenError(RuntimeError):
    """The hub could not be asked, or holds no token for this user; the message says which."""


def current_access_token(environ: Mapping[str, str] = os.environ, timeout: float = 30.0) -> str:
    """The user's current OIDC access token, fetched from the hub (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN)."""
    try:
        api_url = environ["JUPYTERHUB_API_URL"].rstrip("/")
        token = environ["JUPYTERHUB_API_TOKEN"]
        user = environ["JUPYTERHUB_USER"]
    except KeyError as missing:
        raise AccessTokenError(f"{missing.args[0]} is not set: not running in a facility server?") from None
    # /users/<name> (not /user) is the endpoint that returns auth_state to a token allowed to read it.
    url = f"{api_url}/users/{urllib.parse.quote(user)}"
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            model = json.load(response)
    except urllib.error.HTTPError as err:
        raise AccessTokenError(f"{url} answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        raise AccessTokenError(f"cannot reach the hub at {api_url}: {err}") from None
    auth_state = model.get("auth_state")
    if not auth_state or not auth_state.get("access_token"):
        raise AccessTokenError(
            f"the hub holds no access token for {model.get('name')!r} (log in through IAM again)"
        )
    return auth_state["access_token"]
