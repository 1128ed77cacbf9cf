"""The catalogue of a PHYSLITE file: every branch with its type, decoder layout, baskets and sizes.

The file's metadata (header, streamers, the TTree and its branches) is parsed by uproot, once per file version:
catalogues are kept per process, keyed by location, size and modification time (or ETag), so that reopening a file
(a dask worker reading the next chunk of the same file, a notebook re-running a cell) skips the parsing.

Example:
    >>> from physlite.io import open_source
    >>> catalogue = load_catalogue(open_source("PHYSLITE_example.root"))  # doctest: +SKIP
    >>> catalogue.num_entries, len(catalogue.branches)  # doctest: +SKIP
    (100, 1487)
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import uproot

from physlite.decode.layouts import Layout, classify
from physlite.errors import (
    CorruptDataError,
    NotROOTFileError,
    PhysliteError,
    TreeNotFoundError,
    UnsupportedTypeError,
)
from physlite.io import LocalSource

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


def _basket_arrays(branch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = branch.num_baskets
    seeks = np.asarray(branch.member("fBasketSeek")[:n], np.int64)
    nbytes = np.asarray(branch.member("fBasketBytes")[:n], np.int64)
    entries = np.asarray(branch.member("fBasketEntry")[: n + 1], np.int64).copy()
    entries[n] = branch.num_entries
    return seeks, nbytes, entries


def _info(
    branch, layout: Layout | None = None, reason: str | None = None, members=(), typename: str | None = None
) -> BranchInfo:
    seeks, nbytes, entries = _basket_arrays(branch)
    typename = typename or branch.typename
    if layout is None and reason is None:
        try:
            layout = classify(typename, branch.interpretation)
        except UnsupportedTypeError as error:
            reason = str(error)
        except Exception as error:  # uproot could not even interpret the streamer
            reason = f"no decoder for type {typename} ({str(error).splitlines()[0]})"
    if layout is not None and len(branch.embedded_baskets or ()) > 0:
        layout, reason = None, "baskets embedded in the TTree metadata (file not closed properly)"
    return BranchInfo(
        name=branch.name,
        typename=typename,
        layout=layout,
        unsupported_reason=reason,
        seeks=seeks,
        nbytes=nbytes,
        first_entries=entries,
        compressed_bytes=int(branch.member("fZipBytes"))
        if not members
        else sum(m.compressed_bytes for m in members),
        uncompressed_bytes=int(branch.member("fTotBytes"))
        if not members
        else sum(m.uncompressed_bytes for m in members),
        members=tuple(members),
    )


def _catalogue(tree) -> dict[str, BranchInfo]:
    infos: dict[str, BranchInfo] = {}
    for branch in tree.itervalues(recursive=True):
        children = branch.branches
        names = {child.name for child in children}
        if children and {branch.name + ".m_persKey", branch.name + ".m_persIndex"} <= names:
            key, index = (branch[branch.name + suffix] for suffix in (".m_persKey", ".m_persIndex"))
            members = (_info(key), _info(index))
            infos[branch.name] = _info(
                branch, classify(branch.typename, None, has_link_members=True), None, members
            )
            continue
        if len(children) == 1 and children[0].name == branch.name:
            # the leaf of the same name carries the data (e.g. a scalar ElementLink), the parent its type
            infos[branch.name] = _info(children[0], typename=branch.typename)
            continue
        if children:
            continue
        if branch.name in infos:
            if getattr(branch.parent, "name", None) == branch.name:
                continue  # already catalogued through its parent
            raise PhysliteError(f"branch name {branch.name} occurs twice in the tree")
        infos[branch.name] = _info(branch)
    return infos


@dataclass(frozen=True)
class Catalogue:
    """A tree's branches (by name, in file order), its entries and the file's compression setting."""

    tree_name: str
    num_entries: int
    compression: str
    branches: dict[str, BranchInfo]


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


def _parse(source, tree: str) -> Catalogue:
    try:
        uproot_file = uproot.open(source.file_like(), object_cache=None, array_cache=None)
    except Exception as error:
        raise _header_error(source.location, error) from None
    try:
        try:
            ttree = uproot_file[tree]
        except uproot.KeyInFileError:
            trees = [k for k, c in uproot_file.classnames().items() if c in ("TTree", "ROOT::RNTuple")]
            raise TreeNotFoundError(
                f"{source.location} has no tree {tree!r} (trees in the file: {', '.join(trees) or 'none'})"
            ) from None
        except Exception as error:
            raise CorruptDataError(f"{source.location}: cannot read tree {tree!r} ({error})") from None
        try:
            branches = _catalogue(ttree)
        except PhysliteError:
            raise
        except Exception as error:
            raise CorruptDataError(
                f"{source.location}: cannot read the branches of {tree!r} ({error})"
            ) from None
        compression = uproot_file.file.compression
        setting = f"{type(compression).__name__} level {compression.level}" if compression else "none"
        return Catalogue(tree, int(ttree.num_entries), setting, branches)
    finally:
        uproot_file.close()


def _header_error(location: str, error: Exception) -> PhysliteError:
    if isinstance(error, PhysliteError):
        return error
    text = str(error).split("\n")[0]
    if "not a ROOT file" in text:
        return NotROOTFileError(f"{location} is not a ROOT file")
    return NotROOTFileError(
        f"{location}: cannot read the ROOT file header or directory ({text}); truncated file?"
    )
