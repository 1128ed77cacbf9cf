"""The branches of a TTree, read straight from the bytes of its TKey: names, types, baskets, sizes.

uproot builds a full Python object for every member of every branch and leaf; a PHYSLITE tree has about 1500
branches, so that costs 0.2 s per file. This reader walks the same bytes (ROOT's TBufferFile format: byte counts,
class tags, object references) and keeps only what physlite needs, in about a tenth of the time. It knows the
class versions ROOT has written since 6.00 (TTree 19-20, TBranch 12-13, TBranchElement 8-10, TLeaf 2); anything
else raises :class:`UnknownLayout`, and the caller falls back to uproot.

Example:
    >>> tree = read_tree(key_bytes, key_length=62)  # doctest: +SKIP
    >>> tree.num_entries, tree.branches[0].name  # doctest: +SKIP
    (100, 'EventInfoAuxDyn.RandomRunNumber')
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

_BYTE_COUNT = 0x40000000
_CLASS_TAG = 0x80000000
_NEW_CLASS = 0xFFFFFFFF
_MAP_OFFSET = 2  # ROOT numbers object positions from the start of the key, plus two
_IS_REFERENCED = 1 << 4
_VERSION_WITH_CHECKSUM = 0x4000

_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_BRANCH_COUNTS = struct.Struct(
    ">iiiiq"
)  # fCompress, fBasketSize, fEntryOffsetLen, fWriteBasket, fEntryNumber
_BRANCH_SIZES = struct.Struct(
    ">iIiqqqq"
)  # fOffset, fMaxBaskets, fSplitLevel, fEntries, fFirstEntry, fTot/ZipBytes
_ELEMENT_V10 = struct.Struct(">Ihiiii")  # fCheckSum, fClassVersion, fID, fType, fStreamerType, fMaximum
_ELEMENT_V8 = struct.Struct(">Iiiiii")
_LEAF = struct.Struct(">iii??")  # fLen, fLenType, fOffset, fIsRange, fIsUnsigned
_TREE_V19 = struct.Struct(">qqqqqdiiiiIqqqqqq")  # fEntries ... fNClusterRange ... fEstimate


class UnknownLayout(Exception):
    """The bytes hold a class or class version this reader does not know."""


@dataclass
class LeafRecord:
    """One TLeaf: its class (``TLeafF``, ``TLeafElement``, ...), name, length and signedness."""

    cls: str
    name: str
    title: str
    length: int
    unsigned: bool
    counted: bool  # its length comes from another leaf (a variable-size array)


@dataclass
class BranchRecord:
    """One TBranch or TBranchElement, with its sub-branches."""

    cls: str
    name: str
    title: str
    num_entries: int
    total_bytes: int
    compressed_bytes: int
    write_basket: int
    basket_bytes: np.ndarray
    basket_entry: np.ndarray
    basket_seek: np.ndarray
    embedded_baskets: int
    leaves: list[LeafRecord]
    branches: list[BranchRecord]
    class_name: str = ""  # the TBranchElement fields; empty/None for a plain TBranch
    parent_name: str = ""
    clones_name: str = ""
    class_version: int = 0
    element_id: int | None = None
    element_type: int | None = None
    streamer_type: int | None = None
    parent: BranchRecord | None = field(default=None, repr=False)

    @property
    def num_normal_baskets(self) -> int:
        """Baskets written to the file on their own (not embedded in the tree's metadata)."""
        unwritten = np.flatnonzero(self.basket_seek == 0)
        count = int(unwritten[0]) if unwritten.size else len(self.basket_seek)
        return min(count, self.write_basket) if self.write_basket >= 0 else count


@dataclass
class TreeRecord:
    name: str
    num_entries: int
    branches: list[BranchRecord]

    def walk(self) -> Iterator[BranchRecord]:
        """Every branch, depth first, each before its sub-branches (the order of the file)."""
        stack = list(reversed(self.branches))
        while stack:
            branch = stack.pop()
            yield branch
            stack.extend(reversed(branch.branches))


@dataclass(frozen=True)
class _Skipped:
    cls: str


class _Reader:
    """A position in the key's bytes and the objects and classes seen so far (for ROOT's back references)."""

    def __init__(self, data: bytes, key_length: int) -> None:
        self.data = data
        self.pos = 0
        self.key_length = key_length
        self.refs: dict[int, object] = {}

    def unpack(self, layout: struct.Struct) -> tuple:
        values = layout.unpack_from(self.data, self.pos)
        self.pos += layout.size
        return values

    def one(self, layout: struct.Struct):
        value = layout.unpack_from(self.data, self.pos)[0]
        self.pos += layout.size
        return value

    def string(self) -> str:
        size = self.data[self.pos]
        self.pos += 1
        if size == 255:
            size = self.one(_U32)
        text = self.data[self.pos : self.pos + size].decode("latin-1")
        self.pos += size
        return text

    def header(self) -> tuple[int, int]:
        """The end position and the version of the object that starts here."""
        count = self.one(_U32)
        if not count & _BYTE_COUNT:
            raise UnknownLayout(f"object without a byte count at {self.pos - 4}")
        end = self.pos + (count & ~_BYTE_COUNT)
        return end, self.one(_U16)

    def skip(self) -> None:
        self.pos = self.header()[0]

    def tobject(self) -> None:
        version = self.one(_U16)
        if version & _VERSION_WITH_CHECKSUM:
            self.pos += 4
        self.pos += 4  # fUniqueID
        if self.one(_U32) & _IS_REFERENCED:
            self.pos += 2

    def tnamed(self) -> tuple[str, str]:
        end, _ = self.header()
        self.tobject()
        name, title = self.string(), self.string()
        self.pos = end
        return name, title

    def array(self, dtype: str, count: int) -> np.ndarray:
        self.pos += 1  # ROOT writes a flag byte before each member array
        values = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += values.nbytes
        return values

    def any_object(self) -> object:
        """ROOT's ReadObjectAny: a null, a reference to an earlier object, or a (new or known) class's object."""
        begin = self.pos + self.key_length
        count = self.one(_U32)
        if count & _BYTE_COUNT and count != _NEW_CLASS:
            start = self.pos + self.key_length
            tag = self.one(_U32)
            end = self.pos - 4 + (count & ~_BYTE_COUNT)
        else:
            tag, start, end = count, None, None
        if not tag & _CLASS_TAG:
            if tag == 0:
                return None
            if tag in self.refs:
                return self.refs[tag]
            if end is not None:
                self.pos = end
            return None  # an object still being read (a branch's count branch can be its parent)
        if start is None:
            raise UnknownLayout("class tag without a byte count")
        if tag == _NEW_CLASS:
            stop = self.data.index(b"\0", self.pos)
            cls = self.data[self.pos : stop].decode("latin-1")
            self.pos = stop + 1
            self.refs[start + _MAP_OFFSET] = _Skipped(cls)
        else:
            known = self.refs.get(tag & ~_CLASS_TAG)
            if not isinstance(known, _Skipped):
                raise UnknownLayout(f"reference to an unknown class ({tag & ~_CLASS_TAG})")
            cls = known.cls
        reader = _READERS.get(cls)
        if reader is None:
            self.pos = end
            obj: object = _Skipped(cls)
        else:
            obj = reader(self, cls)
            if self.pos != end:
                raise UnknownLayout(f"{cls} did not end where its byte count says")
        self.refs[begin + _MAP_OFFSET] = obj
        return obj

    def obj_array(self) -> list:
        end, _ = self.header()
        self.tobject()
        self.string()  # fName
        size = self.one(_I32)
        self.pos += 4  # fLowerBound
        if end - self.pos == 4 * size and self.data.count(0, self.pos, end) == 4 * size:
            self.pos = end  # only null pointers: a branch's list of baskets not kept in memory
            return [None] * size
        items = [self.any_object() for _ in range(size)]
        if self.pos != end:
            raise UnknownLayout("TObjArray did not end where its byte count says")
        return items

    def branch(self, cls: str = "TBranch") -> BranchRecord:
        end, version = self.header()
        if version not in (12, 13):
            raise UnknownLayout(f"TBranch version {version}")
        name, title = self.tnamed()
        self.skip()  # TAttFill
        _, _, _, write_basket, _ = self.unpack(_BRANCH_COUNTS)
        if version == 13:
            self.skip()  # TIOFeatures
        _, max_baskets, _, entries, _, total, compressed = self.unpack(_BRANCH_SIZES)
        branches = self.obj_array()
        leaves = self.obj_array()
        baskets = self.obj_array()
        basket_bytes = self.array(">i4", max_baskets)
        basket_entry = self.array(">i8", max_baskets)
        basket_seek = self.array(">i8", max_baskets)
        self.pos = end  # fFileName
        record = BranchRecord(
            cls=cls,
            name=name,
            title=title,
            num_entries=entries,
            total_bytes=total,
            compressed_bytes=compressed,
            write_basket=write_basket,
            basket_bytes=basket_bytes,
            basket_entry=basket_entry,
            basket_seek=basket_seek,
            embedded_baskets=sum(isinstance(b, _Skipped) and b.cls == "TBasket" for b in baskets),
            leaves=[leaf for leaf in leaves if isinstance(leaf, LeafRecord)],
            branches=[b for b in branches if isinstance(b, BranchRecord)],
        )
        if len(record.leaves) != sum(leaf is not None for leaf in leaves) or len(record.branches) != sum(
            b is not None for b in branches
        ):
            raise UnknownLayout(f"branch {name} holds objects of unknown classes")
        for child in record.branches:
            child.parent = record
        return record

    def branch_element(self, cls: str) -> BranchRecord:
        end, version = self.header()
        if version not in (8, 9, 10):
            raise UnknownLayout(f"TBranchElement version {version}")
        record = self.branch(cls)
        record.class_name, record.parent_name, record.clones_name = (
            self.string(),
            self.string(),
            self.string(),
        )
        fields = self.unpack(_ELEMENT_V10 if version >= 10 else _ELEMENT_V8)
        _, record.class_version, record.element_id, record.element_type, record.streamer_type, _ = fields
        self.any_object()  # fBranchCount
        self.any_object()  # fBranchCount2
        self.pos = end
        return record

    def leaf(self, cls: str) -> LeafRecord:
        end, _ = self.header()
        base_end, version = self.header()
        if version != 2:
            raise UnknownLayout(f"TLeaf version {version}")
        name, title = self.tnamed()
        length, _, _, _, unsigned = self.unpack(_LEAF)
        counter = self.any_object()
        self.pos = base_end
        record = LeafRecord(cls, name, title, length, unsigned, counted=counter is not None)
        self.pos = end  # fMinimum/fMaximum, or TLeafElement's fID/fType
        return record

    def tree(self) -> TreeRecord:
        end, version = self.header()
        if end > len(self.data):
            raise UnknownLayout(f"the tree's bytes end at {len(self.data)}, its byte count says {end}")
        if version not in (19, 20):
            raise UnknownLayout(f"TTree version {version}")
        name, _ = self.tnamed()
        for _ in range(3):
            self.skip()  # TAttLine, TAttFill, TAttMarker
        fields = self.unpack(_TREE_V19)
        entries, cluster_ranges = fields[0], fields[10]
        self.array(">i8", cluster_ranges)
        self.array(">i8", cluster_ranges)
        if version == 20:
            self.skip()  # TIOFeatures
        branches = self.obj_array()
        if any(b is not None and not isinstance(b, BranchRecord) for b in branches):
            raise UnknownLayout("the tree holds branches of unknown classes")
        return TreeRecord(name, entries, [b for b in branches if b is not None])


_LEAF_CLASSES = ("TLeafO", "TLeafB", "TLeafS", "TLeafI", "TLeafL", "TLeafG", "TLeafF", "TLeafD", "TLeafC")
_READERS = {
    "TBranch": _Reader.branch,
    "TBranchElement": _Reader.branch_element,
    "TLeafElement": _Reader.leaf,
    **{name: _Reader.leaf for name in _LEAF_CLASSES},
}


def read_tree(data: bytes, key_length: int) -> TreeRecord:
    """The tree in ``data``, the uncompressed object of a TTree key whose header is ``key_length`` bytes long.

    Raises :class:`UnknownLayout` for what this reader does not know (the caller then uses uproot)."""
    try:
        return _Reader(bytes(data), key_length).tree()
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as error:
        raise UnknownLayout(f"unexpected bytes ({error})") from None
