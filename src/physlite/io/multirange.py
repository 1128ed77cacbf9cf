"""HTTP multi-range requests (`Range: bytes=a-b,c-d,...`, answered as multipart/byteranges): many scattered
baskets per request, as XRootD's vector reads do. nginx and XrdHttp support them; object stores (S3, GCS) do not,
which the caller detects and then falls back to one range per request.

Example:
    >>> groups = group_requests([(0, 10, 0), (100, 110, 10)], parts=1)
    >>> range_header(groups[0])
    'bytes=0-9,100-109'
"""

from __future__ import annotations

import re

MAX_HEADER = 6000  # bytes of Range header per request (nginx refuses header lines beyond 8 KiB by default)

Request = tuple[int, int, int]  # start, stop, offset in the output buffer
_CONTENT_RANGE = re.compile(rb"content-range:\s*bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def range_header(group: list[Request]) -> str:
    return "bytes=" + ",".join(f"{start}-{stop - 1}" for start, stop, _ in group)


def group_requests(requests: list[Request], parts: int) -> list[list[Request]]:
    """Cut the (sorted) requests into about `parts` groups of equal bytes, each within MAX_HEADER."""
    total = sum(stop - start for start, stop, _ in requests)
    per_group = max(1, -(-total // max(1, parts)))
    groups: list[list[Request]] = []
    group: list[Request] = []
    size = header = 0
    for request in requests:
        length = len(f"{request[0]}-{request[1] - 1},")
        if group and (size >= per_group or header + length > MAX_HEADER):
            groups.append(group)
            group, size, header = [], 0, 0
        group.append(request)
        size += request[1] - request[0]
        header += length
    if group:
        groups.append(group)
    return groups


def boundary_of(content_type: str) -> bytes | None:
    """The multipart boundary of a `multipart/byteranges` Content-Type, else None."""
    if not content_type.lower().startswith("multipart/byteranges"):
        return None
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    return match.group(1).encode() if match else None


class MultipartError(Exception):
    """The multipart body does not match what was asked."""


def read_parts(response, boundary: bytes, group: list[Request], view, filled: set[int]) -> int:
    """Read every part of a multipart/byteranges body into `view` at the offsets of `group`; the starts of the
    requests served are added to `filled` as they complete. Returns the payload bytes read.

    A part may cover several requests (servers may merge neighbouring ranges): it is then split.
    """
    by_start = {start: (stop, offset) for start, stop, offset in group}
    starts = sorted(by_start)
    delimiter, closing = b"--" + boundary, b"--" + boundary + b"--"
    received = 0
    while True:
        line = response.readline(1024)
        if not line:
            raise MultipartError("the multipart body ended before its closing boundary")
        line = line.strip()
        if line == closing:
            return received
        if line != delimiter:
            continue  # preamble or the CRLF after a part
        first = last = None
        while True:
            header = response.readline(4096)
            if not header:
                raise MultipartError("the multipart body ended inside part headers")
            if header in (b"\r\n", b"\n"):
                break
            match = _CONTENT_RANGE.match(header.strip())
            if match:
                first, last = int(match.group(1)), int(match.group(2))
        if first is None:
            raise MultipartError("a part without Content-Range")
        covered = [s for s in starts if first <= s and by_start[s][0] <= last + 1]
        if not covered:
            raise MultipartError(f"a part with bytes {first}-{last}, which were not asked for")
        if len(covered) == 1 and covered[0] == first and by_start[first][0] == last + 1:
            stop, offset = by_start[first]
            _read_exactly(response, view[offset : offset + stop - first])
        else:
            data = bytearray(last - first + 1)
            _read_exactly(response, memoryview(data))
            for start in covered:
                stop, offset = by_start[start]
                view[offset : offset + stop - start] = data[start - first : stop - first]
        received += last - first + 1
        filled.update(covered)


def _read_exactly(response, target) -> None:
    done = 0
    while done < len(target):
        n = response.readinto(target[done:])
        if not n:
            raise MultipartError(f"a part broke off after {done} of {len(target)} bytes")
        done += n
