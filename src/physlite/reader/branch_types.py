"""The C++ type and the decoder layout of a branch, from its metadata record and the file's streamers.

A branch is one of: a plain TBranch with one leaf (numbers, or a counted array of them); a TBranchElement
holding a whole object per entry (``fID == -1``: ``vector<float>``, ``vector<vector<ElementLink<...>>>``, a
fixed struct such as ``xAOD::TrigConfKeys_v1``); or a member of a split object (``fID >= 0``), whose type is the
streamer element's (``fStreamerType`` says which numbers; 300 is an STL member named by the streamer), with
``[]`` appended when the member belongs to a split collection (``fType`` 31/41: a bare array per entry).

Example:
    >>> typename, layout, reason = branch_type(record, streamers)  # doctest: +SKIP
    >>> typename, layout.kind  # doctest: +SKIP
    ('std::vector<float>', <Kind.VECTOR: 'vector'>)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from physlite.decode.layouts import Kind, Layout
from physlite.decode.typenames import DTYPES, layout_of_type, normal_name, parse_type
from physlite.errors import UnsupportedTypeError
from physlite.reader.tree_metadata import BranchRecord

# ROOT's TStreamerInfo codes of the basic types (fStreamerType of a member branch)
STREAMER_BASIC = {
    1: "int8_t",
    2: "int16_t",
    3: "int32_t",
    4: "int64_t",
    5: "float",
    6: "int32_t",
    8: "double",
    11: "uint8_t",
    12: "uint16_t",
    13: "uint32_t",
    14: "uint64_t",
    16: "int64_t",
    17: "uint64_t",
    18: "bool",
}
STREAMER_STL = 300
_SPLIT_COLLECTION_MEMBERS = (31, 41)
_LEAF_TYPES = {
    "TLeafO": "bool",
    "TLeafB": "int8_t",
    "TLeafS": "int16_t",
    "TLeafI": "int32_t",
    "TLeafL": "int64_t",
    "TLeafG": "int64_t",
    "TLeafF": "float",
    "TLeafD": "double",
}


@dataclass(frozen=True)
class StreamerElement:
    """One member of a class as the file's streamer info describes it."""

    name: str
    typename: str
    code: int  # fType: 1-18 basic numbers, 0 a base class, 300/500 STL, ...
    array_length: int
    is_base: bool


Streamers = Callable[[str, int | None], list[StreamerElement] | None]
"""Given a class name and version, its streamer elements (None when the file has no streamer for it)."""


def branch_type(record: BranchRecord, streamers: Streamers) -> tuple[str, Layout | None, str | None]:
    """The type name of ``record``, its layout (None when no kernel decodes it) and why not."""
    if record.cls == "TBranch":
        return _leaf_type(record)
    if record.element_id is None or record.element_id < 0:
        return _object_type(record.class_name, streamers)
    return _member_type(record, streamers)


def declared_type(record: BranchRecord, streamers: Streamers) -> str:
    """The type name as the file declares it: the branch's class, or for a member its streamer element's type."""
    if record.element_id is None or record.element_id < 0:
        return record.class_name
    elements = streamers(record.class_name, record.class_version) or []
    if 0 <= record.element_id < len(elements):
        return elements[record.element_id].typename
    return record.class_name


def _unsupported(typename: str, why: str = "") -> tuple[str, None, str]:
    return typename, None, f"no decoder for type {typename}" + (f" ({why})" if why else "")


def _leaf_type(record: BranchRecord) -> tuple[str, Layout | None, str | None]:
    if len(record.leaves) != 1:
        return _unsupported("unknown", f"leaf-list with {len(record.leaves)} leaves")
    leaf = record.leaves[0]
    base = _LEAF_TYPES.get(leaf.cls)
    if base is None:
        return _unsupported("unknown", f"leaf class {leaf.cls}")
    if leaf.unsigned and base.startswith("int"):
        base = "u" + base
    if leaf.counted:
        return base + "[]", Layout(Kind.VECTOR, DTYPES[base], header=0), None
    if leaf.length != 1:
        return _unsupported(f"{base}[{leaf.length}]", "fixed-size arrays")
    return base, Layout(Kind.FIXED, DTYPES[base]), None


def _object_type(class_name: str, streamers: Streamers) -> tuple[str, Layout | None, str | None]:
    try:
        parsed = parse_type(class_name)
    except UnsupportedTypeError:
        return _unsupported(class_name)
    if parsed.name == "ElementLink":
        return class_name, layout_of_type(parsed), None
    if parsed.name.startswith("std::"):
        try:
            return str(parsed), layout_of_type(parsed), None
        except UnsupportedTypeError as error:
            return str(parsed), None, str(error)
    struct = _fixed_struct(class_name, streamers)
    if struct is None:
        return _unsupported(class_name)
    return class_name, Layout(Kind.FIXED, struct), None


def _fixed_struct(class_name: str, streamers: Streamers) -> np.dtype | None:
    """The record dtype of a class made only of numbers (a struct streamed as fixed-size bytes), else None."""
    elements = streamers(class_name, None)
    if not elements:
        return None
    fields = []
    for element in elements:
        basic = STREAMER_BASIC.get(element.code)
        if element.is_base or basic is None or element.array_length:
            return None
        fields.append((element.name, DTYPES[basic]))
    return np.dtype(fields)


def _member_type(record: BranchRecord, streamers: Streamers) -> tuple[str, Layout | None, str | None]:
    headerless = record.element_type in _SPLIT_COLLECTION_MEMBERS
    code = record.streamer_type
    if code in STREAMER_BASIC:
        base = STREAMER_BASIC[code]
    elif code == STREAMER_STL:
        elements = streamers(record.class_name, record.class_version) or []
        if not 0 <= record.element_id < len(elements):
            return _unsupported(
                "unknown", f"no streamer for member {record.element_id} of {record.class_name}"
            )
        base = normal_name(elements[record.element_id].typename)
    else:
        return _unsupported("unknown", f"member of streamer type {code}")
    typename = base + "[]" if headerless else base
    try:
        return typename, layout_of_type(base, headerless=headerless), None
    except UnsupportedTypeError as error:
        return typename, None, str(error)
