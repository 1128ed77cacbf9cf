"""The Debian XRootD server (servers.xrootd, in its own network namespace) requiring a bearer token: the ztn
security protocol (the token travels over TLS only, so the server requires TLS) and authorization by the
SciTokens plugin (Debian xrootd-scitokens-plugins): signature against the issuer's keys, expiry, issuer,
audience (the WLCG "any" audience) and the `storage.read:/` scope for reads.

The server's network namespace cannot reach the issuer on the host's loopback, so the issuer's JWKS is put
into the SciTokens key cache ($XDG_CACHE_HOME/scitokens/scitokens_cpp.sqllite) exactly as scitokens-cpp stores
what it fetched; everything else is the plugin's own validation.

The client needs the CA folder (X509_CERT_DIR) to verify the server's TLS certificate, and the token by WLCG
discovery (BEARER_TOKEN, ...).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

from servers.grid_proxy import GridCredentials
from servers.token_issuer import WLCG_ANY, TokenIssuer
from servers.xrootd import XRootD, start_xrootd

SECURITY = """
xrd.tls {run}/hostcert.pem {run}/hostkey.pem
xrd.tlsca certdir {run}/certificates
xrootd.tls all
sec.protocol ztn
sec.protbind * only ztn
ofs.authorize 1
ofs.authlib libXrdAccSciTokens.so config={run}/scitokens.cfg
"""

SCITOKENS = """
[Global]
audience = {audience}

[Issuer test]
issuer = {issuer}
base_path = /
"""


def _key_cache(folder: Path, issuer: TokenIssuer) -> Path:
    """scitokens-cpp's key cache with the issuer's JWKS, valid for a day."""
    cache = folder / "scitokens"
    cache.mkdir(parents=True)
    now = int(time.time())
    entry = {"jwks": issuer.jwks(), "next_update": now + 86400, "expires": now + 86400}
    with sqlite3.connect(cache / "scitokens_cpp.sqllite") as database:
        database.execute(
            "CREATE TABLE IF NOT EXISTS keycache (issuer text UNIQUE PRIMARY KEY NOT NULL, keys text NOT NULL)"
        )
        database.execute("INSERT INTO keycache VALUES (?, ?)", (issuer.issuer, json.dumps(entry)))
    return folder


def start_xrootd_token(files: dict[str, Path], issuer: TokenIssuer, grid: GridCredentials) -> XRootD:
    """Serve `files` ({path in the server: file}) to clients with a valid token of `issuer` only."""
    with tempfile.TemporaryDirectory(prefix="physlite-xrootd-token-") as folder:
        staging = Path(folder)
        (staging / "scitokens.cfg").write_text(SCITOKENS.format(audience=WLCG_ANY, issuer=issuer.issuer))
        private = {
            "certificates": grid.ca_dir,
            "hostcert.pem": grid.host_cert,
            "hostkey.pem": grid.host_key,
            "scitokens.cfg": staging / "scitokens.cfg",
            "cache": _key_cache(staging / "cache", issuer),
        }
        return start_xrootd(
            files, security=SECURITY, private=private, environment={"XDG_CACHE_HOME": "{run}/cache"}
        )


def client_environment(grid: GridCredentials, token: str | None) -> dict[str, str]:
    """What a ztn client process needs: the CA folder and the token (empty: none)."""
    return {"X509_CERT_DIR": str(grid.ca_dir), "BEARER_TOKEN": token or ""}
