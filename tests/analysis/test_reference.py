"""The reference analysis: same counts in every mode and chunking, matching a plain per-object loop."""

from __future__ import annotations

import json
import math

import pytest

import physlite
from physlite.analysis import cli_run, run
from physlite.analysis.reference import COLLECTIONS, FLAGS, release_variables
from physlite.events.sgkey import sgkey

INDET = sgkey("InDetTrackParticles", "xAOD::TrackParticle")


def _counts(result):
    return {c: dict(result.counts[c]) for c in COLLECTIONS}


@pytest.fixture(scope="module")
def both_releases(r21_path, r22_path):
    return [r21_path, r22_path]


def test_same_counts_in_eager_lazy_and_dask_and_any_chunking(both_releases):
    reference = run(both_releases, mode="lazy")
    assert reference.n_events == 140
    for mode, chunk in (("lazy", 7), ("eager", 33), ("dask", 25)):
        other = run(both_releases, mode=mode, chunk_size=chunk, scheduler="sync")
        assert other.n_events == 140
        assert _counts(other) == _counts(reference), mode
        for name, h in reference.histograms.items():
            assert (other.histograms[name].values(flow=True) == h.values(flow=True)).all(), (mode, name)


def test_flags_nest_and_histograms_hold_the_signal_objects(physlite_path):
    result = run([physlite_path])
    for c in COLLECTIONS:
        assert result.counts[c]["signal"] <= result.counts[c]["passOR"] <= result.counts[c]["baseline"]
    assert result.counts["Jets"]["baseline"] > 100
    assert result.histograms["jet_pt"].sum(flow=True) == result.counts["Jets"]["signal"]
    assert result.histograms["electron_pt"].sum(flow=True) == result.counts["Electrons"]["signal"]
    assert result.histograms["n_jets"].sum(flow=True) == result.n_events - _events_without_vertex(
        physlite_path
    )


def _events_without_vertex(path):
    with physlite.open(path) as f:
        z = f.arrays(["PrimaryVerticesAuxDyn.z"])["PrimaryVerticesAuxDyn.z"]
    return sum(1 for event in z if len(event) == 0)


def test_release_variables():
    r21 = release_variables(["ptvarcone20_TightTTVA_pt1000"], ["DFCommonGoodMuon"], ["Jvt"])
    assert r21 == {
        "jvt": "Jvt",
        "muon_quality": "DFCommonGoodMuon",
        "electron_isolation": "ptvarcone20_TightTTVA_pt1000",
    }
    r22 = release_variables(
        ["ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000"], ["DFCommonMuonPassIDCuts"], ["NNJvtPass"]
    )
    assert r22["jvt"] == "NNJvtPass"
    with pytest.raises(physlite.errors.PhysliteError, match="NNJvtPass, Jvt"):
        release_variables([], [], [])


# ------------------------------------------------------------------ an independent, plain loop version
def _dr(a, b):
    dphi = (a["phi"] - b["phi"] + math.pi) % (2 * math.pi) - math.pi
    return math.hypot(a["eta"] - b["eta"], dphi)


def _loop_counts(path):
    """The same selection, object by object, from raw branches (links by hand, no event model)."""
    with physlite.open(path) as f:
        keys = set(f.keys())
        r21 = "AnalysisJetsAuxDyn.Jvt" in keys
        el_iso = (
            "ptvarcone20_TightTTVA_pt1000"
            if r21
            else "ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000"
        )
        mu_good = "DFCommonGoodMuon" if r21 else "DFCommonMuonPassIDCuts"
        el_vars = [
            "pt",
            "eta",
            "phi",
            "DFCommonElectronsLHLooseBL",
            "DFCommonElectronsLHTight",
            "topoetcone20",
            el_iso,
        ]
        mu_vars = [
            "pt",
            "eta",
            "phi",
            mu_good,
            "topoetcone20",
            "topoetcone40",
            "ptvarcone30",
            "inDetTrackParticleLink",
        ]
        jet_vars = [
            "pt",
            "eta",
            "phi",
            "Jvt" if r21 else "NNJvtPass",
            "NumTrkPt500",
            "SumPtTrkPt500",
            "GhostTrack",
        ]
        names = (
            [f"AnalysisElectronsAuxDyn.{v}" for v in el_vars]
            + [f"AnalysisMuonsAuxDyn.{v}" for v in mu_vars]
            + [f"AnalysisJetsAuxDyn.{v}" for v in jet_vars]
            + [
                "InDetTrackParticlesAuxDyn.qOverP",
                "InDetTrackParticlesAuxDyn.theta",
                "PrimaryVerticesAuxDyn.z",
            ]
        )
        data = {k: v.tolist() for k, v in f.arrays(names).items()}
    counts = {c: dict.fromkeys(FLAGS, 0) for c in COLLECTIONS}

    def objects(prefix, variables, event):
        n = len(data[f"{prefix}.{variables[0]}"][event])
        return [{v: data[f"{prefix}.{v}"][event][i] for v in variables} for i in range(n)]

    for event in range(len(data["PrimaryVerticesAuxDyn.z"])):
        if not data["PrimaryVerticesAuxDyn.z"][event]:
            continue
        electrons = objects("AnalysisElectronsAuxDyn", el_vars, event)
        muons = objects("AnalysisMuonsAuxDyn", mu_vars, event)
        jets = objects("AnalysisJetsAuxDyn", jet_vars, event)
        q = data["InDetTrackParticlesAuxDyn.qOverP"][event]
        theta = data["InDetTrackParticlesAuxDyn.theta"][event]
        for mu in muons:
            link = mu["inDetTrackParticleLink"]
            ok = link["m_persKey"] == INDET and link["m_persIndex"] < len(q)
            mu["track"] = link["m_persIndex"] if ok else None
            mu["id_pt"] = abs(math.sin(theta[mu["track"]]) / q[mu["track"]]) if ok else None
        for jet in jets:
            jet["ghosts"] = {
                g["m_persIndex"]
                for g in jet["GhostTrack"]
                if g["m_persKey"] == INDET and g["m_persIndex"] < len(q)
            }
            jet["ntrk"] = jet["NumTrkPt500"][0] if jet["NumTrkPt500"] else 0
            jet["sumpt"] = jet["SumPtTrkPt500"][0] if jet["SumPtTrkPt500"] else 0.0
            region = 20e3 <= jet["pt"] < 60e3 and abs(jet["eta"]) < 2.4
            passes = jet["Jvt"] > 0.2 if r21 else jet["NNJvtPass"] != 0
            jet["jvt"] = (not region) or passes
            jet["base"] = jet["pt"] >= 20e3
        for el in electrons:
            el["base"] = el["DFCommonElectronsLHLooseBL"] == 1 and el["pt"] > 7e3 and abs(el["eta"]) < 2.47
        for mu in muons:
            mu["base"] = (
                mu["track"] is not None and mu[mu_good] == 1 and mu["pt"] > 6e3 and abs(mu["eta"]) < 2.7
            )
        base_mu = [m for m in muons if m["base"]]
        base_el = [e for e in electrons if e["base"]]

        def pflow_removes(jet, mu):
            ratio = mu["id_pt"] / jet["sumpt"] if jet["sumpt"] else math.inf
            x1, x2, y0, y1, y2 = (
                (0.7, 0.85, 15e3, 15e3, 30e3) if jet["ntrk"] < 4 else (0.6, 0.9, 5e3, 5e3, 30e3)
            )
            rule = (
                mu["topoetcone40"] < y0
                or mu["topoetcone40"] < y0 + (y2 - y1) / (x2 - x1) * (ratio - x1)
                or ratio > x2
            )
            return rule and _dr(jet, mu) < 0.4

        def boosted(a, b):
            return _dr(a, b) < min(0.04 + 10e3 / a["pt"], 0.4)

        for jet in jets:
            jet["or"] = jet["base"] and not any(pflow_removes(jet, m) for m in base_mu)
            jet["or"] = jet["or"] and not any(_dr(jet, e) < 0.2 for e in base_el)
        for el in electrons:
            el["or"] = el["base"] and not any(boosted(el, j) for j in jets if j["or"] and j["jvt"])
        for jet in jets:
            near = any(_dr(jet, m) < 0.2 or m["track"] in jet["ghosts"] for m in base_mu)
            jet["or"] = jet["or"] and not (near and jet["ntrk"] < 3)
        remaining = [j for j in jets if j["base"] and j["or"] and j["jvt"]]
        for mu in muons:
            mu["or"] = mu["base"] and not any(boosted(mu, j) or mu["track"] in j["ghosts"] for j in remaining)
        for el in electrons:
            el["signal"] = (
                el["or"]
                and el["DFCommonElectronsLHTight"] == 1
                and el["topoetcone20"] / el["pt"] < 0.2
                and el[el_iso] / el["pt"] < 0.15
            )
        for mu in muons:
            mu["signal"] = (
                mu["or"]
                and abs(mu["eta"]) < 2.5
                and mu["topoetcone20"] / mu["pt"] < 0.3
                and mu["ptvarcone30"] / mu["pt"] < 0.15
            )
        for jet in jets:
            jet["signal"] = jet["or"] and jet["jvt"] and abs(jet["eta"]) < 4.5
        for name, objs in (("Electrons", electrons), ("Muons", muons), ("Jets", jets)):
            for flag, key in (("baseline", "base"), ("passOR", "or"), ("signal", "signal")):
                counts[name][flag] += sum(1 for o in objs if o[key])
    return counts


def test_counts_match_a_plain_loop_over_raw_branches(physlite_path):
    assert _counts(run([physlite_path])) == _loop_counts(physlite_path)


def test_cli_run_prints_counts_and_writes_json(r21_path, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert cli_run([str(r21_path)], output=str(out), progress=False) == 0
    printed = capsys.readouterr().out
    assert "40 events" in printed and "Jets" in printed
    document = json.loads(out.read_text())
    assert document["n_events"] == 40
    assert document["counts"]["Jets"]["baseline"] == run([r21_path]).counts["Jets"]["baseline"]


def test_cli_run_bad_file_exits_non_zero(tmp_path, capsys):
    assert cli_run([str(tmp_path / "absent.root")], progress=False) == 2
    assert "absent.root" in capsys.readouterr().err


def test_physlite_run_analysis_command(r22_path, capsys):
    from physlite.cli import main

    assert main(["run", "analysis", str(r22_path), "--no-progress", "--chunk-size", "30"]) == 0
    assert "100 events" in capsys.readouterr().out
    assert main(["run", "analysis", str(r22_path), "--no-progress", "--chunk-size", "0"]) == 2
    assert "chunk size must be positive" in capsys.readouterr().err


def test_compiled_and_awkward_selections_agree(physlite_path):
    import physlite.events
    from physlite.analysis.reference import NEEDED_COLLECTIONS, run_chunk

    for start, stop in ((0, None), (3, 17), (38, 40)):
        events = physlite.events.events(
            physlite_path, collections=NEEDED_COLLECTIONS, entry_start=start, entry_stop=stop
        )
        compiled, plain = run_chunk(events, compiled=True), run_chunk(events, compiled=False)
        assert compiled.counts == plain.counts
        for name, h in plain.histograms.items():
            assert (compiled.histograms[name].values(flow=True) == h.values(flow=True)).all(), name
