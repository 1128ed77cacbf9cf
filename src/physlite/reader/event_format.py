"""The raw bytes of a file's EventFormat (``MetaData`` tree, branch ``EventFormat``): which container each
ElementLink hash names, as the file itself records it.

The bytes are read through the file's own source, like the rest of its metadata: for a remote file the ranges
join its metadata plan, so reopening the file (or a dask worker opening it) reads them in the first round.
:mod:`physlite.events.eventformat` parses them.

Example:
    >>> from physlite.io import open_source
    >>> raw = event_format_bytes(open_source("DAOD_PHYSLITE_21.2.108.0.art.pool.root"))  # doctest: +SKIP
    >>> len(raw)  # doctest: +SKIP
    12866
"""

from __future__ import annotations

import uproot

from physlite.errors import CorruptDataError, PhysliteError


def event_format_bytes(source) -> bytes | None:
    """The first entry of ``MetaData/EventFormat`` in the file behind ``source`` (a :mod:`physlite.io` source),
    uncompressed; None when the file has none (derivations written outside Athena, e.g. the r22 example)."""
    try:
        with uproot.open(source.file_like(), object_cache=None, array_cache=None) as file:
            if "MetaData" not in file:
                return None
            tree = file["MetaData"]
            if "EventFormat" not in tree:
                return None
            branch = tree["EventFormat"]
            if branch.num_baskets == 0:
                return None
            return branch.basket(0).data.tobytes()
    except PhysliteError:
        raise
    except Exception as error:
        raise CorruptDataError(f"{source.location}: cannot read MetaData/EventFormat ({error})") from None
