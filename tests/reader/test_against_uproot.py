"""Every leaf that uproot reads correctly is read with equal values and type by physlite, on both real files."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

import physlite
from physlite.decode.layouts import Kind

# uproot 5.7 returns wrong values without an error for member-wise ElementLink vectors (see test_links.py)
UPROOT_WRONG = {"METAssoc_AnalysisMETAux.jetLink"}


def _uproot_readable(tree) -> dict[str, ak.Array]:
    arrays = {}
    for branch in tree.itervalues(recursive=True):
        if branch.branches or branch.name in UPROOT_WRONG:
            continue
        try:
            arrays[branch.name] = branch.array(library="ak")
        except Exception:
            continue
    return arrays


@pytest.fixture(scope="module")
def both(physlite_path):
    expected = _uproot_readable(uproot.open(physlite_path)["CollectionTree"])
    with physlite.open(physlite_path) as f:
        names = [name for name in expected if name in f]
        ours = f.arrays(names)
        kinds = {name: f.info(name).layout.kind for name in names}
    return expected, ours, kinds


def test_every_uproot_readable_leaf_is_read(both, physlite_path):
    expected, ours, _ = both
    # ~1000 readable leaves per file (r21: 1007, r22: 962 without the member-wise link)
    assert len(expected) > 950
    assert set(expected) <= set(ours), f"not read: {sorted(set(expected) - set(ours))[:10]}"


def test_values_and_types_equal_uproot(both):
    expected, ours, kinds = both
    differences = []
    for name, theirs in expected.items():
        mine = ours[name]
        same_type = str(ak.without_parameters(mine).type) == str(ak.without_parameters(theirs).type)
        if not same_type or not ak.array_equal(mine, theirs, check_parameters=False, equal_nan=True):
            differences.append(f"{name} ({kinds[name].value}): {mine.type} vs {theirs.type}")
    assert not differences, "\n".join(differences[:20])


def test_every_layout_is_exercised(both, physlite_path):
    _, _, kinds = both
    used = set(kinds.values())
    assert {Kind.FIXED, Kind.VECTOR, Kind.NESTED, Kind.STRINGS, Kind.LINK_NESTED} <= used


def test_set_parameters_are_kept(r21_path):
    name = "EventInfoAuxDyn.streamTagRobs"
    with physlite.open(r21_path) as f:
        ours = f.array(name)
    theirs = uproot.open(r21_path)["CollectionTree"][name].array()
    assert ours.type == theirs.type


@pytest.mark.parametrize("start,stop", [(0, 1), (3, 17), (25, None), (-5, None), (10, 10)])
def test_entry_ranges_are_slices_of_the_whole(physlite_path, start, stop):
    names = [
        "AnalysisElectronsAuxDyn.pt",
        "AnalysisElectronsAuxDyn.trackParticleLinks",
        "AnalysisJetsAuxDyn.NumTrkPt500"
        if "21.2" in physlite_path.name
        else "AnalysisJetsAuxDyn.NumTrkPt1000",
        "AnalysisElectronsAuxDyn.ambiguityLink",
    ]
    with physlite.open(physlite_path) as f:
        whole = f.arrays(names)
        part = f.arrays(names, entry_start=start, entry_stop=stop)
    for name in names:
        assert ak.array_equal(part[name], whole[name][start:stop]), name


def test_one_thread_and_many_agree(r22_path):
    with physlite.open(r22_path, threads=1) as f1, physlite.open(r22_path, threads=4) as f4:
        names = [n for n in f1.keys() if f1.info(n).layout is not None]
        a1, a4 = f1.arrays(names), f4.arrays(names)
    assert all(ak.array_equal(a1[n], a4[n]) for n in names)


def test_branches_read_are_recorded(r22_path):
    with physlite.open(r22_path) as f:
        assert f.branches_read == set()
        f.arrays(["AnalysisMuonsAuxDyn.pt", "AnalysisMuonsAuxDyn.eta"])
        assert f.branches_read == {"AnalysisMuonsAuxDyn.pt", "AnalysisMuonsAuxDyn.eta"}


def test_numbers_are_native_little_endian(r22_path):
    with physlite.open(r22_path) as f:
        pt = f.array("AnalysisElectronsAuxDyn.pt")
    content = np.asarray(ak.flatten(pt))
    assert content.dtype == np.dtype("<f4")
    assert (content > 0).all() and (content < 1e7).all()  # MeV
