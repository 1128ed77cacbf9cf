"""The reference analysis on the PHYSLITE event model: object selection with overlap removal, histograms, counts.

Release-dependent variables (the file decides, by which variables it has):

============================  =====================================  ===========================================
what                          release 21                             release 22 and later
============================  =====================================  ===========================================
jet vertex tagger             ``Jvt > 0.2``                          ``NNJvtPass``
muon quality                  ``DFCommonGoodMuon``                   ``DFCommonMuonPassIDCuts``
electron track isolation      ``ptvarcone20_TightTTVA_pt1000``       ``ptvarcone30_Nonprompt_All_MaxWeight``
                                                                     ``TTVALooseCone_pt1000``
============================  =====================================  ===========================================

Links used: the muon's ID track (``Muons.inDetTrackParticle``) for its pt and identity, and the jets' ghost
tracks (``Jets.GhostTrack``); a link's identity is the position of its target in its collection (the hidden
``_idx_`` field), so a muon track and a ghost track match only when they are the same object of the same
container. Events without a primary vertex are skipped. All momenta in MeV.

Example:
    >>> import physlite.events
    >>> result = run_chunk(physlite.events("PHYSLITE_example.root"))   # doctest: +SKIP
    >>> result.counts["Jets"]["signal"]                                 # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import hist
import numpy as np

from physlite.analysis.selection import Selected, select
from physlite.errors import PhysliteError

COLLECTIONS = ("Electrons", "Muons", "Jets")
FLAGS = ("baseline", "passOR", "signal")

# The branches the reference analysis reads (by collection), for the event model's `collections=` option.
NEEDED_COLLECTIONS = ["Electrons", "Muons", "Jets", "InDetTrackParticles", "PrimaryVertices"]


def release_variables(
    electron_fields: list[str], muon_fields: list[str], jet_fields: list[str]
) -> dict[str, str]:
    """The variables of this release for JVT, muon quality and electron track isolation.

    Example:
        >>> release_variables(["ptvarcone20_TightTTVA_pt1000"], ["DFCommonGoodMuon"], ["Jvt"])["jvt"]
        'Jvt'
    """
    chosen = {}
    for key, fields, candidates in (
        ("jvt", jet_fields, ["NNJvtPass", "Jvt"]),
        ("muon_quality", muon_fields, ["DFCommonMuonPassIDCuts", "DFCommonGoodMuon"]),
        (
            "electron_isolation",
            electron_fields,
            ["ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000", "ptvarcone20_TightTTVA_pt1000"],
        ),
    ):
        found = [c for c in candidates if c in fields]
        if not found:
            raise PhysliteError(f"reference analysis: none of {', '.join(candidates)} in the file")
        chosen[key] = found[0]
    return chosen


def jvt_decision(jets: ak.Array, variable: str) -> ak.Array:
    """The jet vertex tagger decision inside its region (pt 20-60 GeV, |eta| < 2.4)."""
    if variable == "Jvt":
        return jets.Jvt > 0.2
    return jets[variable] != 0


def first_or_zero(values: ak.Array) -> ak.Array:
    """The first entry of a per-vertex vector variable (jets' NumTrkPt500, SumPtTrkPt500), 0 when empty.

    Integers come out as int64, floats as float64 (what ``ak.fill_none(ak.firsts(...), 0)`` gives), computed
    from the innermost offsets directly.

    Example:
        >>> first_or_zero(ak.Array([[[3, 1], []], [[7]]])).tolist()
        [[3, 0], [7]]
    """

    def innermost(layout, **kwargs):
        if layout.is_list and layout.content.is_numpy:
            packed = layout.to_ListOffsetArray64(True)
            offsets = np.asarray(packed.offsets.data)
            data = np.asarray(packed.content.data)
            wide = np.int64 if data.dtype.kind in "iub" else np.float64
            out = np.zeros(len(offsets) - 1, dtype=wide)
            filled = offsets[1:] > offsets[:-1]
            out[filled] = data[offsets[:-1][filled]]
            return ak.contents.NumpyArray(out)
        return None

    return ak.transform(innermost, values)


def inputs_from_events(events: ak.Array) -> tuple[ak.Array, ak.Array, ak.Array, ak.Array]:
    """The selection's inputs (see :mod:`physlite.analysis.selection`) from our event model, and the mask of
    events with a primary vertex."""
    el, mu, jets = events.Electrons, events.Muons, events.Jets
    names = release_variables(el.fields, mu.fields, jets.fields)
    has_vertex = ak.num(events.PrimaryVertices.z, axis=1) > 0
    id_track = mu.inDetTrackParticle
    electrons = ak.zip(
        {
            "pt": el.pt,
            "eta": el.eta,
            "phi": el.phi,
            "m": el.m,
            "loose": el.DFCommonElectronsLHLooseBL == 1,
            "tight": el.DFCommonElectronsLHTight == 1,
            "topoetcone20": el.topoetcone20,
            "ptvarcone": el[names["electron_isolation"]],
        }
    )
    muons = ak.zip(
        {
            "pt": mu.pt,
            "eta": mu.eta,
            "phi": mu.phi,
            "m": mu.m,
            "good": mu[names["muon_quality"]] == 1,
            "topoetcone20": mu.topoetcone20,
            "topoetcone40": mu.topoetcone40,
            "ptvarcone30": mu.ptvarcone30,
            "id_pt": id_track.pt,
            "id_track": mu["_idx_inDetTrackParticleLink"],
        }
    )
    jet_inputs = ak.zip(
        {
            "pt": jets.pt,
            "eta": jets.eta,
            "phi": jets.phi,
            "m": jets.m,
            "jvt_pass": jvt_decision(jets, names["jvt"]),
            "ntrk500": first_or_zero(jets.NumTrkPt500),
            "sumpt500": first_or_zero(jets.SumPtTrkPt500),
            "ghost_tracks": jets["_idx_GhostTrackLinks"],
        },
        depth_limit=2,
    )
    return electrons, muons, jet_inputs, has_vertex


def new_histograms() -> dict[str, hist.Hist]:
    """The histograms the reference analysis fills (MeV)."""
    return {
        "jet_pt": hist.Hist.new.Reg(50, 0, 500e3, name="pt", label="signal jet $p_T$ [MeV]").Double(),
        "electron_pt": hist.Hist.new.Reg(
            50, 0, 250e3, name="pt", label="signal electron $p_T$ [MeV]"
        ).Double(),
        "muon_pt": hist.Hist.new.Reg(50, 0, 250e3, name="pt", label="signal muon $p_T$ [MeV]").Double(),
        "n_jets": hist.Hist.new.Integer(0, 16, name="n", label="signal jets per event").Double(),
    }


@dataclass
class AnalysisResult:
    """Counts of selected objects and filled histograms; results of chunks add up."""

    n_events: int = 0
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {c: dict.fromkeys(FLAGS, 0) for c in COLLECTIONS}
    )
    histograms: dict[str, hist.Hist] = field(default_factory=new_histograms)

    def __add__(self, other: AnalysisResult) -> AnalysisResult:
        return AnalysisResult(
            n_events=self.n_events + other.n_events,
            counts={c: {f: self.counts[c][f] + other.counts[c][f] for f in FLAGS} for c in COLLECTIONS},
            histograms={k: self.histograms[k] + other.histograms[k] for k in self.histograms},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"n_events": self.n_events, "counts": self.counts}


def summarize(electrons, muons, jets, has_vertex, n_events: int) -> AnalysisResult:
    """Select objects in events with a vertex, count them and fill the histograms."""
    electrons, muons, jets = electrons[has_vertex], muons[has_vertex], jets[has_vertex]
    selected: Selected = select(electrons, muons, jets)
    result = AnalysisResult(n_events=n_events)
    for name, flags in (
        ("Electrons", selected.electrons),
        ("Muons", selected.muons),
        ("Jets", selected.jets),
    ):
        for flag in FLAGS:
            result.counts[name][flag] = int(ak.count_nonzero(getattr(flags, flag)))
    result.histograms["jet_pt"].fill(pt=np.asarray(ak.flatten(jets.pt[selected.jets.signal])))
    result.histograms["electron_pt"].fill(pt=np.asarray(ak.flatten(electrons.pt[selected.electrons.signal])))
    result.histograms["muon_pt"].fill(pt=np.asarray(ak.flatten(muons.pt[selected.muons.signal])))
    result.histograms["n_jets"].fill(n=np.asarray(ak.sum(selected.jets.signal, axis=1)))
    return result


def summarize_compiled(electrons, muons, jets, has_vertex, n_events: int) -> AnalysisResult:
    """:func:`summarize` with the compiled selection (:mod:`physlite.analysis.compiled`): same flags, one pass."""
    from physlite.analysis.compiled import select_compiled

    flags, values = select_compiled(electrons, muons, jets, has_vertex)
    result = AnalysisResult(n_events=n_events)
    for collection in COLLECTIONS:
        for flag in FLAGS:
            result.counts[collection][flag] = int(np.count_nonzero(flags[collection][flag]))
    for name, collection in (("jet_pt", "Jets"), ("electron_pt", "Electrons"), ("muon_pt", "Muons")):
        result.histograms[name].fill(pt=values[collection][1][flags[collection]["signal"]])
    counts = np.diff(values["Jets"][0])
    event_of_jet = np.repeat(np.arange(len(counts)), counts)
    per_event = np.bincount(event_of_jet, weights=flags["Jets"]["signal"], minlength=len(counts)).astype(
        np.int64
    )
    result.histograms["n_jets"].fill(n=per_event[np.asarray(has_vertex, dtype=bool)])
    return result


def run_chunk(events: ak.Array, compiled: bool = True) -> AnalysisResult:
    """The reference analysis on one chunk of events of our event model (lazy or eager); ``compiled=False``
    runs the awkward version of the selection (same counts)."""
    electrons, muons, jets, has_vertex = inputs_from_events(events)
    if compiled:
        return summarize_compiled(electrons, muons, jets, has_vertex, len(events))
    return summarize(electrons, muons, jets, has_vertex, len(events))
