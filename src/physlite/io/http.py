"""http(s):// sources: parallel coalesced range GETs over kept-alive connections, with timeouts and retries.

Example:
    >>> source = HTTPSource("https://example.org/PHYSLITE.root", concurrency=16, timeout=20)
    >>> buffer, offsets = source.fetch(starts, stops)
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import ssl
import threading
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import numpy as np

from physlite.io import connections
from physlite.io.credentials import bearer_token
from physlite.io.credentials import x509_proxy as find_x509_proxy
from physlite.io.errors import AccessDenied, NotFound, RangeError, RemoteError, RemoteTimeout
from physlite.io.multirange import (
    MultipartError,
    Request,
    boundary_of,
    group_requests,
    range_header,
    read_parts,
)
from physlite.io.ranges import RangePlan
from physlite.io.remote import RemoteSource
from physlite.io.urls import redact

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_REDIRECT_STATUS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5
_BACKOFF = 0.25  # seconds before the first retry; doubled each time, with jitter, capped at _MAX_BACKOFF
_MAX_BACKOFF = 8.0
_USER_AGENT = "physlite-io/1"
MULTIRANGE_GAP = 4 * 1024
GROUP_BYTES = 2 * 1024 * 1024  # bytes worth a multi-range request (and maybe a connection) of their own


class _Retry(Exception):
    """A failure worth retrying (connection reset, timeout, 5xx, 429, truncated body)."""

    def __init__(self, reason: str, wait: float | None = None, timeout: bool = False) -> None:
        super().__init__(reason)
        self.wait = wait
        self.timeout = timeout


class _Target:
    """Where requests go (after redirects): host, port, path with query, and the TLS context."""

    def __init__(self, url: str, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.context = context
        self.key = f"{self.host}:{self.port}"  # what a server's capabilities are remembered by


class HTTPSource(RemoteSource):
    """A file behind http:// or https:// (nginx, XrdHttp/WebDAV, object stores with signed URLs).

    Options: concurrency (connections, default 8), timeout (seconds per connect/read, default 30), retries
    (default 4), token (bearer; default WLCG discovery, sent over https only), x509_proxy (client certificate),
    ca_file / verify (server certificate), headers (extra request headers), multirange (many ranges per
    request where the server supports it, default True), metadata_cache.
    """

    @property
    def gap(self) -> int:
        """Holes up to this size are read along: small when one request carries many ranges."""
        if self._gap is not None:
            return self._gap
        return MULTIRANGE_GAP if self._multirange_usable() else 64 * 1024

    @gap.setter
    def gap(self, value: int) -> None:
        self._gap = None if value == self.default_gap else value

    def _multirange_usable(self) -> bool:
        target = getattr(self, "_target", None)
        return (
            getattr(self, "multirange", False)
            and target is not None
            and target.key not in _NO_MULTIRANGE_HOSTS
        )

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        x509_proxy: str | None = None,
        ca_file: str | None = None,
        verify: bool = True,
        headers: dict[str, str] | None = None,
        multirange: bool = True,
        **options,
    ) -> None:
        super().__init__(url, **options)
        self.multirange = multirange
        https = url.lower().startswith("https")
        self._headers = {"User-Agent": _USER_AGENT, **(headers or {})}
        token = token if token is not None else (bearer_token() if https else None)
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if x509_proxy is None and not token and https:
            x509_proxy = find_x509_proxy()
        self._context = self._tls_context(ca_file, verify, x509_proxy) if https else None
        self._target = _Target(url, self._context)
        self._target_lock = threading.Lock()
        self._start("physlite-http")

    # ------------------------------------------------------------------ TLS and connections
    @staticmethod
    def _tls_context(ca_file: str | None, verify: bool, proxy: str | None) -> ssl.SSLContext:
        return connections.tls_context(ca_file, verify, proxy)

    def _pool_key(self) -> tuple:
        target = self._target
        return (target.https, target.host, target.port, id(target.context))

    def _new_connection(self) -> http.client.HTTPConnection:
        target = self._target
        self.stats.add(connections=1)
        if target.https:
            return http.client.HTTPSConnection(
                target.host, target.port, timeout=self.timeout, context=target.context
            )
        return http.client.HTTPConnection(target.host, target.port, timeout=self.timeout)

    def _send(self, range_header: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a GET and read the status line, on a kept-alive connection when one is idle. A kept-alive
        connection the server has closed meanwhile is replaced by a new one at once (no retry counted)."""
        headers = {**self._headers, "Range": range_header}
        connection = connections.take(self._pool_key())
        if connection is not None:
            connection.timeout = self.timeout
            if connection.sock is not None:
                connection.sock.settimeout(self.timeout)
            try:
                return self._get_on(connection, headers)
            except TimeoutError:
                raise
            except (http.client.HTTPException, OSError):  # closed by the server while idle
                pass
        return self._get_on(self._new_connection(), headers)

    def _get_on(self, connection: http.client.HTTPConnection, headers: dict[str, str]):
        """GET on `connection` and read the status line; the connection is closed if that fails."""
        try:
            connection.request("GET", self._target.path, headers=headers)
            self.stats.add(requests=1)
            return connection, connection.getresponse()
        except BaseException:
            connection.close()
            raise

    def _release(self, connection: http.client.HTTPConnection, reusable: bool) -> None:
        if reusable:
            connections.give(self._pool_key(), connection)
        else:
            connection.close()

    # ------------------------------------------------------------------ one request, with retries
    def _get_range(
        self, start: int | None, stop: int, out: memoryview | None
    ) -> tuple[int, str, tuple | None]:
        """GET bytes [start, stop) into `out`. Without `out` (a probe, when the size is not known yet) the
        body is returned as (first byte, bytes), shortened at the end of the file; start None asks for the
        last `stop` bytes. Returns (file size, version tag, probe body). Retries what may pass; raises typed
        errors naming the URL."""
        done = 0  # bytes of `out` already received: a retry resumes after them
        attempt = 0
        redirects = 0
        while True:
            try:
                return self._attempt(start, stop, out, done)
            except _Redirect as redirect:
                redirects += 1
                if redirects > _MAX_REDIRECTS:
                    raise RemoteError(self.location, f"more than {_MAX_REDIRECTS} redirects") from None
                self._retarget(redirect.location)
            except _Partial as partial:
                done = partial.done
                if attempt >= self.retries:
                    raise RemoteError(
                        self.location, f"{partial.reason} (after {attempt + 1} attempts)"
                    ) from None
                attempt += 1
                self.stats.add(retries=1)
                time.sleep(self._backoff(attempt, None))
            except _Retry as retry:
                if attempt >= self.retries:
                    kind = RemoteTimeout if retry.timeout else RemoteError
                    raise kind(self.location, f"{retry} (after {attempt + 1} attempts)") from None
                attempt += 1
                self.stats.add(retries=1)
                time.sleep(self._backoff(attempt, retry.wait))

    def _backoff(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, _MAX_BACKOFF)
        return min(_MAX_BACKOFF, _BACKOFF * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def _retarget(self, location: str) -> None:
        with self._target_lock:
            new = urljoin(self._target.url, location)
            if urlsplit(new).scheme not in ("http", "https"):
                raise RemoteError(self.location, f"redirected to an unsupported URL {redact(new)}")
            self._target = _Target(new, self._context if new.startswith("https") else None)

    def _attempt(self, start: int | None, stop: int, out: memoryview | None, done: int):
        range_header = f"bytes=-{stop}" if start is None else f"bytes={start + done}-{stop - 1}"
        connection = None
        reusable = False
        try:
            connection, response = self._send(range_header)
            status = response.status
            if status == 206:
                size, tag, body = self._read_partial(response, start, stop, out, done)
                reusable = not response.will_close
                return size, tag, body
            if status != 200:
                response.read(64 * 1024)  # drain a short error body so the connection can be reused
                reusable = not response.will_close and response.isclosed()
            self._raise_for_status(response, status, suffix=start is None)
            raise AssertionError("unreachable")
        except TimeoutError as error:
            raise _Retry(
                f"no answer within {self.timeout} s ({error or 'timed out'})", timeout=True
            ) from None
        except ssl.SSLCertVerificationError as error:
            raise RemoteError(
                self.location,
                f"TLS certificate verification failed ({error.verify_message}); set ca_file= or SSL_CERT_FILE",
            ) from None
        except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError) as error:
            if isinstance(error, socket.gaierror):
                raise RemoteError(self.location, f"unknown host {self._target.host}") from None
            raise _Retry(f"connection to {self._target.host}:{self._target.port} failed: {error!r}") from None
        finally:
            if connection is not None:
                self._release(connection, reusable)

    def _raise_for_status(self, response: http.client.HTTPResponse, status: int, suffix: bool) -> None:
        reason = f"HTTP {status} {response.reason}"
        if status in _REDIRECT_STATUS and response.getheader("Location"):
            raise _Redirect(response.getheader("Location"))
        if status == 200 and suffix:
            raise _NoSuffix()
        if status == 200:
            raise RemoteError(self.location, "the server ignores Range requests (HTTP 200 instead of 206)")
        if status in (401, 403):
            hint = "" if "Authorization" in self._headers else " (no bearer token was sent)"
            raise AccessDenied(self.location, f"{reason}: access denied{hint}")
        if status in (404, 410):
            raise NotFound(self.location, f"{reason}: file does not exist")
        if status == 416:
            raise RangeError(self.location, f"{reason}: range not satisfiable")
        if status in _RETRY_STATUS:
            raise _Retry(reason, wait=_retry_after(response.getheader("Retry-After")))
        raise RemoteError(self.location, f"unexpected {reason}")

    def _read_partial(self, response, start, stop, out, done):
        match = _CONTENT_RANGE.match(response.getheader("Content-Range") or "")
        if not match or match.group(3) == "*":
            raise RemoteError(self.location, f"bad Content-Range {response.getheader('Content-Range')!r}")
        first, last, size = int(match.group(1)), int(match.group(2)), int(match.group(3))
        tag = response.getheader("ETag") or response.getheader("Last-Modified") or ""
        if out is None:  # a probe: the server says which bytes it sends
            expected_first = first if start is None else start
            if first != expected_first or (start is not None and last != min(stop, size) - 1):
                raise RemoteError(self.location, f"asked for bytes {start}-{stop - 1}, got {first}-{last}")
            try:
                body = response.read(last - first + 1)
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
                raise _Retry(
                    f"transfer broke off: {error!r}", timeout=isinstance(error, TimeoutError)
                ) from None
            if len(body) != last - first + 1:
                raise _Retry(f"truncated body: {len(body)} of {last - first + 1} bytes")
            self.stats.add(bytes=len(body))
            return size, tag, (first, body)
        if first != start + done or last != stop - 1:
            raise RemoteError(self.location, f"asked for bytes {start + done}-{stop - 1}, got {first}-{last}")
        view = out[done:]
        received = 0
        while received < len(view):
            try:
                n = response.readinto(view[received:])
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
                self.stats.add(bytes=received)
                raise _Partial(
                    done + received, f"transfer broke off after {done + received} bytes: {error!r}"
                ) from None
            if n == 0:
                self.stats.add(bytes=received)
                raise _Partial(done + received, f"truncated body: {done + received} of {stop - start} bytes")
            received += n
        self.stats.add(bytes=received)
        return size, tag, None

    # ------------------------------------------------------------------ RemoteSource
    def _open_and_read(self, ranges, head, tail):
        suffix = self._target.key not in _NO_SUFFIX_HOSTS
        jobs = (
            [(s, e) for s, e in ranges if e > s]
            if ranges
            else [(0, head)] + ([(None, tail)] if suffix else [])
        )
        futures = [self._pool.submit(self._get_range, s, e, None) for s, e in jobs]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except _NoSuffix:
                _NO_SUFFIX_HOSTS.add(self._target.key)
        self.stats.add(rounds=1)
        if not ranges and len(results) < 2:  # no suffix ranges here (XrdHttp): the tail needs the size first
            size = results[0][0]
            if size > head:
                results.append(self._get_range(max(head, size - tail), size, None))
                self.stats.add(rounds=1)
        sizes = {r[0] for r in results}
        tags = {r[1] for r in results}
        if len(sizes) != 1 or len(tags) != 1:
            raise RemoteError(self.location, "the file changed while it was being opened")
        segments = [(first, np.frombuffer(body, np.uint8)) for _, _, (first, body) in results]
        return sizes.pop(), tags.pop(), segments

    def _transfer(self, plan: RangePlan, buffer: np.ndarray) -> int:
        view = memoryview(buffer)
        requests = list(
            zip(
                plan.request_starts.tolist(),
                plan.request_stops.tolist(),
                plan.request_offsets.tolist(),
                strict=True,
            )
        )
        rounds = 0
        if len(requests) > 1 and self._multirange_usable():
            # a new connection costs two round trips (TCP, TLS): small reads stay on few connections
            total = sum(stop - start for start, stop, _ in requests)
            groups = group_requests(requests, max(1, min(self.concurrency, total // GROUP_BYTES)))
            leftovers = [
                r for rest in self._gather(self._get_multi, [(g, view) for g in groups]) for r in rest
            ]
            rounds += -(-len(groups) // self.concurrency)
            requests = sorted(leftovers)  # what the server would not send in multi-range answers
        if requests:
            self._gather(self._get_range, [(s, e, view[o : o + e - s]) for s, e, o in requests])
            rounds += -(-len(requests) // self.concurrency)
        return rounds

    def _gather(self, function, calls: list[tuple]) -> list:
        futures = [self._pool.submit(function, *call) for call in calls]
        results, errors = [], []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]
        return results

    def _get_multi(self, group: list[Request], view: memoryview) -> list[Request]:
        """One multi-range GET for `group`, with retries for what is still missing. Returns the requests left
        for single-range GETs (all of them when the server does not do multi-range)."""
        if len(group) == 1:
            return group
        filled: set[int] = set()
        attempt = 0
        while True:
            pending = [r for r in group if r[0] not in filled]
            if not pending:
                return []
            try:
                self._attempt_multi(pending, view, filled)
                continue
            except _NoMultirange:
                _NO_MULTIRANGE_HOSTS.add(self._target.key)
                return [r for r in group if r[0] not in filled]
            except _Retry as retry:
                if attempt >= self.retries:
                    kind = RemoteTimeout if retry.timeout else RemoteError
                    raise kind(self.location, f"{retry} (after {attempt + 1} attempts)") from None
                attempt += 1
                self.stats.add(retries=1)
                time.sleep(self._backoff(attempt, retry.wait))

    def _attempt_multi(self, group: list[Request], view: memoryview, filled: set[int]) -> None:
        connection = None
        reusable = False
        try:
            connection, response = self._send(range_header(group))
            status = response.status
            if status in (200, 400, 416):
                raise _NoMultirange()  # closed unread: a 200 may be the whole (huge) file
            if status != 206:
                response.read(64 * 1024)
                self._raise_for_status(response, status, suffix=False)
            boundary = boundary_of(response.getheader("Content-Type") or "")
            if boundary is None:
                raise _NoMultirange()  # one range only (S3 and GCS answer the first)
            try:
                received = read_parts(response, boundary, group, view, filled)
            except MultipartError as error:
                raise _Retry(f"multi-range answer broke off: {error}") from None
            self.stats.add(bytes=received)
            response.read(1024)  # the epilogue after the closing boundary, so the connection can be reused
            reusable = not response.will_close and response.isclosed()
        except TimeoutError as error:
            raise _Retry(
                f"no answer within {self.timeout} s ({error or 'timed out'})", timeout=True
            ) from None
        except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError) as error:
            raise _Retry(f"connection to {self._target.host}:{self._target.port} failed: {error!r}") from None
        finally:
            if connection is not None:
                self._release(connection, reusable)

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        super().close()
        self._closed = True
        self._pool.shutdown(wait=True)  # idle connections stay in the process pool for the next file


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class _NoMultirange(Exception):
    """The server does not answer multi-range requests with multipart/byteranges."""


_NO_MULTIRANGE_HOSTS: set[str] = set()


class _NoSuffix(Exception):
    """The server answered a suffix range (`bytes=-N`) with the whole file."""


_NO_SUFFIX_HOSTS: set[str] = set()


class _Partial(Exception):
    """The body broke off: `done` bytes arrived and stay; the retry asks for the rest."""

    def __init__(self, done: int, reason: str) -> None:
        super().__init__(reason)
        self.done = done
        self.reason = reason


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
