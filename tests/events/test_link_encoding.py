"""The link position encoding and the records it selects, on hand-made arrays."""

from __future__ import annotations

import awkward as ak
import numpy as np

from physlite.events import links


def test_encode_checks_key_and_range():
    keys = np.array([7, 0, 7, 9, 7], dtype=np.uint32)
    index = np.array([1, 0, 2, 0, 0])
    event_of = np.array([0, 0, 1, 1, 2])
    offsets = np.array([0, 3, 5, 5])  # 3 targets in event 0, 2 in event 1, none in event 2
    got = links.encode(keys, index, event_of, {7: (1, offsets)})
    mask = links.POSITION_MASK
    assert got[0] >> links.SLOT_SHIFT == 1 and got[0] & mask == 1  # event 0, local 1 -> flat 1
    assert got[1] == -1  # empty link
    assert got[2] == -1  # local 2 but event 1 has only 2 targets
    assert got[3] == -1  # key 9 names no collection
    assert got[4] == -1  # event 2 has no targets


def test_select_one_and_several_targets():
    a = ak.to_layout(ak.Array([{"x": 1}, {"x": 2}]))
    b = ak.to_layout(ak.Array([{"x": 10}]))
    tags = np.array([0, 1])
    positions = np.array([1, -1, (1 << links.SLOT_SHIFT) | 0, 0])
    one = ak.Array(links.select(np.array([1, -1, 0]), [a], tags, "U"))
    assert one.x.tolist() == [2, None, 1]
    several = ak.Array(links.select(positions, [a, b], tags, "U"))
    assert several.x.tolist() == [2, None, 10, 1]
