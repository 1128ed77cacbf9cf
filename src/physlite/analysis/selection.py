"""SUSY-style object selection with overlap removal, on prepared object arrays (all momenta in MeV).

The selection follows the one nikoladze/physlite_experiments describes, written fresh here. It works on three
record arrays (one list per event) that any data access layer can prepare - our event model
(:mod:`physlite.analysis.reference`), plain uproot, or coffea (``tools/bench/analysis.py``) - so the three
give identical counts:

- electrons: ``pt, eta, phi, m`` (four-vector), ``loose`` (LHLooseBL), ``tight`` (LHTight), ``topoetcone20``,
  ``ptvarcone`` (track isolation);
- muons: ``pt, eta, phi, m``, ``good`` (quality), ``topoetcone20``, ``topoetcone40``, ``ptvarcone30``,
  ``id_pt`` (pt of the ID track, None without one), ``id_track`` (identity of the ID track: any integer that is
  equal for the same track object, -1 for none);
- jets: ``pt, eta, phi, m``, ``jvt_pass`` (the release's JVT decision in its region), ``ntrk500`` and
  ``sumpt500`` (tracks with pt > 500 MeV from the primary vertex), ``ghost_tracks`` (identities of the
  ghost-associated tracks, same numbering as the muons' ``id_track``).

Overlap removal, in this order: muon-PFlow-jet (MuPFJetOverlapTool rules on the muon ID-track pt), jet-electron
(dR < 0.2), electron-jet (boosted cone min(0.4, 0.04 + 10 GeV/pt)), jet-muon (dR < 0.2 or the muon's ID track
ghost-associated to the jet, for jets with fewer than 3 tracks), muon-jet (boosted cone or ghost association).
Signal objects are baseline objects passing the overlap removal and the signal requirements.

Example:
    >>> flags = select(electrons, muons, jets)       # doctest: +SKIP
    >>> flags.electrons.signal                        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

GeV = 1000.0


@dataclass
class Flags:
    """Per-object flags ``baseline``, ``passOR`` and ``signal`` of one collection."""

    baseline: ak.Array
    passOR: ak.Array
    signal: ak.Array


@dataclass
class Selected:
    electrons: Flags
    muons: Flags
    jets: Flags


def _pairs(a: ak.Array, b: ak.Array) -> tuple[ak.Array, ak.Array]:
    return ak.unzip(ak.cartesian([a, b], nested=True))


def _delta_r(a: ak.Array, b: ak.Array) -> ak.Array:
    deta = a.eta - b.eta
    dphi = (a.phi - b.phi + np.pi) % (2 * np.pi) - np.pi
    return np.sqrt(deta**2 + dphi**2)


def _near(a: ak.Array, b: ak.Array, cone) -> ak.Array:
    """For each object of ``a``: is any object of ``b`` within ``cone(dR, a.pt)``?"""
    ax, bx = _pairs(a, b)
    return ak.any(cone(_delta_r(ax, bx), ax.pt), axis=-1)


def _fixed_cone(dr, pt):
    return dr < 0.2


def _boosted_cone(dr, pt):
    return dr < np.minimum(0.04 + 10 * GeV / pt, 0.4)


def _any_equal_per_event(values: ak.Array, candidates: ak.Array) -> ak.Array:
    """``values`` (any depth below the event) == any of the event's ``candidates`` (ignoring negatives)."""
    longest = int(ak.max(ak.num(candidates, axis=1), initial=0))
    found = ak.zeros_like(values, dtype=bool)
    padded = ak.fill_none(ak.pad_none(candidates, longest, axis=1), -1)
    for k in range(longest):  # a handful of muons per event: one broadcast per muon slot
        candidate = padded[:, k]
        found = found | ((values == candidate) & (candidate >= 0))
    return found


def _ghost_associated_jets(jets: ak.Array, muons: ak.Array) -> ak.Array:
    """For each jet: is the ID track of any of ``muons`` among its ghost-associated tracks?"""
    return ak.any(_any_equal_per_event(jets.ghost_tracks, muons.id_track), axis=-1)


def _ghost_associated_muons(muons: ak.Array, jets: ak.Array) -> ak.Array:
    """For each muon: is its ID track ghost-associated to any of ``jets``?"""
    ghosts = ak.flatten(jets.ghost_tracks, axis=2)
    tracks = muons.id_track
    longest = int(ak.max(ak.num(tracks, axis=1), initial=0))
    padded = ak.fill_none(ak.pad_none(tracks, longest, axis=1), -1)
    position = ak.local_index(tracks, axis=1)
    found = ak.zeros_like(tracks, dtype=bool)
    for k in range(longest):  # one pass over the event's ghost tracks per muon slot
        track = padded[:, k]
        hit = ak.any(ghosts == track, axis=1) & (track >= 0)
        found = found | ((position == k) & hit)
    return found


def _mu_pflow_jets(jets: ak.Array, muons: ak.Array) -> ak.Array:
    """Jets to remove by the muon-PFlow-jet rules (AssociationUtils MuPFJetOverlapTool defaults)."""
    jx, mx = _pairs(jets, muons)
    with np.errstate(divide="ignore", invalid="ignore"):  # jets without tracks: ratio inf, rule decides
        ratio = mx.id_pt / jx.sumpt500

    def requirement(x1, x2, y0, y1, y2):
        return (
            (mx.topoetcone40 < y0)
            | (mx.topoetcone40 < y0 + (y2 - y1) / (x2 - x1) * (ratio - x1))
            | (ratio > x2)
        )

    low = requirement(0.7, 0.85, 15 * GeV, 15 * GeV, 30 * GeV)
    high = requirement(0.6, 0.9, 5 * GeV, 5 * GeV, 30 * GeV)
    passes = ak.where(jx.ntrk500 < 4, low, high)
    return ak.fill_none(ak.any(passes & (_delta_r(jx, mx) < 0.4), axis=-1), False)


def select(electrons: ak.Array, muons: ak.Array, jets: ak.Array) -> Selected:
    """Baseline, overlap removal and signal flags of electrons, muons and jets (see the module doc)."""
    el_base = (electrons.loose) & (electrons.pt > 7 * GeV) & (np.abs(electrons.eta) < 2.47)
    mu_base = (muons.id_track >= 0) & (muons.good) & (muons.pt > 6 * GeV) & (np.abs(muons.eta) < 2.7)
    jet_base = jets.pt >= 20 * GeV
    in_jvt_region = (jets.pt >= 20 * GeV) & (jets.pt < 60 * GeV) & (np.abs(jets.eta) < 2.4)
    jet_jvt = ~in_jvt_region | jets.jvt_pass

    base_muons = muons[mu_base]
    base_electrons = electrons[el_base]

    jet_or = jet_base & ~_mu_pflow_jets(jets, base_muons)
    jet_or = jet_or & ~_near(jets, base_electrons, _fixed_cone)
    el_or = el_base & ~_near(electrons, jets[jet_or & jet_jvt], _boosted_cone)
    mu_jet = _near(jets, base_muons, _fixed_cone) | _ghost_associated_jets(jets, base_muons)
    jet_or = jet_or & ~(mu_jet & (jets.ntrk500 < 3))
    remaining = jets[jet_base & jet_or & jet_jvt]
    mu_or = mu_base & ~(_near(muons, remaining, _boosted_cone) | _ghost_associated_muons(muons, remaining))

    el_signal = (
        el_or
        & electrons.tight
        & (electrons.topoetcone20 / electrons.pt < 0.2)
        & (electrons.ptvarcone / electrons.pt < 0.15)
    )
    mu_signal = (
        mu_or
        & (np.abs(muons.eta) < 2.5)
        & (muons.topoetcone20 / muons.pt < 0.3)
        & (muons.ptvarcone30 / muons.pt < 0.15)
    )
    jet_signal = jet_or & jet_jvt & (np.abs(jets.eta) < 4.5)
    return Selected(
        electrons=Flags(el_base, el_or, el_signal),
        muons=Flags(mu_base, mu_or, mu_signal),
        jets=Flags(jet_base, jet_or, jet_signal),
    )
