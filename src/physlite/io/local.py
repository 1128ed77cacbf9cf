"""Local files: the whole file memory-mapped, so basket reads are zero-copy views of the page cache."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from physlite.errors import FileOpenError


class LocalSource:
    """A file on a local (or mounted) file system.

    Example:
        >>> source = LocalSource("DAOD_PHYSLITE.root")  # doctest: +SKIP
        >>> buffer, offsets = source.fetch(np.array([0]), np.array([4]))  # doctest: +SKIP
        >>> bytes(buffer[offsets[0] : offsets[0] + 4])  # doctest: +SKIP
        b'root'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.location = str(path)
        try:
            self.size = self.path.stat().st_size
            if not self.path.is_file():
                raise FileOpenError(f"cannot open {self.location}: not a regular file")
            self._map = np.memmap(self.path, np.uint8, mode="r") if self.size else np.zeros(0, np.uint8)
        except FileNotFoundError:
            raise FileOpenError(f"cannot open {self.location}: no such file") from None
        except PermissionError:
            raise FileOpenError(f"cannot open {self.location}: permission denied") from None
        except IsADirectoryError:
            raise FileOpenError(f"cannot open {self.location}: is a directory") from None

    def fetch(self, starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bytes [starts[i], stops[i]) are ``buffer[offsets[i]:...]``: here the whole mapped file, offsets = starts."""
        return self._map, np.asarray(starts, np.int64)

    def file_like(self) -> io.BufferedReader:
        """A binary file object for uproot's metadata reads."""
        return self.path.open("rb")

    def close(self) -> None:
        """Drop the memory map (arrays already returned keep their own memory)."""
        self._map = np.zeros(0, np.uint8)
