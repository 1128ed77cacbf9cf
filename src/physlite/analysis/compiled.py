"""The selection of :mod:`physlite.analysis.selection` as one compiled pass over the events (numba).

Same inputs, same rules, same order of overlap-removal steps and the same floating-point arithmetic as the
awkward version (float32 where awkward computes in float32, float64 for the muon-PFlow-jet track ratio), so
both give identical flags; the tests and ``make bench`` compare them. It walks each event once instead of
building jet x lepton products.

Example:
    >>> flags = select_compiled(electrons, muons, jets, has_vertex)   # doctest: +SKIP
    >>> flags["Jets"]["signal"]                                        # doctest: +SKIP
"""

from __future__ import annotations

import awkward as ak
import numba
import numpy as np

from physlite.events import buffers

_F = np.float32
_PI = _F(np.pi)
_TWO_PI = _F(2 * np.pi)
_GEV = 1000.0


@numba.njit(cache=True, inline="always")
def _dr(eta1, phi1, eta2, phi2):
    deta = eta1 - eta2
    dphi = (phi1 - phi2 + _PI) % _TWO_PI - _PI
    return np.sqrt(deta * deta + dphi * dphi)


@numba.njit(cache=True, inline="always")
def _boosted(dr, pt):
    cone = _F(0.04) + _F(10 * _GEV) / pt
    return dr < min(cone, _F(0.4))


@numba.njit(cache=True, inline="always")
def _pflow_rule(topo40, ratio, x1, x2, y0, y1, y2):
    return (topo40 < y0) or (np.float64(topo40) < y0 + (y2 - y1) / (x2 - x1) * (ratio - x1)) or (ratio > x2)


@numba.njit(cache=True, error_model="numpy")
def _select(
    has_vertex,
    eo, el_pt, el_eta, el_phi, el_loose, el_tight, el_topo20, el_iso,
    mo, mu_pt, mu_eta, mu_phi, mu_good, mu_topo20, mu_topo40, mu_iso, mu_id_pt, mu_id_track,
    jo, jet_pt, jet_eta, jet_phi, jet_jvt_pass, jet_ntrk, jet_sumpt, go, ghosts,
):  # fmt: skip
    n_el, n_mu, n_jet = len(el_pt), len(mu_pt), len(jet_pt)
    el_base = np.zeros(n_el, np.bool_)
    el_or = np.zeros(n_el, np.bool_)
    el_sig = np.zeros(n_el, np.bool_)
    mu_base = np.zeros(n_mu, np.bool_)
    mu_or = np.zeros(n_mu, np.bool_)
    mu_sig = np.zeros(n_mu, np.bool_)
    jet_base = np.zeros(n_jet, np.bool_)
    jet_or = np.zeros(n_jet, np.bool_)
    jet_sig = np.zeros(n_jet, np.bool_)
    jet_jvt = np.zeros(n_jet, np.bool_)
    for event in range(len(has_vertex)):
        if not has_vertex[event]:
            continue
        e0, e1 = eo[event], eo[event + 1]
        m0, m1 = mo[event], mo[event + 1]
        j0, j1 = jo[event], jo[event + 1]
        for i in range(e0, e1):
            el_base[i] = el_loose[i] and el_pt[i] > _F(7 * _GEV) and abs(el_eta[i]) < _F(2.47)
        for i in range(m0, m1):
            mu_base[i] = (
                mu_id_track[i] >= 0 and mu_good[i] and mu_pt[i] > _F(6 * _GEV) and abs(mu_eta[i]) < _F(2.7)
            )
        for j in range(j0, j1):
            jet_base[j] = jet_pt[j] >= _F(20 * _GEV)
            region = jet_pt[j] >= _F(20 * _GEV) and jet_pt[j] < _F(60 * _GEV) and abs(jet_eta[j]) < _F(2.4)
            jet_jvt[j] = (not region) or jet_jvt_pass[j]
        # 1. muon - PFlow jet
        for j in range(j0, j1):
            removed = False
            for m in range(m0, m1):
                if not mu_base[m]:
                    continue
                ratio = np.float64(mu_id_pt[m]) / jet_sumpt[j]
                if jet_ntrk[j] < 4:
                    rule = _pflow_rule(mu_topo40[m], ratio, 0.7, 0.85, 15 * _GEV, 15 * _GEV, 30 * _GEV)
                else:
                    rule = _pflow_rule(mu_topo40[m], ratio, 0.6, 0.9, 5 * _GEV, 5 * _GEV, 30 * _GEV)
                if rule and _dr(jet_eta[j], jet_phi[j], mu_eta[m], mu_phi[m]) < _F(0.4):
                    removed = True
            jet_or[j] = jet_base[j] and not removed
        # 2. jet - electron
        for j in range(j0, j1):
            for i in range(e0, e1):
                if el_base[i] and _dr(jet_eta[j], jet_phi[j], el_eta[i], el_phi[i]) < _F(0.2):
                    jet_or[j] = False
        # 3. electron - jet, boosted cone
        for i in range(e0, e1):
            removed = False
            for j in range(j0, j1):
                if (
                    jet_or[j]
                    and jet_jvt[j]
                    and _boosted(_dr(el_eta[i], el_phi[i], jet_eta[j], jet_phi[j]), el_pt[i])
                ):
                    removed = True
            el_or[i] = el_base[i] and not removed
        # 4. jet - muon: close or ghost-associated, for jets with few tracks
        for j in range(j0, j1):
            near = False
            for m in range(m0, m1):
                if not mu_base[m]:
                    continue
                if _dr(jet_eta[j], jet_phi[j], mu_eta[m], mu_phi[m]) < _F(0.2):
                    near = True
                for g in range(go[j], go[j + 1]):
                    if ghosts[g] == mu_id_track[m] and mu_id_track[m] >= 0:
                        near = True
            if near and jet_ntrk[j] < 3:
                jet_or[j] = False
        # 5. muon - remaining jets: boosted cone or ghost association
        for m in range(m0, m1):
            removed = False
            for j in range(j0, j1):
                if not (jet_base[j] and jet_or[j] and jet_jvt[j]):
                    continue
                if _boosted(_dr(mu_eta[m], mu_phi[m], jet_eta[j], jet_phi[j]), mu_pt[m]):
                    removed = True
                for g in range(go[j], go[j + 1]):
                    if ghosts[g] == mu_id_track[m] and mu_id_track[m] >= 0:
                        removed = True
            mu_or[m] = mu_base[m] and not removed
        for i in range(e0, e1):
            el_sig[i] = (
                el_or[i]
                and el_tight[i]
                and el_topo20[i] / el_pt[i] < _F(0.2)
                and el_iso[i] / el_pt[i] < _F(0.15)
            )
        for m in range(m0, m1):
            mu_sig[m] = (
                mu_or[m]
                and abs(mu_eta[m]) < _F(2.5)
                and mu_topo20[m] / mu_pt[m] < _F(0.3)
                and mu_iso[m] / mu_pt[m] < _F(0.15)
            )
        for j in range(j0, j1):
            jet_sig[j] = jet_or[j] and jet_jvt[j] and abs(jet_eta[j]) < _F(4.5)
    return el_base, el_or, el_sig, mu_base, mu_or, mu_sig, jet_base, jet_or, jet_sig


def _flat(array: ak.Array, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    got = buffers.flatten(array)
    data = got[".0.data"]
    return got[".offsets"], data if dtype is None else data.astype(dtype, copy=False)


def select_compiled(electrons: ak.Array, muons: ak.Array, jets: ak.Array, has_vertex: ak.Array):
    """Flags of the selection (``{collection: {flag: flat bool array}}``) and the objects' event offsets."""
    eo, el_pt = _flat(electrons.pt, np.float32)
    mo, mu_pt = _flat(muons.pt, np.float32)
    jo, jet_pt = _flat(jets.pt, np.float32)
    ghost_buffers = buffers.flatten(jets.ghost_tracks)
    id_pt = ak.fill_none(muons.id_pt, np.nan)
    flags = _select(
        np.asarray(has_vertex, dtype=np.bool_),
        eo, el_pt, _flat(electrons.eta, _F)[1], _flat(electrons.phi, _F)[1],
        _flat(electrons.loose, np.bool_)[1], _flat(electrons.tight, np.bool_)[1],
        _flat(electrons.topoetcone20, _F)[1], _flat(electrons.ptvarcone, _F)[1],
        mo, mu_pt, _flat(muons.eta, _F)[1], _flat(muons.phi, _F)[1], _flat(muons.good, np.bool_)[1],
        _flat(muons.topoetcone20, _F)[1], _flat(muons.topoetcone40, _F)[1], _flat(muons.ptvarcone30, _F)[1],
        _flat(id_pt, _F)[1], _flat(muons.id_track, np.int64)[1],
        jo, jet_pt, _flat(jets.eta, _F)[1], _flat(jets.phi, _F)[1], _flat(jets.jvt_pass, np.bool_)[1],
        _flat(jets.ntrk500, np.int64)[1], _flat(jets.sumpt500, np.float64)[1],
        ghost_buffers[".0.offsets"], ghost_buffers[".0.0.data"].astype(np.int64, copy=False),
    )  # fmt: skip
    names = ("baseline", "passOR", "signal")
    out = {
        "Electrons": dict(zip(names, flags[0:3], strict=True)),
        "Muons": dict(zip(names, flags[3:6], strict=True)),
        "Jets": dict(zip(names, flags[6:9], strict=True)),
    }
    values = {"Electrons": (eo, el_pt), "Muons": (mo, mu_pt), "Jets": (jo, jet_pt)}
    return out, values
