"""Lazy mode reads only what is touched; eager, lazy and dask give the same values; bad input is reported."""

from __future__ import annotations

import awkward as ak
import dask
import pytest

import physlite.events
from physlite.errors import PhysliteError
from physlite.events.behavior import FACTORY_ATTR


def factory_of(events):
    return events.attrs[FACTORY_ATTR]


def _read(events):
    return set(factory_of(events).reader.branches_read)


def test_opening_reads_no_branch(events):
    assert _read(events) == set()
    assert "Electrons" in events.fields and "Jets" in events.fields


def test_one_field_reads_one_branch(events):
    total = ak.sum(events.Electrons.pt)
    assert total > 0
    assert _read(events) == {"AnalysisElectronsAuxDyn.pt"}


def test_three_field_selection_reads_three_branches(events):
    jets = events.Jets
    selected = jets[(jets.pt > 25_000) & (abs(jets.eta) < 2.5)]
    assert ak.count(selected.phi) > 0 and ak.sum(abs(selected.phi)) > 0
    assert _read(events) == {"AnalysisJetsAuxDyn.pt", "AnalysisJetsAuxDyn.eta", "AnalysisJetsAuxDyn.phi"}


def test_link_reads_link_branch_target_field_and_target_offsets(events):
    z0 = events.Electrons.trackParticles.z0
    assert ak.count(z0) > 0
    # the link branch, the field, and the target collection's offsets (from its phi branch)
    assert _read(events) == {
        "AnalysisElectronsAuxDyn.trackParticleLinks",
        "GSFTrackParticlesAuxDyn.z0",
        "GSFTrackParticlesAuxDyn.phi",
    }


def test_vertex_count_does_not_read_track_links(events):
    n = ak.num(events.PrimaryVertices, axis=1)
    assert ak.sum(n) > 0
    assert not any("trackParticleLinks" in b for b in _read(events))
    assert len(_read(events)) == 1


def test_four_vectors_in_mev(events):
    electrons = events.Electrons[ak.num(events.Electrons) >= 2]
    pair = electrons[:, 0] + electrons[:, 1]
    assert ak.all(pair.mass > 0)
    assert ak.all(electrons.mass == electrons["m"])
    j = events.Jets
    dr = j[:, :1].delta_r(j[:, 1:2])
    assert ak.all(ak.flatten(dr) >= 0)


def test_eager_lazy_and_dask_give_the_same_values(physlite_path):
    names = ["Electrons", "Jets", "InDetTrackParticles"]
    lazy = physlite.events.events(physlite_path, collections=names)
    eager = physlite.events.events(physlite_path, mode="eager", collections=names)
    assert set(factory_of(eager).reader.branches_read) >= {"AnalysisJetsAuxDyn.GhostTrack"}
    assert ak.to_list(lazy.Jets.GhostTrack.pt) == ak.to_list(eager.Jets.GhostTrack.pt)
    distributed = physlite.events.events(physlite_path, mode="dask", chunk_size=17, collections=names)
    assert distributed.npartitions == -(-len(lazy) // 17)
    pt = ak.concatenate(
        dask.compute(
            *[p.Electrons.pt for p in distributed.to_delayed(optimize_graph=False)], scheduler="sync"
        )
    )
    assert pt.tolist() == lazy.Electrons.pt.tolist()
    ghost = distributed.Jets.GhostTrack.pt.compute(optimize_graph=False, scheduler="sync")
    assert ghost.tolist() == lazy.Jets.GhostTrack.pt.tolist()


def test_several_files_read_as_one(r21_path, r22_path):
    both = physlite.events.events([r21_path, r22_path], collections=["Electrons"])
    one = physlite.events.events(r21_path, collections=["Electrons"])
    two = physlite.events.events(r22_path, collections=["Electrons"])
    assert len(both) == len(one) + len(two)
    assert both.Electrons.pt.tolist() == one.Electrons.pt.tolist() + two.Electrons.pt.tolist()


def test_entry_range(r22_path):
    part = physlite.events.events(r22_path, entry_start=10, entry_stop=20)
    full = physlite.events.events(r22_path)
    assert part.Electrons.pt.tolist() == full.Electrons.pt[10:20].tolist()
    assert part.Electrons.trackParticles.z0.tolist() == full.Electrons.trackParticles.z0[10:20].tolist()


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nothing.root"
    with pytest.raises(PhysliteError, match=r"nothing\.root"):
        physlite.events.events(missing)


def test_not_a_root_file_is_named(tmp_path):
    bad = tmp_path / "notes.root"
    bad.write_text("this is not a ROOT file\n" * 20)
    with pytest.raises(PhysliteError, match=r"notes\.root"):
        physlite.events.events(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "fast"}, "unknown mode 'fast'"),
        ({"collections": ["Electronz"]}, "no collection named Electronz"),
        ({"entry_start": 5, "entry_stop": 2}, "bad entry range"),
    ],
)
def test_bad_settings_are_named(r22_path, kwargs, message):
    with pytest.raises(PhysliteError, match=message):
        physlite.events.events(r22_path, **kwargs)


def test_no_source_is_an_error():
    with pytest.raises(PhysliteError, match="no input files"):
        physlite.events.events([])


def test_module_is_callable(r22_path):
    assert len(physlite.events(r22_path)) == 100


def test_iterate_in_chunks(r21_path, r22_path):
    chunks = list(physlite.events.iterate([r21_path, r22_path], step_size=30, collections=["Electrons"]))
    assert [len(c) for c in chunks] == [30, 10, 30, 30, 30, 10]
    whole = physlite.events.events([r21_path, r22_path], collections=["Electrons"])
    assert [pt for c in chunks for pt in c.Electrons.pt.tolist()] == whole.Electrons.pt.tolist()
    with pytest.raises(PhysliteError, match="step_size must be positive"):
        next(physlite.events.iterate(r22_path, step_size=0))
