"""ElementLinks land on the right objects: checked by hand from the raw m_persKey and m_persIndex."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

import physlite.events
from physlite.events.eventformat import computed_key_map, read_event_format
from physlite.events.factory import container_classes
from physlite.events.model import open_model
from physlite.events.sgkey import sgkey

GSF = sgkey("GSFTrackParticles", "xAOD::TrackParticle")
INDET = sgkey("InDetTrackParticles", "xAOD::TrackParticle")
INDET_FORWARD = sgkey("InDetForwardTrackParticles", "xAOD::TrackParticle")


def _raw(f, *names):
    return f.arrays(list(names))


def test_electron_track_links_by_hand(events, raw):
    got = _raw(raw, "AnalysisElectronsAuxDyn.trackParticleLinks", "GSFTrackParticlesAuxDyn.z0")
    links, z0 = got["AnalysisElectronsAuxDyn.trackParticleLinks"], got["GSFTrackParticlesAuxDyn.z0"]
    resolved = events.Electrons.trackParticles.z0
    checked = 0
    for e in range(len(links)):
        for i in range(len(links[e])):
            for j in range(len(links[e][i])):
                key, index = int(links[e][i][j].m_persKey), int(links[e][i][j].m_persIndex)
                if key == GSF and index < len(z0[e]):
                    assert resolved[e][i][j] == z0[e][index]
                    checked += 1
                else:
                    assert resolved[e][i][j] is None
    assert checked >= 27
    # the first track of the first electron with one, spelled out
    e = next(e for e in range(len(links)) if len(links[e]) and len(links[e][0]))
    assert int(links[e][0][0].m_persKey) == GSF
    assert events.Electrons.trackParticle.z0[e][0] == z0[e][int(links[e][0][0].m_persIndex)]


def test_muon_id_track_by_hand_and_foreign_container_gives_none(events, raw):
    got = _raw(raw, "AnalysisMuonsAuxDyn.inDetTrackParticleLink", "InDetTrackParticlesAuxDyn.qOverP")
    links, q_over_p = (
        got["AnalysisMuonsAuxDyn.inDetTrackParticleLink"],
        got["InDetTrackParticlesAuxDyn.qOverP"],
    )
    resolved = events.Muons.inDetTrackParticle.qOverP
    seen = {"indet": 0, "other": 0}
    for e in range(len(links)):
        for i in range(len(links[e])):
            key, index = int(links[e][i].m_persKey), int(links[e][i].m_persIndex)
            if key == INDET:
                assert resolved[e][i] == q_over_p[e][index]
                seen["indet"] += 1
            else:  # empty (0) or a container the file does not hold (r22: InDetForwardTrackParticles)
                assert key in (0, INDET_FORWARD)
                assert resolved[e][i] is None
                seen["other"] += 1
    assert seen["indet"] >= 4


def test_r22_muon_link_into_forward_tracks_is_none_not_another_object(r22_path):
    events = physlite.events.events(r22_path)
    with physlite.open(r22_path) as f:
        links = f.arrays(["AnalysisMuonsAuxDyn.inDetTrackParticleLink"])[
            "AnalysisMuonsAuxDyn.inDetTrackParticleLink"
        ]
    forward = ak.flatten(links.m_persKey == INDET_FORWARD)
    assert ak.sum(forward) >= 1  # the file has such a link: it must not land in InDetTrackParticles
    assert ak.all(ak.is_none(ak.flatten(events.Muons.inDetTrackParticle), axis=0)[forward])


def test_jet_ghost_tracks_by_hand(events, raw):
    got = _raw(raw, "AnalysisJetsAuxDyn.GhostTrack", "InDetTrackParticlesAuxDyn.theta")
    links, theta = got["AnalysisJetsAuxDyn.GhostTrack"], got["InDetTrackParticlesAuxDyn.theta"]
    ghosts = events.Jets.GhostTrack.theta
    keys = ak.flatten(links.m_persKey, axis=None)
    expected = [
        theta[e][int(links[e][j][k].m_persIndex)]
        if int(links[e][j][k].m_persKey) == INDET and int(links[e][j][k].m_persIndex) < len(theta[e])
        else None
        for e in range(len(links))
        for j in range(len(links[e]))
        for k in range(len(links[e][j]))
    ]
    assert len(expected) == len(keys) and sum(x is not None for x in expected) >= 100
    flat = ak.flatten(ak.flatten(ghosts, axis=1), axis=1)
    assert flat.tolist() == expected


def test_trigger_matched_objects_are_electrons(events):
    name = "TrigMatch_HLT_e26_lhtight_nod0_ivarloose"
    matched = events[name].TrigMatchedObjects
    flat = ak.flatten(ak.flatten(matched, axis=2), axis=1)
    assert len(flat) > 0 and not ak.any(ak.is_none(flat))
    pts = set(ak.flatten(events.Electrons.pt).tolist())
    assert all(pt in pts for pt in flat.pt.tolist())


def test_truth_parents_and_children_round_trip(events):
    electrons = events.TruthElectrons
    parents = electrons.parents
    # every truth electron is among the children of each of its parents
    for e in range(len(electrons)):
        for i in range(len(electrons[e])):
            for parent in parents[e][i]:
                if parent is None:
                    continue
                children = [c.barcode for c in parent.children if c is not None]
                assert electrons[e][i].barcode in children
    assert ak.sum(ak.num(ak.flatten(parents, axis=1), axis=1)) > 0
    chain = electrons.parents.children.parents.pdgId
    assert ak.flatten(chain, axis=None).tolist()  # chains of any length resolve


def test_empty_link_gives_none(events, raw):
    links = raw.arrays(["AnalysisElectronsAuxDyn.truthParticleLink"])[
        "AnalysisElectronsAuxDyn.truthParticleLink"
    ]
    resolved = events.Electrons.truthParticle
    empty = ak.flatten(links.m_persKey == 0)
    assert ak.all(ak.is_none(ak.flatten(resolved), axis=0)[empty])


def test_key_map_from_event_format_and_from_names_agree(r21_path):
    model = open_model(r21_path)
    assert model.key_map_source == "EventFormat"
    from_file = read_event_format(r21_path)
    computed = computed_key_map(container_classes(model.reader, model.schema))
    agreed = 0
    for key, (name, _) in computed.items():
        if key in from_file:  # containers of unknown class get candidate hashes the file does not list
            assert from_file[key][0] == name
            agreed += 1
    assert agreed >= 30


def test_r22_file_without_event_format_uses_computed_hashes(r22_path):
    model = open_model(r22_path)
    assert model.key_map_source == "computed"
    assert model.key_map[INDET] == "InDetTrackParticles"


@pytest.mark.parametrize("field", ["pt", "eta"])
def test_track_kinematics_from_perigee(events, raw, field):
    got = raw.arrays(["InDetTrackParticlesAuxDyn.qOverP", "InDetTrackParticlesAuxDyn.theta"])
    q, theta = (ak.flatten(got[n]).to_numpy().astype(np.float64) for n in got)
    expected = np.abs(np.sin(theta) / q) if field == "pt" else -np.log(np.tan(theta / 2))
    np.testing.assert_allclose(ak.flatten(events.InDetTrackParticles[field]).to_numpy(), expected, rtol=1e-6)


def test_every_link_of_every_collection_resolves(events):
    factory = events.attrs["@physlite_events"]
    resolved = 0
    for name, spec in factory.schema.collections.items():
        for link in spec.links():
            targets = getattr(events[name], link.resolved)
            raw = events[name][link.name]
            missing = ak.flatten(ak.is_none(targets, axis=targets.ndim - 1), axis=None).to_numpy()
            empty = ak.flatten(raw.m_persKey == 0, axis=None).to_numpy()
            assert len(missing) == len(empty), (name, link.name)  # one result per link
            assert (missing | ~empty).all(), (name, link.name)  # an empty link is None
            resolved += 1
    assert resolved > 100


def test_r22_scalar_hard_scatter_vertex_link(r22_path):
    events = physlite.events.events(r22_path)
    with physlite.open(r22_path) as f:
        raw = f.arrays(["EventInfoAuxDyn.hardScatterVertexLink"])["EventInfoAuxDyn.hardScatterVertexLink"]
    z = events.PrimaryVertices.z
    expected = [z[e][int(raw[e].m_persIndex)] for e in range(len(raw))]
    assert events.EventInfo.hardScatterVertex.z.tolist() == expected
