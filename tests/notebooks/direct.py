"""Numbers the tutorials must reproduce, computed here directly from the files with uproot and plain Python,
independently of physlite's reader and event model."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot
import vector

from physlite.events.sgkey import sgkey

GSF = "GSFTrackParticles"


def electron_count(path: Path) -> int:
    pt = uproot.open(path)["CollectionTree"]["AnalysisElectronsAuxDyn.pt"].array(library="ak")
    return int(ak.sum(ak.num(pt)))


def first_track_z0(path: Path) -> list[list[float | None]]:
    """Each electron's first GSF-track link followed by hand: z0 of the target, None for other keys."""
    key = sgkey(GSF, "xAOD::TrackParticle")
    tree = uproot.open(path)["CollectionTree"]
    links = tree["AnalysisElectronsAuxDyn.trackParticleLinks"].array(library="ak").to_list()
    z0 = tree[f"{GSF}AuxDyn.z0"].array(library="ak").to_list()
    return [
        [event_z0[of[0]["m_persIndex"]] if of and of[0]["m_persKey"] == key else None for of in event_links]
        for event_links, event_z0 in zip(links, z0, strict=True)
    ]


def assert_same_jagged(got: list[list[float | None]], expected: list[list[float | None]]) -> None:
    """Same structure, same missing values, same numbers (float32 precision)."""
    assert [len(event) for event in got] == [len(event) for event in expected]
    flat_got = [v for event in got for v in event]
    flat_expected = [v for event in expected for v in event]
    assert [v is None for v in flat_got] == [v is None for v in flat_expected]
    assert np.allclose([v for v in flat_got if v is not None], [v for v in flat_expected if v is not None])


def dielectron_masses(path: Path) -> np.ndarray:
    """m_ee [GeV] of events with exactly two tight electrons (pt > 25 GeV, |eta| < 2.47) of opposite charge."""
    tree = uproot.open(path)["CollectionTree"]
    names = ["pt", "eta", "phi", "m", "charge", "DFCommonElectronsLHTight"]
    el = tree.arrays([f"AnalysisElectronsAuxDyn.{n}" for n in names], library="ak", how=dict)
    el = {n: el[f"AnalysisElectronsAuxDyn.{n}"] for n in names}
    masses = []
    for pt, eta, phi, m, charge, tight in zip(*(el[n].to_list() for n in names), strict=True):
        chosen = [i for i in range(len(pt)) if pt[i] > 25e3 and abs(eta[i]) < 2.47 and tight[i] == 1]
        if len(chosen) == 2 and charge[chosen[0]] + charge[chosen[1]] == 0:
            a, b = (vector.obj(pt=pt[i], eta=eta[i], phi=phi[i], mass=m[i]) for i in chosen)
            masses.append((a + b).mass / 1000)
    return np.array(masses)


def jet_count(path: Path, min_pt: float) -> int:
    """Jets with pt > min_pt [MeV]."""
    pt = uproot.open(path)["CollectionTree"]["AnalysisJetsAuxDyn.pt"].array(library="np")
    return int(sum(np.count_nonzero(event > min_pt) for event in pt))
