"""ElementLink positions: encoding a link as the position of its target, and turning positions into records.

A resolved link is one int64: ``slot << 40 | position``, where ``slot`` numbers the collections of the schema and
``position`` is the index of the target object in the flat content of that collection (all events of the
range one after the other); -1 means no target (an empty link, a container the file does not hold, an index
beyond the target's size).

Example:
    >>> import numpy as np
    >>> keys = np.array([7, 0, 7], dtype=np.uint32)
    >>> index = np.array([1, 0, 5])
    >>> event_of = np.array([0, 0, 1])
    >>> encode(keys, index, event_of, {7: (2, np.array([0, 3, 5]))}).tolist()  # event 1 has 2 targets: 5 is out
    [2199023255553, -1, -1]
"""

from __future__ import annotations

from collections.abc import Mapping

import awkward as ak
import numpy as np

SLOT_SHIFT = 40
POSITION_MASK = (1 << SLOT_SHIFT) - 1


def encode(
    keys: np.ndarray,
    index: np.ndarray,
    event_of: np.ndarray,
    targets: Mapping[int, tuple[int, np.ndarray]],
) -> np.ndarray:
    """Encoded target positions of links (``keys``, ``index``, event of each link), given for each key that names
    a collection of the file its ``(slot, offsets)``; other keys give -1."""
    result = np.full(len(keys), -1, dtype=np.int64)
    for key, (slot, offsets) in targets.items():
        where = np.nonzero(keys == key)[0]
        events = event_of[where]
        local = index[where].astype(np.int64)
        start = offsets[events]
        inside = local < offsets[events + 1] - start
        result[where[inside]] = (slot << SLOT_SHIFT) | (start[inside] + local[inside])
    return result


def record_names(layout: ak.contents.Content) -> set[str]:
    """The record names (collections) of the records an array holds, through lists, options and unions."""
    if isinstance(layout, ak.contents.RecordArray):
        name = layout.parameter("__record__")
        return {name} if name else set()
    if isinstance(layout, ak.contents.UnionArray):
        return set().union(*(record_names(c) for c in layout.contents))
    if hasattr(layout, "content"):
        return record_names(layout.content)
    return set()


def select_typetracer(positions: ak.contents.NumpyArray, contents: list[ak.contents.Content]):
    """The type of :func:`select`'s result for data-less arrays (dask's meta): one target collection."""
    index = ak.index.Index64(positions.data)
    if not contents:
        return ak.contents.IndexedOptionArray(index, ak.contents.EmptyArray().to_NumpyArray(np.float32))
    return ak.contents.IndexedOptionArray(index, contents[0])


def select(
    positions: np.ndarray, contents: list[ak.contents.Content], tags: np.ndarray, union_name: str
) -> ak.contents.Content:
    """Target records at encoded positions; ``tags[slot]`` is the position of a slot's collection in
    ``contents``. Several targets give a union named ``union_name``."""
    valid = positions >= 0
    if not contents:
        return ak.contents.IndexedOptionArray(
            ak.index.Index64(np.full(len(positions), -1, dtype=np.int64)),
            ak.contents.EmptyArray().to_NumpyArray(np.float32),
        )
    if len(contents) == 1:
        return ak.contents.IndexedOptionArray(
            ak.index.Index64(np.where(valid, positions & POSITION_MASK, -1)), contents[0]
        )
    # awkward puts options inside unions: each target gets an option content with one extra None slot.
    slot_tags = np.where(valid, tags[np.where(valid, positions, 0) >> SLOT_SHIFT], 0)
    union_index = np.zeros(len(positions), dtype=np.int64)
    options = []
    for tag, content in enumerate(contents):
        mine = np.nonzero(valid & (slot_tags == tag))[0]
        union_index[mine] = np.arange(len(mine))
        if tag == 0:
            union_index[~valid] = len(mine)
        local = np.append(positions[mine] & POSITION_MASK, -1)
        options.append(ak.contents.IndexedOptionArray(ak.index.Index64(local), content))
    return ak.contents.UnionArray(
        ak.index.Index8(slot_tags.astype(np.int8)),
        ak.index.Index64(union_index),
        options,
        parameters={"__record__": union_name},
    )
