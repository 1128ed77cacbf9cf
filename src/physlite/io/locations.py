"""What a location names and which source reads it: local paths, file://, http(s)://, root:// and rucio DIDs.

:func:`open_url` opens everything but rucio DIDs (which :mod:`physlite.io.rucio` resolves to URLs and opens with
it); :func:`physlite.io.open_source` puts the two together.

Example:
    >>> is_did("mc20_13TeV:DAOD_PHYSLITE.root"), is_remote("/data/PHYSLITE.root")
    (True, False)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from physlite.io.errors import InvalidLocation
from physlite.io.local import LocalSource
from physlite.io.source import Source
from physlite.io.urls import redact

_DID = re.compile(r"^(?P<scope>[A-Za-z0-9][\w.\-]*):(?P<name>[^/\s][^\s]*)$")
_SCHEMES = {"file", "http", "https", "root", "xroot", "rucio"}
_REMOTE_SCHEMES = {"http", "https", "root", "xroot"}


def is_did(location: str | os.PathLike) -> bool:
    """True for ``rucio://scope/name`` and ``scope:name`` (unless a local file has that name)."""
    if not isinstance(location, str):
        return False
    scheme = urlsplit(location).scheme.lower()
    return scheme == "rucio" or (
        scheme not in _SCHEMES and _DID.match(location) is not None and not Path(location).exists()
    )


def is_remote(location: str | os.PathLike) -> bool:
    """True for http(s)://, root:// and rucio locations, False for local paths and file:// URLs."""
    if isinstance(location, os.PathLike):
        return False
    return urlsplit(location).scheme.lower() in _REMOTE_SCHEMES or is_did(location)


def open_url(location: str | os.PathLike, **options) -> Source:
    """Open a local path, file://, http(s):// or root:// URL (see :func:`physlite.io.open_source` for options).

    Example:
        >>> open_url("https://example.org/data/PHYSLITE_example.root").size  # doctest: +SKIP
        1641551
    """
    if isinstance(location, os.PathLike):
        return LocalSource(location)
    if not isinstance(location, str):
        raise TypeError(f"location must be a path or a URL string, not {type(location).__name__}")
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return LocalSource(unquote(parts.path))
    if scheme in ("http", "https"):
        from physlite.io.http import HTTPSource

        return HTTPSource(location, **options)
    if scheme in ("root", "xroot"):
        from physlite.io.xrootd import XRootDSource

        return XRootDSource(location, **options)
    if scheme and len(scheme) > 1:
        raise InvalidLocation(
            redact(location), f"unsupported scheme {scheme}:// (use a path, file, http, https, root or rucio)"
        )
    return LocalSource(location)
