"""Where the event model gets its branches: the physlite reader, for one file or several read as one.

Example:
    >>> reader = open_source(["a.root", "b.root"])      # doctest: +SKIP
    >>> reader.num_entries, reader.arrays(["EventInfoAuxDyn.eventNumber"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import awkward as ak
import numpy as np

from physlite.errors import PhysliteError

Source = str | os.PathLike[str]


class Reader(Protocol):
    """What the event model needs of a reader (the API of ``physlite.open``)."""

    num_entries: int
    location: str

    def keys(self) -> list[str]: ...

    def event_format_bytes(self) -> bytes | None: ...

    def typename(self, name: str) -> str: ...

    def arrays(
        self, names: Sequence[str], entry_start: int | None = None, entry_stop: int | None = None
    ) -> dict[str, ak.Array]: ...


def open_reader(source: Source, **options: Any) -> Any:
    """Open one file with the physlite reader; `options` go to its source (e.g. ``token``, see
    :func:`physlite.io.open_source`)."""
    import physlite

    opener = getattr(physlite, "open", None)
    if opener is None:
        raise PhysliteError("physlite.open is not available: the reader (physlite.reader) is not installed")
    return opener(os.fspath(source) if isinstance(source, os.PathLike) else source, **options)


def source_list(source: Source | Iterable[Source]) -> list[Source]:
    """One source or many, as a non-empty list; a clear error for an empty one."""
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise PhysliteError("no input files given to physlite.events")
    for item in sources:
        if not isinstance(item, (str, os.PathLike)):
            raise PhysliteError(f"input {item!r} is neither a path nor a URL")
    return sources


class ChainReader:
    """Several readers presented as one sequence of entries (the branches common to all files)."""

    def __init__(self, readers: Sequence[Any], names: Sequence[str]):
        self.readers = list(readers)
        self.names = [str(n) for n in names]
        self.starts = np.cumsum([0] + [r.num_entries for r in self.readers])
        self.num_entries = int(self.starts[-1])
        common = set(self.readers[0].keys())
        for reader in self.readers[1:]:
            common &= set(reader.keys())
        self._keys = [k for k in self.readers[0].keys() if k in common]

    def keys(self) -> list[str]:
        return list(self._keys)

    def typename(self, name: str) -> str:
        return self.readers[0].typename(name)

    @property
    def branches_read(self) -> set[str]:
        read: set[str] = set()
        for reader in self.readers:
            read |= set(getattr(reader, "branches_read", set()))
        return read

    def arrays(self, names, entry_start=None, entry_stop=None) -> dict[str, ak.Array]:
        start = 0 if entry_start is None else entry_start
        stop = self.num_entries if entry_stop is None else entry_stop
        parts: dict[str, list[ak.Array]] = {n: [] for n in names}
        for i, reader in enumerate(self.readers):
            lo, hi = max(start, self.starts[i]), min(stop, self.starts[i + 1])
            if lo >= hi:
                continue
            got = reader.arrays(list(names), int(lo - self.starts[i]), int(hi - self.starts[i]))
            for n in names:
                parts[n].append(got[n])
        return {n: p[0] if len(p) == 1 else ak.concatenate(p) for n, p in parts.items()}

    def close(self) -> None:
        for reader in self.readers:
            close = getattr(reader, "close", None)
            if close is not None:
                close()
