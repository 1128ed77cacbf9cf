"""The catalogue of a PHYSLITE file: every branch with its type, decoder layout, baskets and sizes.

uproot reads the file's header, directory and streamers and hands over the TTree's bytes; physlite's own reader
(:mod:`physlite.reader.tree_metadata`, about ten times faster than building uproot's objects) takes the branch
records from them. For class versions that reader does not know, uproot's full parse supplies the same records
(:mod:`physlite.reader.uproot_records`); one builder, :func:`branch_infos`, turns either into branch information. Catalogues are
kept per process, keyed by location, size and modification time (or ETag), so that reopening a file (a dask
worker reading the next chunk of the same file, a notebook re-running a cell) skips even that.

Example:
    >>> from physlite.io import open_source
    >>> catalogue = load_catalogue(open_source("PHYSLITE_example.root"))  # doctest: +SKIP
    >>> catalogue.num_entries, len(catalogue.branches)  # doctest: +SKIP
    (100, 1487)
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import uproot

from physlite.decode.layouts import LINK_DTYPE, Kind, Layout
from physlite.errors import (
    CorruptDataError,
    NotROOTFileError,
    PhysliteError,
    TreeNotFoundError,
)
from physlite.io import LocalSource
from physlite.reader.branch_types import StreamerElement, Streamers, branch_type, declared_type
from physlite.reader.interfaces import no_data_reason, stores_of
from physlite.reader.tree_metadata import BranchRecord, TreeRecord, UnknownLayout, read_tree
from physlite.reader.uproot_records import tree_record

CACHED_CATALOGUES = 64


@dataclass(frozen=True)
class BranchInfo:
    """What physlite knows about one readable branch (a leaf, or a split ElementLink vector)."""

    name: str
    typename: str
    layout: Layout | None  # None: no decoder for this type
    unsupported_reason: str | None
    seeks: np.ndarray
    nbytes: np.ndarray
    first_entries: np.ndarray  # one per basket, plus the entry after the last
    compressed_bytes: int
    uncompressed_bytes: int
    members: tuple[BranchInfo, ...] = ()  # .m_persKey and .m_persIndex of a split ElementLink vector
    path: str = ""  # uproot's full key: parent/leaf for sub-branches of split objects
    holds_no_data: bool = False  # an xAOD interface object or store base (unsupported_reason says which)


def _baskets(record: BranchRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seeks, nbytes, first entries) of the baskets, those embedded in the tree's metadata included."""
    n = record.num_normal_baskets + record.embedded_baskets
    seeks = record.basket_seek[:n].astype(np.int64)
    nbytes = record.basket_bytes[:n].astype(np.int64)
    entries = np.zeros(n + 1, np.int64)
    known = record.basket_entry[: n + 1]
    entries[: len(known)] = known
    entries[n] = record.num_entries
    return seeks, nbytes, entries


def _branch_info(
    record: BranchRecord, streamers: Streamers, stores: set[str], typed=None, members=()
) -> BranchInfo:
    """The BranchInfo of ``record``; ``typed`` (typename, layout, reason) overrides the record's own type, and a
    split link's sizes are its ``members``' sums; ``stores`` are the objects with an auxiliary store (an
    unreadable branch of one of them holds no data, see :mod:`physlite.reader.interfaces`)."""
    typename, layout, reason = typed or branch_type(record, streamers)
    if layout is not None and record.embedded_baskets > 0:
        layout, reason = None, "baskets embedded in the TTree metadata (file not closed properly)"
    no_data = None
    if layout is None:
        base_part = record.streamer_type == 0 and record.element_id is not None and record.element_id >= 0
        no_data = no_data_reason(record.name, typename, stores, base_part)
        if no_data is not None:
            reason = f"holds no data: {no_data} (type {typename})"
    sizes = (record.compressed_bytes, record.total_bytes)
    if members:
        sizes = (sum(m.compressed_bytes for m in members), sum(m.uncompressed_bytes for m in members))
    seeks, nbytes, entries = _baskets(record)
    return BranchInfo(
        path=_path(record),
        name=record.name,
        typename=typename,
        layout=layout,
        unsupported_reason=reason,
        seeks=seeks,
        nbytes=nbytes,
        first_entries=entries,
        compressed_bytes=int(sizes[0]),
        uncompressed_bytes=int(sizes[1]),
        members=tuple(members),
        holds_no_data=no_data is not None,
    )


def _path(record: BranchRecord) -> str:
    names = []
    while record is not None:
        names.append(record.name)
        record = record.parent
    return "/".join(reversed(names))


def branch_infos(tree: TreeRecord, streamers: Streamers) -> dict[str, BranchInfo]:
    """Every readable branch of ``tree`` (read by :mod:`~physlite.reader.tree_metadata` or, as the fallback, taken
    from uproot's parse by :mod:`~physlite.reader.uproot_records`), by name in file order.

    A branch split into ``.m_persKey``/``.m_persIndex`` is one link branch with those two members; a branch whose
    only sub-branch has its own name (a scalar ElementLink) is read from that leaf under the parent's type.

    Example:
        >>> infos = branch_infos(read_tree(key_bytes, key_length), _streamers_of(uproot_file))  # doctest: +SKIP
        >>> infos["AnalysisElectronsAuxDyn.pt"].typename  # doctest: +SKIP
        'std::vector<float>'
    """
    infos: dict[str, BranchInfo] = {}
    stores = stores_of(record.name for record in tree.walk())
    for record in tree.walk():
        children = {child.name: child for child in record.branches}
        key_name, index_name = record.name + ".m_persKey", record.name + ".m_persIndex"
        if key_name in children and index_name in children:
            members = (
                _branch_info(children[key_name], streamers, stores),
                _branch_info(children[index_name], streamers, stores),
            )
            typed = (declared_type(record, streamers), Layout(Kind.LINK_SPLIT, LINK_DTYPE), None)
            infos[record.name] = _branch_info(record, streamers, stores, typed, members)
            continue
        if len(children) == 1 and record.name in children:
            typed = branch_type(record, streamers)
            infos[record.name] = _branch_info(children[record.name], streamers, stores, typed)
            continue
        if children:
            continue
        if record.name in infos:
            if record.parent is not None and record.parent.name == record.name:
                continue
            raise PhysliteError(f"branch name {record.name} occurs twice in the tree")
        infos[record.name] = _branch_info(record, streamers, stores)
    return infos


def _streamers_of(uproot_file) -> Streamers:
    """The streamer elements of a class, from the streamers uproot read (once per class and version)."""
    seen: dict[tuple[str, int | None], list[StreamerElement] | None] = {}

    def lookup(class_name: str, version: int | None) -> list[StreamerElement] | None:
        if (class_name, version) not in seen:
            info = uproot_file.file.streamer_named(class_name, version) if version else None
            info = info or uproot_file.file.streamer_named(class_name)
            seen[class_name, version] = (
                None
                if info is None
                else [
                    StreamerElement(
                        name=e.member("fName"),
                        typename=e.member("fTypeName"),
                        code=e.member("fType"),
                        array_length=e.member("fArrayLength"),
                        is_base=type(e).__name__.endswith("TStreamerBase"),
                    )
                    for e in info.elements
                ]
            )
        return seen[class_name, version]

    return lookup


def _own_tree_record(uproot_file, tree: str) -> TreeRecord | None:
    """The tree's records read by physlite's own reader, or None when it cannot (then uproot parses the tree)."""
    try:
        key = uproot_file.key(tree)
        if key.fClassName != "TTree":
            return None
        chunk, _ = key.get_uncompressed_chunk_cursor()
        return read_tree(chunk.raw_data, key.fKeylen)
    except (UnknownLayout, uproot.KeyInFileError):
        return None
    except Exception:  # damaged bytes: uproot's parse says what is wrong
        return None


@dataclass(frozen=True)
class Catalogue:
    """A tree's branches (by name, in file order), its entries and the file's compression setting."""

    tree_name: str
    num_entries: int
    compression: str
    branches: dict[str, BranchInfo]

    @cached_property
    def by_path(self) -> dict[str, str]:
        """Branch names by uproot's full key (``parent/leaf``), where the two differ."""
        return {info.path: name for name, info in self.branches.items() if info.path and info.path != name}


_cache: OrderedDict[tuple, Catalogue] = OrderedDict()
_cache_lock = threading.Lock()


def _version_key(source, tree: str) -> tuple | None:
    """What identifies this version of the file, or None when the source cannot tell (then nothing is cached)."""
    if isinstance(source, LocalSource):
        stat = os.stat(source.path)
        return (os.path.realpath(source.path), stat.st_size, stat.st_mtime_ns, tree)
    tag = getattr(source, "tag", "")
    if tag:
        return (source.location.split("?", 1)[0], source.size, tag, tree)
    return None


def forget_catalogues() -> None:
    """Drop this process's catalogues: the next open of every file reads its metadata again."""
    with _cache_lock:
        _cache.clear()


def load_catalogue(source, tree: str = "CollectionTree") -> Catalogue:
    """The catalogue of ``tree`` in the file behind ``source`` (a :mod:`physlite.io` source), from the
    per-process cache when this version of the file was catalogued before."""
    key = _version_key(source, tree)
    with _cache_lock:
        if key is not None and key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    catalogue = _parse(source, tree)
    if key is not None:
        with _cache_lock:
            _cache[key] = catalogue
            while len(_cache) > CACHED_CATALOGUES:
                _cache.popitem(last=False)
    return catalogue


@contextlib.contextmanager
def _collector_paused():
    """Cataloguing allocates some 50,000 small objects, none of them garbage cycles: a collection of the
    cyclic garbage collector in between is pure pause (measured: up to 60 ms on a 50 ms parse)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(source, tree: str) -> Catalogue:
    with _collector_paused():
        return _parse_file(source, tree)


def _parse_file(source, tree: str) -> Catalogue:
    try:
        uproot_file = uproot.open(source.file_like(), object_cache=None, array_cache=None)
    except Exception as error:
        raise _header_error(source.location, error) from None
    try:
        record = _own_tree_record(uproot_file, tree) or _uproot_tree_record(
            uproot_file, tree, source.location
        )
        try:
            branches = branch_infos(record, _streamers_of(uproot_file))
        except PhysliteError:
            raise
        except Exception as error:
            raise CorruptDataError(
                f"{source.location}: cannot read the branches of {tree!r} ({error})"
            ) from None
        return Catalogue(tree, record.num_entries, _compression_setting(uproot_file), branches)
    finally:
        uproot_file.close()


def _uproot_tree_record(uproot_file, tree: str, location: str) -> TreeRecord:
    """The fallback: the tree's records from uproot's full parse."""
    try:
        ttree = uproot_file[tree]
    except uproot.KeyInFileError:
        trees = [k for k, c in uproot_file.classnames().items() if c in ("TTree", "ROOT::RNTuple")]
        raise TreeNotFoundError(
            f"{location} has no tree {tree!r} (trees in the file: {', '.join(trees) or 'none'})"
        ) from None
    except Exception as error:
        raise CorruptDataError(f"{location}: cannot read tree {tree!r} ({error})") from None
    try:
        return tree_record(ttree)
    except Exception as error:
        raise CorruptDataError(f"{location}: cannot read the branches of {tree!r} ({error})") from None


def _compression_setting(uproot_file) -> str:
    compression = uproot_file.file.compression
    return f"{type(compression).__name__} level {compression.level}" if compression else "none"


def _header_error(location: str, error: Exception) -> PhysliteError:
    if isinstance(error, PhysliteError):
        return error
    text = str(error).split("\n")[0]
    if "not a ROOT file" in text:
        return NotROOTFileError(f"{location} is not a ROOT file")
    return NotROOTFileError(
        f"{location}: cannot read the ROOT file header or directory ({text}); truncated file?"
    )
