"""Who is asking: the hub's tokens are exchanged for short-lived access tokens of this service.

The `servicex` client sends the token of its ``servicex.yaml`` to ``/token/refresh`` and uses the access token it
gets back (a JWT: the client reads its ``exp`` to renew it) on every other call. The access token ends before the
user's IAM token that the service read with it (`af.servicex.user_tokens`), so that the client renews both. The refresh token is a JupyterHub
token: the hub's API says whose it is and whether it may use this service (scope
``access:services!service=<name>``), as dask-gateway's JupyterHubAuthenticator checks it. Tokens never appear in a
URL or a log line.

Example:
    >>> signer = AccessTokens(b"k" * 32)
    >>> signer.user(signer.issue("alice"))
    'alice'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class NotAuthenticated(Exception):
    """The request carries no valid token; the text says why (never the token)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class AccessTokens:
    """HS256 JWTs naming a hub user, signed with the service's secret, valid `lifetime` seconds."""

    secret: bytes
    lifetime: float = 3600.0

    def issue(self, user: str, now: float | None = None, until: float | None = None) -> str:
        """A token of `user` valid `lifetime` seconds, or until `until` (epoch seconds) when that is sooner
        (the user's IAM token held by the service ends then, see `af.servicex.user_tokens`)."""
        now = time.time() if now is None else now
        expiry = now + self.lifetime if until is None else min(now + self.lifetime, until)
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = _b64(json.dumps({"sub": user, "iat": int(now), "exp": int(expiry)}).encode())
        signature = hmac.new(self.secret, f"{header}.{claims}".encode(), hashlib.sha256).digest()
        return f"{header}.{claims}.{_b64(signature)}"

    def user(self, token: str, now: float | None = None) -> str:
        """The user a valid, unexpired token names; NotAuthenticated otherwise."""
        try:
            header, claims, signature = token.split(".")
            expected = hmac.new(self.secret, f"{header}.{claims}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                raise NotAuthenticated("access token not issued by this service")
            payload = json.loads(_unb64(claims))
        except (ValueError, json.JSONDecodeError) as error:
            raise NotAuthenticated("malformed access token") from error
        if payload.get("exp", 0) < (time.time() if now is None else now):
            raise NotAuthenticated("access token expired: get a new one from /token/refresh")
        return str(payload["sub"])


@dataclass
class HubTokens:
    """Asks the hub's API whose a token is (``GET <api>/user``) and whether it may use service `service`;
    answers are kept `cache_seconds` (by the token's hash)."""

    api_url: str
    service: str = "servicex"
    cache_seconds: float = 60.0
    _cache: dict[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def access_scopes(self) -> set[str]:
        return {"access:services", f"access:services!service={self.service}"}

    async def user(self, token: str) -> str:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        request = HTTPRequest(
            f"{self.api_url.rstrip('/')}/user",
            headers={"Authorization": f"token {token}"},
            request_timeout=15,
        )
        try:
            answer = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as error:
            if error.code in (401, 403):
                raise NotAuthenticated("the hub does not know this token") from None
            raise NotAuthenticated(f"the hub at {self.api_url} did not answer ({error.code})") from None
        except OSError as error:
            raise NotAuthenticated(f"the hub at {self.api_url} cannot be reached: {error}") from None
        model = json.loads(answer.body)
        if not self.access_scopes & set(model.get("scopes", [])):
            raise NotAuthenticated(
                f"the token of {model.get('name')!r} lacks the scope access:services!service={self.service}"
            )
        if model.get("kind", "user") != "user":
            raise NotAuthenticated("only users' tokens (or their servers') may use ServiceX")
        self._cache[key] = (time.monotonic() + self.cache_seconds, model["name"])
        return model["name"]


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        raise NotAuthenticated("no bearer token (Authorization: Bearer <token>)")
    return token.strip()
