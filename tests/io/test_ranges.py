"""Coalescing of byte ranges: every asked range is found at its offset, requests respect gap and size."""

from __future__ import annotations

import numpy as np
import pytest

from physlite.io.ranges import coalesce, validate


def _check_layout(data: bytes, starts, stops, plan) -> None:
    buffer = bytearray(plan.total)
    for s, e, o in zip(plan.request_starts, plan.request_stops, plan.request_offsets, strict=True):
        buffer[o : o + e - s] = data[s:e]
    for s, e, o in zip(starts, stops, plan.offsets, strict=True):
        assert bytes(buffer[o : o + e - s]) == data[s:e]


@pytest.mark.parametrize("gap", [0, 10, 1000])
@pytest.mark.parametrize("max_request", [7, 100, 1 << 20])
def test_random_ranges_land_at_their_offsets(gap, max_request):
    rng = np.random.default_rng(gap * 31 + max_request)
    data = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    starts = rng.integers(0, 4900, 200)
    stops = starts + rng.integers(0, 100, 200)
    plan = coalesce(starts, stops, gap=gap, max_request=max_request)
    _check_layout(data, starts, stops, plan)
    lengths = plan.request_stops - plan.request_starts
    assert (lengths > 0).all() and (lengths <= max_request).all()
    # requests never overlap, and runs split only at max_request
    assert (plan.request_starts[1:] >= plan.request_stops[:-1]).all()


def test_gap_merges_neighbours_and_keeps_far_ranges_apart():
    plan = coalesce(np.array([0, 60, 10_000]), np.array([50, 100, 10_010]), gap=10, max_request=1 << 20)
    assert plan.request_starts.tolist() == [0, 10_000]
    assert plan.request_stops.tolist() == [100, 10_010]
    assert plan.offsets.tolist() == [0, 60, 100]


def test_overlapping_and_duplicate_ranges_are_fetched_once():
    plan = coalesce(np.array([10, 10, 15]), np.array([30, 30, 20]), gap=0, max_request=1 << 20)
    assert plan.total == 20 and len(plan) == 1
    assert plan.offsets.tolist() == [0, 0, 5]


def test_validate_rejects_inverted_and_negative_ranges():
    from physlite.io import RangeError

    with pytest.raises(RangeError, match=r"f\.root: byte range"):
        validate(np.array([5]), np.array([4]), 100, "f.root")
    with pytest.raises(RangeError):
        validate(np.array([-1]), np.array([4]), 100, "f.root")
