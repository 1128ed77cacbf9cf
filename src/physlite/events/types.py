"""C++ type names of PHYSLITE branches, parsed into a small type model that maps onto awkward forms.

Example:
    >>> parse("std::vector<std::vector<ElementLink<DataVector<xAOD::TruthParticle_v1>>>>")
    List(content=List(content=Link(target='xAOD::TruthParticle')))
    >>> parse("vector<float>")
    List(content=Primitive(dtype='float32'))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PRIMITIVES = {
    "float": "float32",
    "Float_t": "float32",
    "double": "float64",
    "Double_t": "float64",
    "bool": "bool",
    "Bool_t": "bool",
    "char": "int8",
    "Char_t": "int8",
    "signed char": "int8",
    "int8_t": "int8",
    "unsigned char": "uint8",
    "UChar_t": "uint8",
    "uint8_t": "uint8",
    "short": "int16",
    "Short_t": "int16",
    "int16_t": "int16",
    "unsigned short": "uint16",
    "UShort_t": "uint16",
    "uint16_t": "uint16",
    "int": "int32",
    "Int_t": "int32",
    "int32_t": "int32",
    "unsigned int": "uint32",
    "UInt_t": "uint32",
    "uint32_t": "uint32",
    "long": "int64",
    "long long": "int64",
    "Long64_t": "int64",
    "int64_t": "int64",
    "unsigned long": "uint64",
    "unsigned long long": "uint64",
    "ULong64_t": "uint64",
    "uint64_t": "uint64",
}


class UnsupportedType(ValueError):
    """The C++ type has no place in the event model (strings, xAOD objects, unknown templates)."""


@dataclass(frozen=True)
class Primitive:
    dtype: str


@dataclass(frozen=True)
class Link:
    """An ElementLink; ``target`` is the xAOD element class it points to (e.g. ``xAOD::TrackParticle``)."""

    target: str | None


@dataclass(frozen=True)
class List:
    content: Type


Type = Primitive | Link | List


def _strip(name: str) -> str:
    name = re.sub(r"\s+", " ", name.strip())
    name = name.replace("std::", "")
    return name


def parse(typename: str) -> Type:
    """Parse a branch's C++ type name; raise :class:`UnsupportedType` for types the model does not hold."""
    name = _strip(typename)
    if name.endswith("[]"):  # uproot's name for the split members of 1-D link vectors
        return List(parse(name[:-2]))
    if name in _PRIMITIVES:
        return Primitive(_PRIMITIVES[name])
    match = re.fullmatch(r"vector<(.*)>", name)
    if match:
        return List(parse(match.group(1)))
    match = re.fullmatch(r"ElementLink<(.*)>", name)
    if match:
        inner = re.search(r"(xAOD::[A-Za-z0-9]+?)(?:_v\d+)?\s*>*\s*$", match.group(1))
        return Link(inner.group(1) if inner else None)
    raise UnsupportedType(f"type {typename!r} is not part of the event model")


def contains_link(t: Type) -> bool:
    """True for a link or a (nested) list of links."""
    while isinstance(t, List):
        t = t.content
    return isinstance(t, Link)


def link_depth(t: Type) -> int:
    """Number of list levels above the link (0 for one link, 1 for a vector of links)."""
    depth = 0
    while isinstance(t, List):
        t = t.content
        depth += 1
    return depth


def leaf_dtype(t: Type) -> str:
    while isinstance(t, List):
        t = t.content
    return "uint32" if isinstance(t, Link) else t.dtype
