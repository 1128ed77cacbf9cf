"""Flatten an awkward array read from one branch into numpy buffers addressed by their path in the type.

Paths: ``""`` is the outermost node, each list level appends ``.0``, each record field ``.<name>``; a list node
stores ``<path>.offsets`` (starting at 0), a leaf stores ``<path>.data``. The event model's form uses the
same paths, so a branch read once feeds every node of the form that comes from it.

Example:
    >>> import awkward as ak
    >>> buffers = flatten(ak.Array([[1.0, 2.0], [], [3.0]]))
    >>> sorted(buffers), buffers[".offsets"].tolist(), buffers[".0.data"].tolist()
    (['.0.data', '.offsets'], [0, 2, 2, 3], [1.0, 2.0, 3.0])
"""

from __future__ import annotations

import awkward as ak
import numpy as np


def flatten(array: ak.Array) -> dict[str, np.ndarray]:
    """Numpy buffers of ``array`` by path (lists as offsets from 0, records by field, leaves as data)."""
    out: dict[str, np.ndarray] = {}
    _walk(ak.to_layout(array), "", out)
    return out


def _walk(layout: ak.contents.Content, path: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(layout, (ak.contents.ListOffsetArray, ak.contents.ListArray, ak.contents.RegularArray)):
        packed = layout.to_ListOffsetArray64(True)
        offsets = np.asarray(packed.offsets.data, dtype=np.int64)
        if offsets[0] != 0:
            content = packed.content[offsets[0] : offsets[-1]]
            offsets = offsets - offsets[0]
        else:
            content = packed.content[: offsets[-1]]
        out[path + ".offsets"] = offsets
        _walk(content, path + ".0", out)
    elif isinstance(layout, ak.contents.RecordArray):
        for name in layout.fields:
            _walk(layout.content(name), f"{path}.{name}", out)
    elif isinstance(layout, ak.contents.NumpyArray):
        out[path + ".data"] = np.asarray(layout.data)
    elif isinstance(layout, (ak.contents.IndexedArray, ak.contents.IndexedOptionArray)):
        _walk(layout.project(), path, out)
    elif isinstance(
        layout, (ak.contents.UnmaskedArray, ak.contents.ByteMaskedArray, ak.contents.BitMaskedArray)
    ):
        _walk(layout.content[: layout.length], path, out)
    elif isinstance(layout, ak.contents.EmptyArray):
        out[path + ".data"] = np.zeros(0, dtype=np.float64)
    else:
        raise TypeError(f"cannot flatten awkward layout {type(layout).__name__}")
