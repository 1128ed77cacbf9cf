"""Our schema in coffea's NanoEventsFactory: truth four-vectors and key-checked links, equal to our model."""

from __future__ import annotations

import warnings

import awkward as ak
import coffea.nanoevents as coffea_nanoevents
import pytest
from coffea.nanoevents.schemas.physlite import PHYSLITESchema

import physlite.events
from physlite.events.coffea import PhysliteSchema


@pytest.fixture
def coffea_events(physlite_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return coffea_nanoevents.NanoEventsFactory.from_root(
            {str(physlite_path): "CollectionTree"}, schemaclass=PhysliteSchema, mode="virtual"
        ).events()


def test_truth_chains_work_and_match_our_model(coffea_events, events):
    ours = events.TruthElectrons.parents.children.pdgId
    theirs = coffea_events.TruthElectrons.parents.children.pdgId
    assert ak.to_list(theirs) == ak.to_list(ours)
    assert ak.all(coffea_events.TruthElectrons.pt > 0)


def test_links_are_key_checked_like_our_model(coffea_events, events):
    assert ak.to_list(coffea_events.Muons.inDetTrackParticle.z0) == ak.to_list(
        events.Muons.inDetTrackParticle.z0
    )
    assert ak.to_list(coffea_events.Jets.GhostTrack.z0) == ak.to_list(events.Jets.GhostTrack.z0)
    assert ak.to_list(coffea_events.Electrons.trackParticle.z0) == ak.to_list(
        events.Electrons.trackParticle.z0
    )


def test_muon_track_particle_is_the_combined_track_as_in_coffea(coffea_events, events, physlite_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        upstream = coffea_nanoevents.NanoEventsFactory.from_root(
            {str(physlite_path): "CollectionTree"}, schemaclass=PHYSLITESchema, mode="virtual"
        ).events()
    ours = ak.to_list(events.Muons.trackParticle.z0)
    assert ours == ak.to_list(events.Muons.combinedTrackParticle.z0)
    assert ours == ak.to_list(coffea_events.Muons.trackParticle.z0)
    # coffea's own schema resolves every link, also into containers the file does not hold (None here)
    theirs = ak.to_list(upstream.Muons.trackParticle.z0)
    compared = [
        (a, b)
        for event_a, event_b in zip(ours, theirs, strict=True)
        for a, b in zip(event_a, event_b, strict=True)
        if a is not None
    ]
    assert compared and all(a == b for a, b in compared)
    id_tracks = ak.to_list(events.Muons.inDetTrackParticle.z0)
    assert ours != id_tracks  # the ID track is a different track on combined muons


def test_coffea_processor_code_runs_unchanged(coffea_events):
    electrons = coffea_events.Electrons
    good = electrons[(electrons.pt > 7000) & (abs(electrons.eta) < 2.47)]
    jets = coffea_events.Jets
    pairs = ak.cartesian([good, jets], nested=True)
    dr = pairs["0"].delta_r(pairs["1"])
    assert ak.count(dr) == ak.sum(ak.num(good) * ak.num(jets))
    assert coffea_events.Jets["GhostTrack"].fields == ["m_persKey", "m_persIndex"]


def test_schema_events_match_physlite_events_field_values(coffea_events, physlite_path):
    ours = physlite.events.events(physlite_path, collections=["Jets"])
    assert ak.to_list(coffea_events.Jets.pt) == ak.to_list(ours.Jets.pt)


def test_dask_mode_links_match_virtual_mode(physlite_path, coffea_events):
    from physlite.events.dask import working_optimizations

    with warnings.catch_warnings(), working_optimizations():
        warnings.simplefilter("ignore")
        lazy = coffea_nanoevents.NanoEventsFactory.from_root(
            {str(physlite_path): "CollectionTree"}, schemaclass=PhysliteSchema, mode="dask"
        ).events()
        muons = lazy.Muons.inDetTrackParticle.z0.compute(scheduler="sync")
        parents = lazy.TruthElectrons.parents.children.pdgId.compute(scheduler="sync")
        ghosts = lazy.Jets.ghostTracks.z0.compute(scheduler="sync")
    assert muons.tolist() == coffea_events.Muons.inDetTrackParticle.z0.tolist()
    assert parents.tolist() == coffea_events.TruthElectrons.parents.children.pdgId.tolist()
    assert ghosts.tolist() == coffea_events.Jets.GhostTrack.z0.tolist()
