"""A minimal OIDC token issuer for the credential tests, and the token validator of the test storage.

The issuer is a signing key plus the two documents relying parties read: `/.well-known/openid-configuration`
and the JWKS, written to a folder that nginx serves over https (pyoidc, inside the rucio server, accepts only
https issuers). Tokens are WLCG-profile JWT access tokens (RS256, `scope` with `storage.read:/`, audiences
`rucio` and the WLCG "any" audience), as IAM issues them.

The validator is what a storage front end asks before it serves a file (nginx `auth_request`): it checks the
bearer token's signature against the issuer's published JWKS (fetched over https, as a real site would),
its expiry, issuer, audience and the storage.read scope. 200 lets the request through, 401 a missing or
invalid token, 403 a valid token without the scope.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

WLCG_ANY = "https://wlcg.cern.ch/jwt/v1/any"
READ_SCOPE = "storage.read:/"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class TokenIssuer:
    """Signs access tokens as `issuer`; `publish(folder)` writes what nginx serves at the issuer URL."""

    issuer: str
    key: rsa.RSAPrivateKey = field(default_factory=_new_key)
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def jwks(self) -> dict:
        """The issuer's public keys (JWKS)."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def publish(self, folder: Path) -> None:
        (folder / ".well-known").mkdir(parents=True, exist_ok=True)
        (folder / "jwks.json").write_text(json.dumps(self.jwks()))
        (folder / ".well-known" / "openid-configuration").write_text(
            json.dumps(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks.json",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "profile", "storage.read:/", "wlcg.groups"],
                }
            )
        )

    def issue(
        self,
        subject: str,
        scope: str = f"openid profile {READ_SCOPE} wlcg.groups",
        audience: list[str] | None = None,
        lifetime: float = 600,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """A signed access token; `key` signs with another key (a forged token)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience if audience is not None else ["rucio", WLCG_ANY],
            "scope": scope,
            "wlcg.ver": "1.0",
            "wlcg.groups": ["/atlas"],
            "iat": now,
            "nbf": now - 5,
            "exp": int(now + lifetime),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})


class TokenValidator:
    """The storage's token check, an HTTP service on 127.0.0.1 for nginx `auth_request` (a thread)."""

    def __init__(self, issuer: str, ca_file: Path, audience: str = WLCG_ANY):
        self.issuer, self.audience = issuer, audience
        context = ssl.create_default_context(cafile=str(ca_file))
        self.keys = jwt.PyJWKClient(f"{issuer}/jwks.json", ssl_context=context, cache_keys=True)
        self.decisions: list[int] = []
        validator = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = validator.decide(self.headers.get("Authorization", ""))
                validator.decisions.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def decide(self, authorization: str) -> int:
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token:
            return 401
        try:
            key = self.keys.get_signing_key_from_jwt(token).key
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer, leeway=5
            )
        except jwt.PyJWTError:
            return 401
        return 200 if READ_SCOPE in claims.get("scope", "").split() else 403

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
