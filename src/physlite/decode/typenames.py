"""C++ type names as ROOT writes them, read into a tree: their normal spelling and the layout they have on disk.

ROOT writes ``vector<vector<ElementLink<DataVector<xAOD::IParticle> > > >`` or ``unsigned int``; physlite
spells them as uproot does (``std::vector<std::vector<ElementLink<DataVector<xAOD::IParticle>>>>``,
``uint32_t``), so that the names do not depend on which reader catalogued the file.

Example:
    >>> normal_name("vector<vector<unsigned int> >")
    'std::vector<std::vector<uint32_t>>'
    >>> layout_of_type("vector<float>").kind
    <Kind.VECTOR: 'vector'>
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from physlite.decode.layouts import LINK_DTYPE, Kind, Layout
from physlite.errors import UnsupportedTypeError

BASIC_TYPES = {
    "bool": "bool",
    "Bool_t": "bool",
    "char": "int8_t",
    "Char_t": "int8_t",
    "signed char": "int8_t",
    "int8_t": "int8_t",
    "unsigned char": "uint8_t",
    "UChar_t": "uint8_t",
    "uint8_t": "uint8_t",
    "short": "int16_t",
    "Short_t": "int16_t",
    "int16_t": "int16_t",
    "unsigned short": "uint16_t",
    "UShort_t": "uint16_t",
    "uint16_t": "uint16_t",
    "int": "int32_t",
    "Int_t": "int32_t",
    "int32_t": "int32_t",
    "unsigned int": "uint32_t",
    "unsigned": "uint32_t",
    "UInt_t": "uint32_t",
    "uint32_t": "uint32_t",
    "long": "int64_t",
    "long long": "int64_t",
    "Long_t": "int64_t",
    "Long64_t": "int64_t",
    "int64_t": "int64_t",
    "unsigned long": "uint64_t",
    "unsigned long long": "uint64_t",
    "ULong_t": "uint64_t",
    "ULong64_t": "uint64_t",
    "uint64_t": "uint64_t",
    "float": "float",
    "Float_t": "float",
    "double": "double",
    "Double_t": "double",
}
DTYPES = {
    "bool": np.dtype(np.bool_),
    "int8_t": np.dtype(np.int8),
    "uint8_t": np.dtype(np.uint8),
    "int16_t": np.dtype(np.int16),
    "uint16_t": np.dtype(np.uint16),
    "int32_t": np.dtype(np.int32),
    "uint32_t": np.dtype(np.uint32),
    "int64_t": np.dtype(np.int64),
    "uint64_t": np.dtype(np.uint64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
}
_STD = {"vector", "set", "string", "map", "list", "deque", "pair", "unordered_set", "unordered_map"}
_TOKEN = re.compile(r"\s*([<>,]|[^<>,]+)")


@dataclass(frozen=True)
class CppType:
    """A C++ type: a name and its template arguments."""

    name: str
    arguments: tuple[CppType, ...] = ()

    def __str__(self) -> str:
        if not self.arguments:
            return self.name
        return f"{self.name}<{','.join(str(a) for a in self.arguments)}>"


@functools.lru_cache(maxsize=4096)  # a file has ~1500 branches of ~80 distinct types
def parse_type(text: str) -> CppType:
    """The tree of the type name ``text``, in normal spelling (``std::`` containers, ``<stdint>`` numbers)."""
    tokens = [t.strip() for t in _TOKEN.findall(text) if t.strip()]
    parsed, rest = _parse(tokens, 0, text)
    if rest != len(tokens):
        raise UnsupportedTypeError(f"cannot read the type name {text!r}")
    return parsed


def _parse(tokens: list[str], at: int, text: str) -> tuple[CppType, int]:
    if at >= len(tokens) or tokens[at] in "<>,":
        raise UnsupportedTypeError(f"cannot read the type name {text!r}")
    name = " ".join(tokens[at].split())
    name = BASIC_TYPES.get(name, name)
    if name in _STD:
        name = "std::" + name
    at += 1
    arguments = []
    if at < len(tokens) and tokens[at] == "<":
        while True:
            argument, at = _parse(tokens, at + 1, text)
            arguments.append(argument)
            if at >= len(tokens):
                raise UnsupportedTypeError(f"cannot read the type name {text!r}")
            if tokens[at] == ">":
                at += 1
                break
            if tokens[at] != ",":
                raise UnsupportedTypeError(f"cannot read the type name {text!r}")
    return CppType(name, tuple(arguments)), at


def normal_name(text: str) -> str:
    """``text`` in the spelling physlite uses (uproot's)."""
    return str(parse_type(text))


def _is_vector(t: CppType) -> bool:
    return t.name in ("std::vector", "std::set") and len(t.arguments) >= 1


@functools.lru_cache(maxsize=4096)
def layout_of_type(text: str | CppType, headerless: bool = False) -> Layout:
    """The layout of a branch holding one ``text`` per entry, streamed whole.

    ``headerless`` is for the members of a split collection (``T[]``): the entry is a bare array.
    """
    t = parse_type(text) if isinstance(text, str) else text
    if t.name == "ElementLink":
        return Layout(Kind.LINK_SCALAR, LINK_DTYPE)
    if t.name in DTYPES:
        if headerless:
            return Layout(Kind.VECTOR, DTYPES[t.name], header=0)
        return Layout(Kind.FIXED, DTYPES[t.name])
    if t.name == "std::string" and headerless:
        return Layout(Kind.STRINGS, counted=False)
    if t.name == "std::vector" and not headerless and t.arguments:
        inner = t.arguments[0]
        if inner.name == "ElementLink":
            return Layout(Kind.LINK_VECTOR, LINK_DTYPE)
        if inner.name == "std::vector" and inner.arguments and inner.arguments[0].name == "ElementLink":
            return Layout(Kind.LINK_NESTED, LINK_DTYPE)
        if inner.name in DTYPES:
            return Layout(Kind.VECTOR, DTYPES[inner.name], header=10)
        if inner.name == "std::string":
            return Layout(Kind.STRINGS, counted=True)
        depth, parameters = 1, ()
        while _is_vector(inner):
            if inner.name == "std::set":
                parameters = (("__array__", "set"),)
            depth += 1
            inner = inner.arguments[0]
        if inner.name in DTYPES and depth in (2, 3):
            return Layout(Kind.NESTED, DTYPES[inner.name], depth=depth, inner_parameters=parameters)
    raise UnsupportedTypeError(f"no decoder for type {t}")
