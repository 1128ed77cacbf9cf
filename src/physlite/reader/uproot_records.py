"""The branch records of a TTree taken from uproot's parse of it: the fallback input of the catalogue.

physlite's own reader (:mod:`physlite.reader.tree_metadata`) knows the class versions ROOT has written since
6.00; for anything else uproot parses the tree, and this module copies the same members out of uproot's objects,
so that one builder (:func:`physlite.reader.catalogue.branch_infos`) turns either into branch information.

Example:
    >>> import uproot
    >>> record = tree_record(uproot.open("DAOD_PHYSLITE.art.pool.root")["CollectionTree"])  # doctest: +SKIP
    >>> record.num_entries  # doctest: +SKIP
    40
"""

from __future__ import annotations

import numpy as np

from physlite.reader.tree_metadata import BranchRecord, LeafRecord, TreeRecord


def tree_record(ttree) -> TreeRecord:
    """The :class:`TreeRecord` of an uproot ``TTree``: its name, entries and branches with their leaves."""
    return TreeRecord(ttree.name, int(ttree.num_entries), [_branch_record(b) for b in ttree.branches])


def _leaf_record(leaf) -> LeafRecord:
    return LeafRecord(
        cls=leaf.classname,
        name=leaf.member("fName"),
        title=leaf.member("fTitle"),
        length=int(leaf.member("fLen")),
        unsigned=bool(leaf.member("fIsUnsigned")),
        counted=leaf.member("fLeafCount") is not None,
    )


def _branch_record(branch) -> BranchRecord:
    element = branch.classname == "TBranchElement"
    record = BranchRecord(
        cls=branch.classname,
        name=branch.member("fName"),
        title=branch.member("fTitle"),
        num_entries=int(branch.member("fEntries")),
        total_bytes=int(branch.member("fTotBytes")),
        compressed_bytes=int(branch.member("fZipBytes")),
        write_basket=int(branch.member("fWriteBasket")),
        basket_bytes=np.asarray(branch.member("fBasketBytes")),
        basket_entry=np.asarray(branch.member("fBasketEntry")),
        basket_seek=np.asarray(branch.member("fBasketSeek")),
        embedded_baskets=len(branch.embedded_baskets or ()),
        leaves=[_leaf_record(leaf) for leaf in branch.member("fLeaves")],
        branches=[_branch_record(child) for child in branch.branches],
        class_name=branch.member("fClassName") if element else "",
        parent_name=branch.member("fParentName") if element else "",
        clones_name=branch.member("fClonesName") if element else "",
        class_version=int(branch.member("fClassVersion")) if element else 0,
        element_id=int(branch.member("fID")) if element else None,
        element_type=int(branch.member("fType")) if element else None,
        streamer_type=int(branch.member("fStreamerType")) if element else None,
    )
    for child in record.branches:
        child.parent = record
    return record
