"""Log in to the hub through its OpenID Connect provider with a plain HTTP client (no browser): the same
redirects and login form a browser goes through. Used by the load test and the end-to-end tests.

Example:
    >>> session, response = login("http://127.0.0.1:8000", "alice", "secret")  # doctest: +SKIP
    >>> response.status_code  # doctest: +SKIP
    200
"""

from __future__ import annotations

import re

import requests

FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


class LoginError(RuntimeError):
    """The login flow did not reach the provider's form or the hub."""


def login(
    hub_url: str, username: str, password: str, next_url: str = "/hub/home", timeout: float = 60.0
) -> tuple[requests.Session, requests.Response]:
    """Run the OAuth login of `username` at the hub `hub_url`; return the session (with the hub's cookies)
    and the hub's last response (200 on success, 403 for a user outside the allowed groups)."""
    session = requests.Session()
    form = session.get(f"{hub_url}/hub/oauth_login", params={"next": next_url}, timeout=timeout)
    match = FORM_ACTION.search(form.text)
    if form.status_code != 200 or "/interaction/" not in form.url or not match:
        raise LoginError(
            f"{hub_url}/hub/oauth_login did not lead to a login form (HTTP {form.status_code}, {form.url})"
        )
    action = requests.compat.urljoin(form.url, match.group(1))
    response = session.post(action, data={"username": username, "password": password}, timeout=timeout)
    return session, response
