"""uproot's full keys (``parent/leaf``) work wherever a branch name does, and keys() lists either form."""

from __future__ import annotations

import awkward as ak
import pytest
import uproot

import physlite
from physlite.errors import BranchNotFoundError
from physlite.events.source import ChainReader

SPLIT = "EventInfoAux./EventInfoAux.runNumber"  # a member of a split object in the r21 file


@pytest.mark.parametrize("release", ["r21", "r22"])
def test_full_paths_are_the_keys_uproot_lists(release, r21_path, r22_path):
    path = r21_path if release == "r21" else r22_path
    tree = uproot.open(path)["CollectionTree"]
    with physlite.open(path) as f:
        names, full = f.keys(), f.keys(full_paths=True)
        assert len(names) == len(full) > 1400
        assert set(full) <= set(tree.keys())
        for name, key in zip(names, full, strict=True):
            assert tree[key].name == name and f.info(key) is f.info(name) and key in f
    assert any("/" in key for key in full)


def test_split_members_read_by_their_uproot_key(r21_path):
    expected = uproot.open(r21_path)["CollectionTree"][SPLIT].array()
    with physlite.open(r21_path) as f:
        assert f.typename(SPLIT) == f.typename("EventInfoAux.runNumber") == "uint32_t"
        both = f.arrays([SPLIT, "EventInfoAux.runNumber", "AnalysisElectronsAuxDyn.pt"])
        assert list(both) == [SPLIT, "EventInfoAux.runNumber", "AnalysisElectronsAuxDyn.pt"]
        assert ak.to_list(both[SPLIT]) == ak.to_list(expected) == ak.to_list(both["EventInfoAux.runNumber"])
        assert f.branches_read == {"EventInfoAux.runNumber", "AnalysisElectronsAuxDyn.pt"}
        with pytest.raises(BranchNotFoundError, match=f"{r21_path.name}: no branch 'EventInfoAux./nothing'"):
            f.arrays(["EventInfoAux./nothing"])


def test_the_event_models_reader_takes_uproot_keys(r21_path):
    readers = [physlite.open(r21_path), physlite.open(r21_path)]
    chain = ChainReader(readers, [r21_path, r21_path])
    try:
        assert chain.typename(SPLIT) == "uint32_t"
        values = chain.arrays([SPLIT], 30, 50)[SPLIT]
        single = readers[0].arrays([SPLIT])[SPLIT]
        assert ak.to_list(values) == ak.to_list(single[30:]) + ak.to_list(single[:10])
    finally:
        chain.close()
