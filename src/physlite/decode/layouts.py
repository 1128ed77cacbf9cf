"""Which on-disk layout a branch has, from its C++ type and streamer information.

Each layout has one kernel in :mod:`physlite.decode.kernels`. Files are classified from their type names by
:mod:`physlite.decode.typenames` (through :mod:`physlite.branch_types`); :func:`classify` here does the same from
the interpretation uproot derives, for files whose tree only uproot's full parse can read. Both refuse what no
kernel can decode with :class:`physlite.errors.UnsupportedTypeError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import numpy as np
import uproot
import uproot.interpretation as interp

from physlite.errors import UnsupportedTypeError


class Kind(Enum):
    """The on-disk layouts with a kernel."""

    FIXED = "fixed"  # numbers and fixed-size structs, one per entry
    VECTOR = "vector"  # vector<T> (10-byte header) or split member array T[] (no header)
    NESTED = "nested"  # vector<vector<T>>, vector<set<T>>, vector<vector<vector<T>>>
    STRINGS = "strings"  # vector<string>, split string[]
    LINK_NESTED = "link_nested"  # vector<vector<ElementLink<T>>>
    LINK_VECTOR = "link_vector"  # vector<ElementLink<T>> streamed whole (object- or member-wise)
    LINK_SCALAR = "link_scalar"  # ElementLink<T>
    LINK_SPLIT = "link_split"  # vector<ElementLink<T>> split into .m_persKey and .m_persIndex branches


@dataclass(frozen=True)
class Layout:
    """How a branch's entries are laid out; ``dtype`` is the native dtype of the innermost items."""

    kind: Kind
    dtype: np.dtype | None = None
    header: int = 0
    depth: int = 0
    counted: bool = True
    inner_parameters: tuple[tuple[str, str], ...] = ()

    @property
    def is_link(self) -> bool:
        return self.kind.value.startswith("link")


LINK_DTYPE = np.dtype(np.uint32)
_LINK_TYPE = re.compile(r"^\s*ElementLink\s*<")
_LINK_VECTOR_TYPE = re.compile(r"^\s*(std::)?vector\s*<\s*ElementLink\s*<")
_LINK_NESTED_TYPE = re.compile(r"^\s*(std::)?vector\s*<\s*(std::)?vector\s*<\s*ElementLink\s*<")


def _native(dtype: np.dtype) -> np.dtype:
    return (
        dtype.newbyteorder("=")
        if dtype.names is None
        else np.dtype([(n, dtype[n].newbyteorder("=")) for n in dtype.names])
    )


def _nested_layout(outer: interp.objects.AsObjects) -> Layout | None:
    model = outer.model
    if not (isinstance(model, uproot.containers.AsVector) and model.header):
        return None
    values = model.values
    depth = 1
    parameters: tuple[tuple[str, str], ...] = ()
    while isinstance(values, uproot.containers.AsVector | uproot.containers.AsSet) and not values.header:
        if isinstance(values, uproot.containers.AsSet):
            parameters = (("__array__", "set"),)
        depth += 1
        values = values.keys if isinstance(values, uproot.containers.AsSet) else values.values
    if isinstance(values, uproot.containers.AsString) and depth == 1:
        return Layout(Kind.STRINGS, counted=True)
    if isinstance(values, np.dtype) and depth in (2, 3):
        return Layout(Kind.NESTED, _native(values), depth=depth, inner_parameters=parameters)
    return None


def classify(typename: str, interpretation: object, has_link_members: bool = False) -> Layout:
    """The layout of a branch of C++ type ``typename`` given uproot's ``interpretation`` of it.

    ``has_link_members`` says that the branch is split into ``.m_persKey``/``.m_persIndex`` sub-branches.

    Example:
        >>> classify("std::vector<float>", uproot.AsJagged(uproot.AsDtype(">f4"), header_bytes=10)).kind
        <Kind.VECTOR: 'vector'>
    """
    if has_link_members:
        return Layout(Kind.LINK_SPLIT, LINK_DTYPE)
    if _LINK_NESTED_TYPE.match(typename):
        return Layout(Kind.LINK_NESTED, LINK_DTYPE)
    if _LINK_VECTOR_TYPE.match(typename):
        return Layout(Kind.LINK_VECTOR, LINK_DTYPE)
    if _LINK_TYPE.match(typename):
        return Layout(Kind.LINK_SCALAR, LINK_DTYPE)
    if isinstance(interpretation, interp.objects.AsStridedObjects):
        # a struct of fixed-size members; an empty one (xAOD::AuxContainerBase) is not data
        dtype = np.dtype(interpretation.from_dtype)
        if dtype.names and dtype.itemsize > 0:
            return Layout(Kind.FIXED, _native(dtype))
    elif isinstance(interpretation, interp.numerical.AsDtype) and interpretation.inner_shape == ():
        return Layout(Kind.FIXED, _native(interpretation.from_dtype))
    if isinstance(interpretation, interp.jagged.AsJagged) and isinstance(
        interpretation.content, interp.numerical.AsDtype
    ):
        return Layout(
            Kind.VECTOR, _native(interpretation.content.from_dtype), header=interpretation.header_bytes
        )
    if isinstance(interpretation, interp.objects.AsObjects):
        model = interpretation.model
        if (
            isinstance(model, uproot.containers.AsArray)
            and model.header
            and isinstance(model.values, uproot.containers.AsString)
        ):
            return Layout(Kind.STRINGS, counted=False)
        layout = _nested_layout(interpretation)
        if layout is not None:
            return layout
    raise UnsupportedTypeError(f"no decoder for type {typename} ({interpretation})")
