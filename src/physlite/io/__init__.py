"""Sources of bytes: local files (and, through the same interface, remote storage).

A source has a ``location`` (for messages), a ``size``, ``fetch(starts, stops) -> (buffer, offsets)`` for basket
reads, ``file_like()`` for uproot's metadata reads, and ``close()``.
"""

from __future__ import annotations

import os

from physlite.io.local import LocalSource


def open_source(location: str | os.PathLike, **options) -> LocalSource:
    """The source for ``location``: a local path (or ``file://`` URL).

    Example:
        >>> source = open_source("/data/DAOD_PHYSLITE.root")  # doctest: +SKIP
    """
    text = os.fspath(location)
    if isinstance(text, str) and text.startswith("file://"):
        text = text[len("file://") :]
    return LocalSource(text)
