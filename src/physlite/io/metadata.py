"""The metadata plan: which byte ranges uproot reads to open a file (header, keys, streamers, tree).

Remembered per URL (with the file's size and ETag/mtime, so a changed file is not served stale bytes) and per
folder (the layout of the dataset's next file: the same head and about the same tail), in memory and optionally
as JSON files on disk. Opening a remembered file, or the next file of the dataset, then costs one round of
parallel requests instead of uproot's 4-6 dependent ones.

Example:
    >>> store = PlanStore(directory="~/.cache/physlite/plans")
    >>> store.remember("https://host/data/f1.root", MetadataPlan(size=1000, tag='"abc"', ranges=[(0, 403)]))
    >>> store.exact("https://host/data/f1.root").ranges
    [(0, 403)]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_HEAD = 8 * 1024  # uproot reads the first 403 bytes (header, top directory); the rest is tail
# a PHYSLITE file ends with its tree metadata, streamers and keys: 130-210 KB for the 100-event examples, about
# 450 KB for 50,000 events. Bytes in the first round are not free (a new connection starts slowly: TCP slow start),
# so the guess is modest; a bigger tree costs one more request, which reads up to the tail in one go.
DEFAULT_TAIL = 256 * 1024
TAIL_MARGIN = 1.25  # the next file of a dataset has a few more or fewer baskets: its tail is a bit longer


@dataclass
class MetadataPlan:
    """The byte ranges read to open one file, and the version of the file they were read from."""

    size: int
    tag: str  # ETag, or Last-Modified / mtime when the server has no ETag
    ranges: list[tuple[int, int]] = field(default_factory=list)

    def head_and_tail(self) -> tuple[int, int]:
        """Bytes from the start and from the end that cover the plan (the layout guess for a sibling file)."""
        head = max((stop for start, stop in self.ranges if start < self.size // 2), default=0)
        tail = max((self.size - start for start, stop in self.ranges if start >= self.size // 2), default=0)
        return head, int(tail * TAIL_MARGIN)


def without_query(url: str) -> str:
    """The URL a plan is keyed by: signed-URL query strings change on every request, the file does not."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def folder_of(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0] + "/", "", ""))


class PlanStore:
    """Plans in memory and, when `directory` is given, on disk (one JSON file per URL and per folder)."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else None
        self._plans: dict[str, MetadataPlan] = {}
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def _get(self, key: str) -> MetadataPlan | None:
        with self._lock:
            plan = self._plans.get(key)
        if plan is not None:
            return plan
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            plan = MetadataPlan(int(data["size"]), str(data["tag"]), [tuple(r) for r in data["ranges"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged cache entry is only a missed optimisation
        with self._lock:
            self._plans[key] = plan
        return plan

    def exact(self, url: str) -> MetadataPlan | None:
        """The plan recorded for this very file (to be checked against its size and tag)."""
        return self._get("file " + without_query(url))

    def sibling(self, url: str) -> MetadataPlan | None:
        """The most recent plan of another file in the same folder (a layout guess)."""
        return self._get("folder " + folder_of(url))

    def remember(self, url: str, plan: MetadataPlan) -> None:
        for key in ("file " + without_query(url), "folder " + folder_of(url)):
            with self._lock:
                self._plans[key] = plan
            path = self._path(key)
            if path is not None:
                with contextlib.suppress(OSError):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                    partial.write_text(json.dumps(asdict(plan)))
                    partial.replace(path)

    def forget(self) -> None:
        """Drop the in-memory plans (the disk ones stay)."""
        with self._lock:
            self._plans.clear()


def default_store() -> PlanStore:
    """The process-wide store; on disk under $PHYSLITE_METADATA_CACHE when that is set."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PlanStore(os.environ.get("PHYSLITE_METADATA_CACHE") or None)
    return _DEFAULT


_DEFAULT: PlanStore | None = None
