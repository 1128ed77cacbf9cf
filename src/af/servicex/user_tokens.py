"""Each user's current IAM access token, which the service presents to rucio and storage for that user's DIDs.

At ``/token/refresh`` the `servicex` client sends the hub token of its ``servicex.yaml`` (the user's server's
own token). With that same token the service asks the hub for the user's auth_state (``GET <api>/users/<name>``,
physlite's `current_access_token`, as a user's server does): the facility's server role may read its owner's
auth_state, the service's own role may not read anyone's. The IAM token is kept in this process's memory only:
never in the database, a log line, a URL, an S3 object or a dask key. The service's access token given back to
the client ends `margin` seconds before the IAM token (`until`), so the client refreshes (and the service reads
the hub's newer IAM token) before the one held here goes stale. A user whose auth_state holds no token (a hub
without auth_state, a user API token without the scope) can use file lists, not DIDs: `token` says why.

Example:
    >>> tokens = UserTokens("http://127.0.0.1:8081/hub/api")
    >>> until = await tokens.refresh("alice", hub_token)  # doctest: +SKIP
    >>> tokens.token("alice")  # doctest: +SKIP
    'eyJ...'
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from physlite.io.credentials import AccessTokenError, current_access_token, token_expiry

SHORTEST = 90.0  # seconds: the client renews an access token with less than 60 s left


class NoUserToken(Exception):
    """The service holds no usable IAM access token of the user; the text says why (never a token)."""


@dataclass
class UserTokens:
    """IAM access tokens by user, read from the hub at `api_url` with each user's own hub token."""

    api_url: str
    margin: float = 120.0  # seconds between the service's access token's end and the IAM token's
    timeout: float = 15.0
    _tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict, repr=False)
    _why_not: dict[str, str] = field(default_factory=dict)

    async def refresh(self, user: str, hub_token: str) -> float | None:
        """Read `user`'s IAM token from the hub with `hub_token`; the time (epoch seconds) the service's access
        token must end by, or None when no IAM token bounds it (none held, or not a JWT)."""
        environ = {
            "JUPYTERHUB_API_URL": self.api_url,
            "JUPYTERHUB_API_TOKEN": hub_token,
            "JUPYTERHUB_USER": user,
        }
        try:
            token = await asyncio.to_thread(current_access_token, environ, self.timeout)
        except AccessTokenError as error:
            self._forget(user, f"the hub gave the service no IAM access token of {user!r} ({error})")
            return None
        expiry, now = token_expiry(token), time.time()
        if expiry is not None and expiry - self.margin < now + SHORTEST:
            self._forget(user, f"the IAM access token the hub holds for {user!r} has expired or expires within "
                               f"{self.margin + SHORTEST:.0f} s: log in to the facility again")  # fmt: skip
            return now + SHORTEST  # come back soon: the hub may have a new one by then
        self._tokens[user] = (token, expiry)
        self._why_not.pop(user, None)
        return None if expiry is None else expiry - self.margin

    def _forget(self, user: str, reason: str) -> None:
        self._tokens.pop(user, None)
        self._why_not[user] = reason

    def has(self, user: str) -> bool:
        return user in self._tokens

    def why_not(self, user: str) -> str | None:
        """Why the last refresh of `user` left no token (None: no refresh failed since the process started)."""
        return self._why_not.get(user)

    def token(self, user: str) -> str:
        """`user`'s IAM access token; NoUserToken when none is held or it has expired."""
        held = self._tokens.get(user)
        if held is None:
            raise NoUserToken(
                self._why_not.get(user)
                or f"the service holds no IAM access token of {user!r} (kept in memory only: the service "
                "restarted since the client's last token refresh); run the request again"
            )
        token, expiry = held
        if expiry is not None and expiry < time.time():
            raise NoUserToken(f"the IAM access token of {user!r} expired before the client refreshed it")
        return token
