"""The interface every source implements, and what all of them share (statistics, prefetch, pipelining)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Protocol, runtime_checkable

import numpy as np

Fetched = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class Source(Protocol):
    """Random access to the bytes of one file, local or remote.

    Example:
        >>> source = open_source("PHYSLITE_example.root")
        >>> buffer, offsets = source.fetch(np.array([0]), np.array([4]))
        >>> bytes(buffer[offsets[0] : offsets[0] + 4])
        b'root'
    """

    location: str
    size: int

    def fetch(self, starts: np.ndarray, stops: np.ndarray) -> Fetched:
        """Bytes [starts[i], stops[i]) are buffer[offsets[i] : offsets[i] + stops[i] - starts[i]]."""
        ...

    def prefetch(self, starts: np.ndarray, stops: np.ndarray) -> Future[Fetched]:
        """Start `fetch` in the background (while the previous bytes decode); the future returns its result."""
        ...

    def file_like(self) -> io.RawIOBase:
        """A read/seek/tell/readinto view of the file for uproot's metadata reads."""
        ...

    def close(self) -> None: ...


@dataclass
class SourceStats:
    """What a source sent and received: the figures the remote benchmark reports."""

    requests: int = 0  # HTTP requests or XRootD read/readv requests
    connections: int = 0  # TCP connections opened (HTTP) or files opened (XRootD)
    bytes: int = 0  # payload bytes received
    rounds: int = 0  # dependent network round trips the caller waited for
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class BaseSource:
    """Shared behaviour: background prefetch, pipelined iteration, context manager, statistics."""

    location: str
    size: int

    def __init__(self) -> None:
        self.stats = SourceStats()
        self._background: ThreadPoolExecutor | None = None
        self._background_lock = threading.Lock()

    def fetch(self, starts: np.ndarray, stops: np.ndarray) -> Fetched:
        raise NotImplementedError

    def file_like(self) -> io.RawIOBase:
        raise NotImplementedError

    def prefetch(self, starts: np.ndarray, stops: np.ndarray) -> Future[Fetched]:
        """Run `fetch(starts, stops)` in a background thread; `.result()` gives what fetch returns."""
        with self._background_lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(2, thread_name_prefix="physlite-prefetch")
            return self._background.submit(self.fetch, starts, stops)

    def pipeline(self, groups: Iterable[tuple[np.ndarray, np.ndarray]], depth: int = 2) -> Iterator[Fetched]:
        """Fetch groups of ranges in order, keeping `depth` groups in flight while the caller works on one.

        Example:
            >>> for buffer, offsets in source.pipeline((starts[c], stops[c]) for c in clusters):
            ...     decode(buffer, offsets)
        """
        pending: list[Future[Fetched]] = []
        for starts, stops in groups:
            pending.append(self.prefetch(starts, stops))
            if len(pending) > depth:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()

    def close(self) -> None:
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._background = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location} ({self.size} bytes)>"
