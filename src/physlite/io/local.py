"""Local files: the whole file memory-mapped, so fetch is zero copy (offsets == starts)."""

from __future__ import annotations

import contextlib
import io
import mmap
import os
from pathlib import Path

import numpy as np

from physlite.io.errors import AccessDenied, NotFound, SourceError
from physlite.io.ranges import validate
from physlite.io.source import BaseSource, Fetched

_PAGE = mmap.PAGESIZE


class LocalSource(BaseSource):
    """A local file, memory-mapped read-only.

    Example:
        >>> with LocalSource("PHYSLITE_example.root") as source:
        ...     buffer, offsets = source.fetch(np.array([0]), np.array([4]))
        ...     bytes(buffer[:4])
        b'root'
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)
        self.location = str(path)
        try:
            with open(self.path, "rb") as file:
                self.size = os.fstat(file.fileno()).st_size
                self._mmap = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        except FileNotFoundError:
            raise NotFound(self.location, "file does not exist") from None
        except IsADirectoryError:
            raise NotFound(self.location, "is a directory, not a file") from None
        except PermissionError:
            raise AccessDenied(self.location, "permission denied") from None
        except OSError as error:
            raise SourceError(self.location, f"cannot open: {error.strerror or error}") from None
        self.buffer = np.frombuffer(self._mmap, dtype=np.uint8) if self._mmap else np.zeros(0, np.uint8)
        self.stats.add(connections=1)

    def fetch(self, starts: np.ndarray, stops: np.ndarray) -> Fetched:
        """The memory map itself and offsets == starts; the kernel is told to read the ranges ahead."""
        starts, stops = validate(starts, stops, self.size, self.location)
        if self._mmap is not None and hasattr(mmap, "MADV_WILLNEED"):
            for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
                if stop > start:
                    aligned = start - start % _PAGE
                    self._mmap.madvise(mmap.MADV_WILLNEED, aligned, stop - aligned)
        self.stats.add(requests=len(starts), bytes=int((stops - starts).sum()))
        return self.buffer, starts

    def file_like(self) -> io.RawIOBase:
        """A plain read-only file object (uproot reads the metadata through it)."""
        return open(self.path, "rb", buffering=0)

    def close(self) -> None:
        super().close()
        self.buffer = np.zeros(0, np.uint8)
        if self._mmap is not None:
            # arrays handed out may still view the map: it is then unmapped when the last one goes
            with contextlib.suppress(BufferError):
                self._mmap.close()
