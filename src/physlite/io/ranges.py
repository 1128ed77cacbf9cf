"""Byte-range planning: merge the ranges a reader asks for into few requests laid out in one buffer.

Example:
    >>> import numpy as np
    >>> plan = coalesce(np.array([0, 100, 5000]), np.array([50, 200, 5100]), gap=1000, max_request=1 << 20)
    >>> plan.request_starts.tolist(), plan.request_stops.tolist(), plan.offsets.tolist()
    ([0, 5000], [200, 5100], [0, 100, 200])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RangePlan:
    """Requests [request_starts[j], request_stops[j]) are stored back to back from buffer offset
    request_offsets[j]; the asked range i lives at offsets[i] in that buffer."""

    request_starts: np.ndarray
    request_stops: np.ndarray
    request_offsets: np.ndarray
    offsets: np.ndarray
    total: int

    def __len__(self) -> int:
        return len(self.request_starts)


def validate(
    starts: np.ndarray, stops: np.ndarray, size: int, location: str
) -> tuple[np.ndarray, np.ndarray]:
    """The ranges as int64 arrays, or RangeError naming `location` if any lies outside [0, size)."""
    from physlite.io.errors import RangeError

    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    stops = np.asarray(stops, dtype=np.int64).reshape(-1)
    if starts.shape != stops.shape:
        raise ValueError(f"{len(starts)} starts but {len(stops)} stops")
    if len(starts):
        bad = (starts < 0) | (stops < starts) | (stops > size)
        if bad.any():
            i = int(np.argmax(bad))
            raise RangeError(
                location, f"byte range [{starts[i]}, {stops[i]}) is outside the file of {size} bytes"
            )
    return starts, stops


def coalesce(starts: np.ndarray, stops: np.ndarray, gap: int, max_request: int) -> RangePlan:
    """Merge ranges closer than `gap` bytes (overlaps included), then split merged runs longer than
    `max_request` into pieces so they can travel in parallel. Empty ranges cost nothing."""
    starts = np.asarray(starts, dtype=np.int64)
    stops = np.asarray(stops, dtype=np.int64)
    n = len(starts)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return RangePlan(empty, empty, empty, empty, 0)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], stops[order]
    # a new run begins where the range starts beyond everything before it plus the gap
    reach = np.maximum.accumulate(e)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = s[1:] > reach[:-1] + gap
    run_id = np.cumsum(new_run) - 1
    run_starts = s[new_run]
    run_stops = np.maximum.reduceat(e, np.flatnonzero(new_run))
    run_lengths = run_stops - run_starts
    run_offsets = np.concatenate([[0], np.cumsum(run_lengths)[:-1]]).astype(np.int64)

    offsets = np.empty(n, np.int64)
    offsets[order] = run_offsets[run_id] + (s - run_starts[run_id])

    pieces = np.maximum(1, -(-run_lengths // max_request))
    total_pieces = int(pieces.sum())
    first_piece = np.repeat(np.arange(len(run_starts)), pieces)
    index_in_run = np.arange(total_pieces) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    piece_size = -(-run_lengths // pieces)
    req_starts = run_starts[first_piece] + index_in_run * piece_size[first_piece]
    req_stops = np.minimum(req_starts + piece_size[first_piece], run_stops[first_piece])
    req_offsets = run_offsets[first_piece] + (req_starts - run_starts[first_piece])
    keep = req_stops > req_starts
    return RangePlan(req_starts[keep], req_stops[keep], req_offsets[keep], offsets, int(run_lengths.sum()))
