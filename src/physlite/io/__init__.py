"""Where physlite's bytes come from: local files, http(s)://, root:// (XRootD) and rucio DIDs.

Every reader goes through :func:`open_source`, which returns a :class:`Source`: `fetch(starts, stops)` returns
many byte ranges at once (zero copy for local files, coalesced parallel requests for remote ones) and
`file_like()` serves uproot's metadata reads (header, streamers, tree), remembered per file as a metadata plan.

Environment (what a facility sets in the user's server; options of `open_source` override it):
    SSL_CERT_FILE, X509_CERT_DIR   trusted CAs for https (the grid's CA folder works)
    BEARER_TOKEN, BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>
                                   the user's access token (WLCG discovery), sent over https and to XRootD
    X509_USER_PROXY, /tmp/x509up_u<uid>
                                   an X509 proxy (TLS client certificate; see credentials.proxy_upload_widget)
    RUCIO_CONFIG, RUCIO_AUTH_TYPE  the rucio client (`oidc` uses the bearer token, `x509_proxy` the proxy)
    PHYSLITE_METADATA_CACHE        a folder: metadata plans are also kept on disk (default: in memory only)

Example:
    >>> from physlite.io import open_source
    >>> with open_source("https://example.org/data/PHYSLITE_example.root") as source:
    ...     buffer, offsets = source.fetch(np.array([0, 1000]), np.array([4, 1100]))
"""

from __future__ import annotations

import os

from physlite.io.errors import (
    AccessDenied,
    CredentialError,
    InvalidLocation,
    NotFound,
    RangeError,
    RemoteError,
    RemoteTimeout,
    RucioError,
    SourceError,
)
from physlite.io.local import LocalSource
from physlite.io.locations import is_did, is_remote, open_url
from physlite.io.source import BaseSource, Source, SourceStats
from physlite.io.urls import redact

__all__ = [
    "AccessDenied",
    "BaseSource",
    "CredentialError",
    "InvalidLocation",
    "LocalSource",
    "NotFound",
    "RangeError",
    "RemoteError",
    "RemoteTimeout",
    "RucioError",
    "Source",
    "SourceError",
    "SourceStats",
    "is_remote",
    "open_source",
    "redact",
]


def open_source(location: str | os.PathLike, **options) -> Source:
    """Open a local path, file://, http(s)://, root:// URL or rucio DID (`rucio://scope/name`, `scope:name`).

    Options of remote sources: `concurrency` (parallel requests), `timeout` (seconds per network operation),
    `retries`, `token` (bearer token; default: WLCG token discovery), `x509_proxy` (path), `ca_file`,
    `metadata_cache` (folder for metadata plans on disk, or None). rucio: `schemes` (preference order),
    `rse_expression`, `signature_lifetime`, `rucio_client`.

    Example:
        >>> source = open_source("root://eos.example.org//data/PHYSLITE.root", concurrency=16)
        >>> source.size
        1641551
    """
    if is_did(location):
        from physlite.io.rucio import open_did

        return open_did(location, **options)
    return open_url(location, **options)
