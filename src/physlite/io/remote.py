"""What every remote source shares: the first round of metadata reads, the metadata file for uproot, fetch.

A subclass (HTTP, XRootD) implements two network operations:
`_open_and_read(ranges, head, tail)` opens the file and reads, in one parallel round, either the given ranges or
the first `head` and last `tail` bytes, returning the file's size and version tag; `_transfer(plan, buffer)`
fills `buffer` with the requests of a :class:`RangePlan`, in parallel.
"""

from __future__ import annotations

import bisect
import io
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from physlite.io.metadata import DEFAULT_HEAD, DEFAULT_TAIL, MetadataPlan, PlanStore, default_store
from physlite.io.ranges import RangePlan, coalesce, validate
from physlite.io.source import BaseSource, Fetched
from physlite.io.urls import redact

READAHEAD = 64 * 1024  # a metadata read that misses the prefetched bytes fetches at least this much
FILL_GAP = 8 * 1024 * 1024  # ... and up to the next prefetched segment when that is this close (the tree key)
SMALL_FETCH = 1 << 20  # fetches up to this size are served from the metadata bytes when they cover them
MIN_SPLIT = 256 * 1024  # requests are not cut smaller than this for the sake of parallelism
BATCH_WINDOW = 0.002  # seconds: prefetches closer together than this are read as one batch


class Segments:
    """Non-overlapping byte segments already in memory, looked up by position."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._data: list[np.ndarray] = []
        self._lock = threading.Lock()

    def add(self, start: int, data: np.ndarray) -> None:
        if len(data) == 0:
            return
        with self._lock:
            i = bisect.bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._data.insert(i, data)

    def next_start(self, position: int) -> int | None:
        """Where the first segment after ``position`` starts, or None."""
        with self._lock:
            i = bisect.bisect_right(self._starts, position)
            return self._starts[i] if i < len(self._starts) else None

    def get(self, start: int, stop: int) -> np.ndarray | None:
        """A view of [start, stop) if one segment holds all of it."""
        with self._lock:
            i = bisect.bisect_right(self._starts, start) - 1
            # segments may overlap (a miss re-reads a neighbour's bytes): look back a few
            for j in range(i, max(i - 4, -1), -1):
                first, data = self._starts[j], self._data[j]
                if first <= start and stop <= first + len(data):
                    return data[start - first : stop - first]
        return None


class MetadataReader(io.RawIOBase):
    """The file as uproot sees it for metadata: reads come from the prefetched segments, misses go to the
    network (and into the plan)."""

    def __init__(self, source: RemoteSource) -> None:
        super().__init__()
        self._source = source
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._source.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, target) -> int:
        view = memoryview(target).cast("B")
        start = min(self._position, self._source.size)
        stop = min(start + len(view), self._source.size)
        if stop > start:
            view[: stop - start] = self._source._metadata_bytes(start, stop)
        self._position = stop
        return stop - start

    def close(self) -> None:
        if not self.closed:
            self._source._save_plan()
        super().close()


class RemoteSource(BaseSource):
    """Base of the network sources: coalesced parallel fetches and the metadata plan."""

    default_gap = 64 * 1024
    default_max_request = 8 * 1024 * 1024

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 8,
        timeout: float = 30.0,
        retries: int = 4,
        gap: int | None = None,
        max_request: int | None = None,
        metadata_cache: PlanStore | str | bool | None = True,
    ) -> None:
        super().__init__()
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.url = url
        self.location = redact(url)
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self._gap: int | None = None
        self.gap = self.default_gap if gap is None else gap
        self.max_request = max_request or self.default_max_request
        if metadata_cache is True:
            self._store: PlanStore | None = default_store()
        elif metadata_cache in (False, None):
            self._store = None
        elif isinstance(metadata_cache, PlanStore):
            self._store = metadata_cache
        else:
            self._store = PlanStore(metadata_cache)
        self._segments = Segments()
        self._batches: queue.SimpleQueue[tuple[np.ndarray, np.ndarray, Future] | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._recorded: list[tuple[int, int]] = []
        self._record_lock = threading.Lock()
        self.size = -1
        self.tag = ""

    # ------------------------------------------------------------------ to implement
    def _open_and_read(
        self, ranges: list[tuple[int, int]] | None, head: int, tail: int
    ) -> tuple[int, str, list[tuple[int, np.ndarray]]]:
        raise NotImplementedError

    def _transfer(self, plan: RangePlan, buffer: np.ndarray) -> int | None:
        """Fill `buffer`; returns the dependent round trips it took (None: one per `concurrency` requests)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ opening
    def _start(self, thread_prefix: str) -> None:
        """Create the request pool and open the file; a failed open releases what was set up."""
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=thread_prefix)
        self._closed = False
        try:
            self._first_round()
        except BaseException:
            self.close()
            raise

    def _first_round(self) -> None:
        """Open the file and read its metadata in one round, guided by the plan of this file or its folder."""
        exact = self._store.exact(self.url) if self._store else None
        sibling = self._store.sibling(self.url) if self._store and exact is None else None
        head, tail = sibling.head_and_tail() if sibling else (DEFAULT_HEAD, DEFAULT_TAIL)
        size, tag, segments = self._open_and_read(exact.ranges if exact else None, head, tail)
        self.size, self.tag = size, tag
        if exact is not None and (exact.size, exact.tag) != (size, tag):
            segments = []  # the file changed since the plan was made: its bytes would be stale
            self._read_segments(self._head_tail_ranges(DEFAULT_HEAD, DEFAULT_TAIL))
        for start, data in segments:
            self._segments.add(start, data)

    def _head_tail_ranges(self, head: int, tail: int) -> list[tuple[int, int]]:
        head = min(head, self.size)
        tail_start = max(head, self.size - tail)
        return [(0, head), (tail_start, self.size)] if tail_start < self.size else [(0, head)]

    def _read_segments(self, ranges: list[tuple[int, int]]) -> None:
        starts = np.array([r[0] for r in ranges], np.int64)
        stops = np.array([r[1] for r in ranges], np.int64)
        buffer, offsets = self._fetch_network(starts, stops)
        for start, stop, offset in zip(starts.tolist(), stops.tolist(), offsets.tolist(), strict=True):
            self._segments.add(start, buffer[offset : offset + stop - start])

    # ------------------------------------------------------------------ metadata
    def file_like(self) -> io.RawIOBase:
        """A read-only file object over the prefetched metadata bytes; misses are read (and planned)."""
        return MetadataReader(self)

    def _metadata_bytes(self, start: int, stop: int) -> np.ndarray:
        with self._record_lock:
            self._recorded.append((start, stop))
        data = self._segments.get(start, stop)
        if data is None:
            # a miss before the prefetched tail is the start of a tree key bigger than the guess: its header,
            # then its body, are read next; one request up to the tail serves both
            following = self._segments.next_start(start)
            end = max(stop, start + READAHEAD)
            if following is not None and stop < following <= start + FILL_GAP:
                end = max(stop, following)
            self._read_segments([(start, min(self.size, end))])
            data = self._segments.get(start, stop)
            assert data is not None
        return data

    def plan(self) -> MetadataPlan:
        """The metadata plan of this file so far: the ranges uproot read, merged."""
        with self._record_lock:
            recorded = sorted(set(self._recorded))
        merged: list[tuple[int, int]] = []
        for start, stop in recorded:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
            else:
                merged.append((start, stop))
        return MetadataPlan(self.size, self.tag, merged)

    def _save_plan(self) -> None:
        if self._store is not None and self._recorded:
            self._store.remember(self.url, self.plan())

    # ------------------------------------------------------------------ bytes
    def fetch(self, starts: np.ndarray, stops: np.ndarray) -> Fetched:
        """Coalesced parallel range requests into one buffer (small reads of metadata bytes come from memory)."""
        starts, stops = validate(starts, stops, self.size, self.location)
        if len(starts) and int((stops - starts).sum()) <= SMALL_FETCH and len(starts) <= 16:
            pieces = [self._segments.get(s, e) for s, e in zip(starts.tolist(), stops.tolist(), strict=True)]
            if all(p is not None for p in pieces):
                offsets = np.concatenate([[0], np.cumsum(stops - starts)[:-1]]).astype(np.int64)
                return np.concatenate(pieces) if pieces else np.zeros(0, np.uint8), offsets
        return self._fetch_network(starts, stops)

    def prefetch(self, starts: np.ndarray, stops: np.ndarray) -> Future[Fetched]:
        """Start reading in the background. Prefetches issued together (within a few milliseconds, e.g. one per
        branch for a whole read) travel together: their ranges are coalesced across calls (a cluster's baskets
        of all branches are neighbours in the file) and every future gets a view of the shared buffer."""
        starts, stops = validate(starts, stops, self.size, self.location)
        future: Future[Fetched] = Future()
        with self._record_lock:
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch, name="physlite-batches", daemon=True
                )
                self._dispatcher.start()
        self._batches.put((starts, stops, future))
        return future

    def _dispatch(self) -> None:
        while True:
            first = self._batches.get()
            if first is None:
                return
            batch, stopping = [first], False
            deadline = time.monotonic() + BATCH_WINDOW
            while True:
                try:
                    item = self._batches.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                deadline = time.monotonic() + BATCH_WINDOW  # wait while the caller is still adding
            self._run_batch(batch)
            if stopping:
                return

    def _run_batch(self, batch: list[tuple[np.ndarray, np.ndarray, Future]]) -> None:
        lengths = [len(starts) for starts, _, _ in batch]
        try:
            buffer, offsets = self._fetch_network(
                np.concatenate([starts for starts, _, _ in batch]),
                np.concatenate([stops for _, stops, _ in batch]),
            )
        except BaseException as error:
            for _, _, future in batch:
                future.set_exception(error)
            return
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for (_, _, future), first, last in zip(batch, bounds[:-1], bounds[1:], strict=True):
            future.set_result((buffer, offsets[first:last]))

    def _fetch_network(self, starts: np.ndarray, stops: np.ndarray) -> Fetched:
        # big fetches are cut into at least `concurrency` requests, so that all connections carry bytes
        wanted = int((stops - starts).sum())
        max_request = min(self.max_request, max(MIN_SPLIT, -(-wanted // self.concurrency)))
        plan = coalesce(starts, stops, self.gap, max_request)
        buffer = np.empty(plan.total, np.uint8)
        if len(plan):
            rounds = self._transfer(plan, buffer)
            self.stats.add(rounds=rounds if rounds is not None else -(-len(plan) // self.concurrency))
        return buffer, plan.offsets

    def close(self) -> None:
        self._save_plan()
        if self._dispatcher is not None:
            self._batches.put(None)
            self._dispatcher.join()
            self._dispatcher = None
        super().close()
