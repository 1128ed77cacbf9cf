"""root:// sources: XRootD vector reads (many ranges per request), several in flight on one connection.

Example:
    >>> source = XRootDSource("root://eos.example.org//eos/atlas/PHYSLITE.root", concurrency=8)
    >>> buffer, offsets = source.fetch(starts, stops)
"""

from __future__ import annotations

import atexit
import os
import threading
import time

import numpy as np

from physlite.io.errors import AccessDenied, NotFound, RemoteError, RemoteTimeout
from physlite.io.ranges import RangePlan
from physlite.io.remote import RemoteSource

MAX_CHUNK = 2 * 1024 * 1024 - 16  # the protocol's largest element of a vector read
MAX_CHUNKS = 1024  # elements per vector read
BATCH_BYTES = 16 * 1024 * 1024  # bytes per vector read, so that big fetches use several in parallel
_NOT_FOUND, _NOT_AUTHORIZED = 3011, 3010
_AUTH_FAILED = 204  # XrdCl errAuthFailed: the login was refused (no credential, or one the server rejects)
_BACKOFF = 0.25
_configured = threading.Lock()


def _client():
    try:
        from XRootD import client
    except ImportError as error:  # pragma: no cover - the remote group is part of the lock
        raise RemoteError(
            "root://", f"the XRootD Python bindings are missing ({error}); install the 'remote' group"
        ) from None
    return client


class _Retry(Exception):
    def __init__(self, reason: str, timeout: bool) -> None:
        super().__init__(reason)
        self.timeout = timeout


class XRootDSource(RemoteSource):
    """A file behind root:// (XRootD, EOS, dCache). Options as for https; `token` is passed as the WLCG bearer
    token (BEARER_TOKEN for the ztn/scitokens security plugins) and `x509_proxy` as X509_USER_PROXY."""

    default_gap = 4 * 1024
    default_max_request = MAX_CHUNK

    def __init__(
        self, url: str, *, token: str | None = None, x509_proxy: str | None = None, **options
    ) -> None:
        options.pop("ca_file", None)
        options.pop("verify", None)
        options.pop("headers", None)
        super().__init__(url, **options)
        self.max_request = min(self.max_request, MAX_CHUNK)
        client = _client()
        with _configured:
            # the client's own connection retries would wait minutes on a dead host: we retry ourselves
            client.EnvPutInt("ConnectionWindow", max(1, int(self.timeout)))
            client.EnvPutInt("ConnectionRetry", 1)
            client.EnvPutInt("RequestTimeout", max(1, int(self.timeout)))
            client.EnvPutInt("StreamTimeout", max(1, int(self.timeout)))
            client.EnvPutInt("TimeoutResolution", 1)  # default 15 s: timeouts would fire that late
        # the XRootD security plugins read the process environment (they do the WLCG discovery themselves):
        # only explicit credentials need to be put there
        if token:
            os.environ["BEARER_TOKEN"] = token
        if x509_proxy:
            os.environ["X509_USER_PROXY"] = x509_proxy
        self._file = client.File()
        self._start("physlite-xrootd")

    # ------------------------------------------------------------------ calls with retries
    def _call(self, what: str, operation):
        attempt = 0
        while True:
            status, response = operation()
            self.stats.add(requests=1)
            if status.ok:
                return response
            if status.errno == _NOT_FOUND:
                raise NotFound(self.location, f"file does not exist ({status.message.strip()})")
            if status.errno == _NOT_AUTHORIZED:
                raise AccessDenied(self.location, f"access denied ({status.message.strip()})")
            if status.code == _AUTH_FAILED:
                raise AccessDenied(
                    self.location,
                    f"login refused ({status.message.strip()}): the server accepted none of the credentials "
                    "offered (X509 proxy: X509_USER_PROXY, CAs in X509_CERT_DIR; token: BEARER_TOKEN[_FILE])",
                )
            expired = "expired" in status.message.lower()
            if attempt >= self.retries or (status.errno and not expired):
                kind = RemoteTimeout if expired else RemoteError
                raise kind(
                    self.location, f"{what} failed: {status.message.strip()} (after {attempt + 1} attempts)"
                )
            attempt += 1
            self.stats.add(retries=1)
            time.sleep(min(8.0, _BACKOFF * 2 ** (attempt - 1)))

    def _open(self) -> tuple[int, str]:
        from XRootD.client.flags import OpenFlags

        def attempt():
            status, response = self._file.open(self.url, OpenFlags.READ, timeout=int(self.timeout))
            if not status.ok and self._file.is_open():
                self._file.close()
            return status, response

        self._call("open", attempt)
        self.stats.add(connections=1, rounds=1)
        info = self._call("stat", lambda: self._file.stat(timeout=int(self.timeout)))
        return int(info.size), str(info.modtime)

    def _vector_read(self, chunks: list[tuple[int, int]]) -> list:
        def attempt():
            return self._file.vector_read(chunks=chunks, timeout=int(self.timeout))

        response = self._call("vector read", attempt)
        got = sorted((c.offset, c.length) for c in response.chunks)
        if got != sorted(chunks):
            raise RemoteError(self.location, "the vector read answered other ranges than asked")
        return response.chunks

    # ------------------------------------------------------------------ RemoteSource
    def _open_and_read(self, ranges, head, tail):
        size, tag = self._open()
        self.size = size
        wanted = (
            [(s, min(e, size)) for s, e in ranges if min(e, size) > s]
            if ranges
            else self._head_tail_ranges(head, tail)
        )
        starts = np.array([s for s, _ in wanted], np.int64)
        stops = np.array([e for _, e in wanted], np.int64)
        buffer, offsets = self._fetch_network(starts, stops)
        segments = [(s, buffer[o : o + e - s]) for (s, e), o in zip(wanted, offsets.tolist(), strict=True)]
        return size, tag, segments

    def _transfer(self, plan: RangePlan, buffer: np.ndarray) -> int:
        requests = list(
            zip(
                plan.request_starts.tolist(),
                plan.request_stops.tolist(),
                plan.request_offsets.tolist(),
                strict=True,
            )
        )
        batches, batch, batch_bytes = [], [], 0
        for start, stop, offset in requests:
            if batch and (len(batch) == MAX_CHUNKS or batch_bytes + stop - start > BATCH_BYTES):
                batches.append(batch)
                batch, batch_bytes = [], 0
            batch.append((start, stop, offset))
            batch_bytes += stop - start
        if batch:
            batches.append(batch)

        def read(batch):
            chunks = self._vector_read([(s, e - s) for s, e, _ in batch])
            where = {s: o for s, _, o in batch}
            for chunk in chunks:
                offset = where[chunk.offset]
                buffer[offset : offset + chunk.length] = np.frombuffer(chunk.buffer, np.uint8)
            self.stats.add(bytes=sum(c.length for c in chunks))

        for future in [self._pool.submit(read, b) for b in batches]:
            future.result()
        return -(-len(batches) // self.concurrency)

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        super().close()
        self._closed = True
        self._pool.shutdown(wait=True)
        if self._file.is_open():
            _close_in_background(self._file)


_closing: set = set()
_closing_lock = threading.Lock()


def _close_in_background(file) -> None:
    """Close an XRootD file without waiting: the answer to a close is a round trip nobody needs (50 ms on a
    far server, a fifth of opening and reading a small file). The file object is kept until the answer comes."""
    with _closing_lock:
        _closing.add(file)

    def closed(*_) -> None:
        with _closing_lock:
            _closing.discard(file)

    if not file.close(timeout=5, callback=closed).ok:
        closed()


@atexit.register
def _wait_for_closes(seconds: float = 2.0) -> None:
    """At exit, give pending closes a moment, so that servers see the files closed rather than dropped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with _closing_lock:
            if not _closing:
                return
        time.sleep(0.01)
