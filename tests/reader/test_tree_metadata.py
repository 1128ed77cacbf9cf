"""physlite's own reading of the tree metadata gives exactly the records, and so the catalogue, that uproot's full
parse gives; uproot's parse is only the fallback input of the one catalogue builder."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

import physlite
import physlite.reader.catalogue as catalogue_module
from physlite.decode.layouts import Kind
from physlite.decode.typenames import layout_of_type, normal_name
from physlite.errors import UnsupportedTypeError
from physlite.io import open_source
from physlite.reader.catalogue import _own_tree_record, _streamers_of, branch_infos, load_catalogue
from physlite.reader.tree_metadata import UnknownLayout, read_tree
from physlite.reader.uproot_records import tree_record

FIELDS = ("name", "typename", "layout", "compressed_bytes", "uncompressed_bytes", "unsupported_reason")


def _both(path):
    """(entries, catalogue) from physlite's reader and from uproot's parse, and uproot's tree itself."""
    file = uproot.open(path, object_cache=None, array_cache=None)
    own = _own_tree_record(file, "CollectionTree")
    assert own is not None, "the tree reader refused a file it should read"
    ttree = file["CollectionTree"]
    fallback = tree_record(ttree)
    streamers = _streamers_of(file)
    fast, slow = branch_infos(own, streamers), branch_infos(fallback, streamers)
    return (own.num_entries, fast), (fallback.num_entries, slow), ttree


def _assert_same(fast: dict, slow: dict) -> None:
    assert list(fast) == list(slow)
    for name, ours in fast.items():
        theirs = slow[name]
        for info_ours, info_theirs in zip((ours, *ours.members), (theirs, *theirs.members), strict=True):
            for field in FIELDS:
                assert getattr(info_ours, field) == getattr(info_theirs, field), (name, field)
            for array in ("seeks", "nbytes", "first_entries"):
                assert np.array_equal(getattr(info_ours, array), getattr(info_theirs, array)), (name, array)


def _assert_as_uproot_sees_it(catalogue: dict, ttree) -> None:
    """Type names, sizes and baskets agree with uproot's own view of each branch (uproot as the oracle)."""
    for name, info in catalogue.items():
        branch = ttree[name]
        assert info.typename == branch.typename, name
        data = branch.branches[0] if [c.name for c in branch.branches] == [name] else branch
        n = data.num_baskets
        assert np.array_equal(info.seeks, data.member("fBasketSeek")[:n]), name
        assert np.array_equal(info.first_entries[:-1], data.member("fBasketEntry")[:n]), name
        if not info.members:
            assert (info.compressed_bytes, info.uncompressed_bytes) == (
                data.member("fZipBytes"),
                data.member("fTotBytes"),
            ), name


@pytest.mark.parametrize("release", ["r21", "r22"])
def test_same_catalogue_as_uproot_on_real_files(release, r21_path, r22_path):
    (entries, fast), (uproot_entries, slow), ttree = _both(r21_path if release == "r21" else r22_path)
    assert entries == uproot_entries == ttree.num_entries
    assert len(fast) > 1400
    _assert_same(fast, slow)
    _assert_as_uproot_sees_it(fast, ttree)
    kinds = {info.layout.kind for info in fast.values() if info.layout is not None}
    r22_only = {Kind.LINK_SCALAR, Kind.LINK_VECTOR}  # r21 splits its one 1-D link member
    assert kinds == (set(Kind) if release == "r22" else set(Kind) - r22_only)


def test_same_catalogue_as_uproot_on_files_written_by_uproot(tmp_path):
    path = tmp_path / "written.root"
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, 3000)
    jagged = ak.unflatten(rng.normal(size=counts.sum()).astype(np.float32), counts)
    branches = {
        "x": jagged,
        "n": rng.integers(0, 100, 3000),
        "flag": rng.integers(0, 2, 3000).astype(bool),
        "u16": rng.integers(0, 60000, 3000).astype(np.uint16),
        "d": rng.normal(size=3000),
    }
    with uproot.recreate(path, compression=uproot.ZSTD(1)) as out:
        out.mktree(
            "CollectionTree", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        )
        for start in range(0, 3000, 1000):
            out["CollectionTree"].extend({k: v[start : start + 1000] for k, v in branches.items()})
    (entries, fast), (uproot_entries, slow), ttree = _both(path)
    assert entries == uproot_entries == 3000
    _assert_same(fast, slow)
    _assert_as_uproot_sees_it(fast, ttree)
    assert fast["x"].typename == "float[]" and fast["u16"].typename == "uint16_t"
    with physlite.open(path) as f:
        values = f.arrays(["x", "u16"])
    assert values["x"].tolist() == jagged.tolist()
    assert np.array_equal(values["u16"], branches["u16"])


def test_opening_uses_the_fast_reader(r22_path, monkeypatch):
    def refuse(ttree):
        raise AssertionError("uproot's full parse was used")

    monkeypatch.setattr(catalogue_module, "tree_record", refuse)
    catalogue_module._cache.clear()
    with physlite.open(r22_path) as f:
        assert len(f.arrays(["AnalysisElectronsAuxDyn.pt"])["AnalysisElectronsAuxDyn.pt"]) == 100


def test_uproot_is_the_fallback_for_what_the_reader_does_not_know(r21_path, monkeypatch):
    calls = []

    def unknown(data, key_length):
        calls.append(key_length)
        raise UnknownLayout("TTree version 99")

    monkeypatch.setattr(catalogue_module, "read_tree", unknown)
    catalogue_module._cache.clear()
    catalogue = load_catalogue(open_source(r21_path))
    assert calls and catalogue.num_entries == 40 and len(catalogue.branches) > 1400
    catalogue_module._cache.clear()
    with physlite.open(r21_path) as f:  # the fallback's catalogue reads the same values
        assert f.keys() == list(catalogue.branches)
        name = "AnalysisElectronsAuxDyn.pt"
        assert f.array(name).tolist() == uproot.open(r21_path)["CollectionTree"][name].array().tolist()


def test_damaged_tree_bytes_are_refused_not_misread(r22_path):
    with uproot.open(r22_path) as file:
        key = file.key("CollectionTree")
        chunk, _ = key.get_uncompressed_chunk_cursor()
        data = bytes(chunk.raw_data)
        length = key.fKeylen
    assert len(list(read_tree(data, length).walk())) > 1400
    for cut in (10, len(data) // 3, len(data) - 100):
        with pytest.raises(UnknownLayout):
            read_tree(data[:cut], length)
    flipped = bytearray(data)
    flipped[4:6] = b"\x00\x63"  # TTree version 99
    with pytest.raises(UnknownLayout, match="TTree version 99"):
        read_tree(bytes(flipped), length)


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        (
            "vector<vector<ElementLink<DataVector<xAOD::IParticle> > > >",
            "std::vector<std::vector<ElementLink<DataVector<xAOD::IParticle>>>>",
        ),
        ("vector<unsigned int>", "std::vector<uint32_t>"),
        ("vector<string>", "std::vector<std::string>"),
        ("vector<set<unsigned int> >", "std::vector<std::set<uint32_t>>"),
        ("ULong64_t", "uint64_t"),
        ("unsigned char", "uint8_t"),
    ],
)
def test_type_names_are_spelled_as_uproot_spells_them(written, normal):
    assert normal_name(written) == normal


def test_layouts_from_type_names():
    assert layout_of_type("vector<vector<vector<unsigned char> > >").depth == 3
    assert layout_of_type("vector<set<unsigned int> >").inner_parameters == (("__array__", "set"),)
    assert layout_of_type("unsigned int", headerless=True).header == 0
    assert layout_of_type("vector<ElementLink<DataVector<xAOD::Jet_v1> > >").kind is Kind.LINK_VECTOR
    for unsupported in ("map<int,float>", "vector<vector<string> >", "vector<float", "xAOD::Jet_v1"):
        with pytest.raises(UnsupportedTypeError):
            layout_of_type(unsupported)
