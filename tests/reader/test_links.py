"""ElementLinks of every form come back as {m_persKey, m_persIndex} records with the right values."""

from __future__ import annotations

import awkward as ak
import numpy as np
import uproot

import physlite

LINK_RECORD = "{m_persKey: uint32, m_persIndex: uint32}"
MISSING_INDEX = 0xFFFFFFFF


def test_nested_links_have_record_type(physlite_path):
    with physlite.open(physlite_path) as f:
        links = f.array("AnalysisElectronsAuxDyn.trackParticleLinks")
    assert str(links.type.content) == f"var * var * {LINK_RECORD}"
    keys = ak.flatten(links.m_persKey, axis=None)
    assert len(keys) > 0 and (np.asarray(keys) != 0).any()


def test_split_links_join_their_member_branches(physlite_path):
    name = (
        "AnalysisElectronsAuxDyn.ambiguityLink"
        if "example" in physlite_path.name
        else "AnalysisMuonsAuxDyn.inDetTrackParticleLink"
    )
    with physlite.open(physlite_path) as f:
        joined = f.array(name)
        key, index = f.array(name + ".m_persKey"), f.array(name + ".m_persIndex")
    assert str(joined.type.content) == f"var * {LINK_RECORD}"
    assert ak.array_equal(joined.m_persKey, key) and ak.array_equal(joined.m_persIndex, index)


def _memberwise_entries_are_jet_lists(links: ak.Array) -> int:
    """Each entry: links to jets 0..n-2 of one container, then an empty link (key 0, index 0xffffffff)."""
    jet_keys = set()
    for entry in links.to_list():
        assert entry[-1] == {"m_persKey": 0, "m_persIndex": MISSING_INDEX}
        body = entry[:-1]
        assert [link["m_persIndex"] for link in body] == list(range(len(body)))
        jet_keys |= {link["m_persKey"] for link in body}
    assert len(jet_keys) == 1
    return jet_keys.pop()


def test_memberwise_jet_link_matches_the_split_r21_form(r21_path, r22_path):
    with physlite.open(r22_path) as f:
        assert f.info("METAssoc_AnalysisMETAux.jetLink").layout.kind.value == "link_vector"
        memberwise = f.array("METAssoc_AnalysisMETAux.jetLink")
    with physlite.open(r21_path) as f:
        split = f.array("METAssoc_AnalysisMETAux.jetLink")
    # same jet container key (AnalysisJets) in both releases, indices 0..n
    assert _memberwise_entries_are_jet_lists(memberwise) == _memberwise_entries_are_jet_lists(split)
    # and uproot 5.7 gets the member-wise form wrong (the reason for our own kernel)
    theirs = uproot.open(r22_path)["CollectionTree"]["METAssoc_AnalysisMETAux.jetLink"].array()
    assert not ak.array_equal(theirs, memberwise, check_parameters=False)


def test_scalar_link_decodes_the_raw_entry_bytes(r22_path):
    name = "EventInfoAuxDyn.hardScatterVertexLink"
    with physlite.open(r22_path) as f:
        link = f.array(name)
        assert f.typename(name).startswith("ElementLink<DataVector<xAOD::Vertex_v1>")
    assert str(link.type) == f"100 * {LINK_RECORD}"
    # independent decode: the last 8 bytes of each entry, from uproot's view of the basket
    leaf = uproot.open(r22_path)["CollectionTree"][name].branches[0]
    basket = leaf.basket(0)
    data, offsets = basket.data, basket.byte_offsets
    ends = offsets[1:]
    keys = [int.from_bytes(data[end - 8 : end - 4].tobytes(), "big") for end in ends]
    indices = [int.from_bytes(data[end - 4 : end].tobytes(), "big") for end in ends]
    assert link.m_persKey.to_list() == keys and link.m_persIndex.to_list() == indices
    assert keys[0] != 0


def test_vertex_link_key_names_the_primary_vertex_container(r22_path):
    # the hard-scatter vertex link and the tau vertex links point to the same container (PrimaryVertices)
    with physlite.open(r22_path) as f:
        hs = f.array("EventInfoAuxDyn.hardScatterVertexLink")
        tau = f.array("AnalysisTauJetsAuxDyn.vertexLink")
    tau_keys = set(ak.flatten(tau.m_persKey).to_list()) - {0}
    assert set(hs.m_persKey.to_list()) - {0} == tau_keys
