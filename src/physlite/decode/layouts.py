"""Which on-disk layout a branch has, from its C++ type and streamer information.

Each layout has one kernel in :mod:`physlite.decode.kernels`. Branches are classified from their type names by
:mod:`physlite.decode.typenames` (through :mod:`physlite.reader.branch_types`), which refuses what no kernel can
decode with :class:`physlite.errors.UnsupportedTypeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


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
