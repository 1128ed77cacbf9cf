"""Benchmark of the event model (issue 3): the reference analysis on our model, on plain uproot + awkward +
vector, and on coffea's PHYSLITESchema (virtual mode), end to end (open, read, select) on one core; then the
bytes and branches each reads for a three-field selection.

Usage:
    python tools/bench/analysis.py [FILE] [--repeat N] [--json build/bench/analysis.json]

FILE defaults to build/data/physlite_bench_50k.root (``make bench-data``). Every implementation runs in its own
process with one thread (``PHYSLITE_THREADS=1``, uproot's default single-threaded decompression), ``--repeat``
times, each run opening the file afresh (physlite's per-process catalogue is dropped before every run, so
it reads the file's metadata each time, as uproot and coffea do); the table shows the best run's events per
second (wall) and events per CPU-second, and the first run of the process (which also loads compiled code).
All three use the
selection rules on inputs each prepares from its own reads, and must give identical counts: ``physlite`` runs
the reference analysis as shipped (compiled selection, :mod:`physlite.analysis.compiled`), ``physlite-awkward``
the awkward selection that uproot and coffea run too (:func:`physlite.analysis.reference.summarize`), so the
difference between those two rows is the selection and between ``physlite-awkward`` and ``uproot`` the data
access alone.

coffea notes: its ``Muons.trackParticle`` ignores the link's container key (r22 muons point into
``InDetForwardTrackParticles``, which the file does not hold, and coffea returns an InDetTrackParticles
object instead) and it cannot follow ``Jets.GhostTrack``; both are therefore taken from coffea's raw link
fields with the same key check as the plain version.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FILE = REPO / "build" / "data" / "physlite_bench_50k.root"
DEFAULT_JSON = REPO / "build" / "bench" / "analysis.json"
IMPLEMENTATIONS = ("physlite", "physlite-awkward", "uproot", "coffea")
THREE_FIELDS = ("AnalysisJetsAuxDyn.pt", "AnalysisJetsAuxDyn.eta", "AnalysisJetsAuxDyn.phi")
TARGETS = {"hz_per_core": 50_000, "vs_uproot": 3.0, "vs_coffea": 7.0}


# ------------------------------------------------------------------------------------------ implementations
def _indet_key() -> int:
    from physlite.events.sgkey import sgkey

    return sgkey("InDetTrackParticles", "xAOD::TrackParticle")


def _release(names) -> bool:
    """True for release 21 variable names."""
    return "AnalysisJetsAuxDyn.Jvt" in names


def _needed_branches(r21: bool) -> list[str]:
    el_iso = (
        "ptvarcone20_TightTTVA_pt1000" if r21 else "ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000"
    )
    electrons = [
        "pt",
        "eta",
        "phi",
        "m",
        "DFCommonElectronsLHLooseBL",
        "DFCommonElectronsLHTight",
        "topoetcone20",
    ]
    muons = ["pt", "eta", "phi", "topoetcone20", "topoetcone40", "ptvarcone30"]
    muons += ["DFCommonGoodMuon" if r21 else "DFCommonMuonPassIDCuts", "inDetTrackParticleLink"]
    jets = [
        "pt",
        "eta",
        "phi",
        "m",
        "Jvt" if r21 else "NNJvtPass",
        "NumTrkPt500",
        "SumPtTrkPt500",
        "GhostTrack",
    ]
    return (
        [f"AnalysisElectronsAuxDyn.{v}" for v in [*electrons, el_iso]]
        + [f"AnalysisMuonsAuxDyn.{v}" for v in muons]
        + [f"AnalysisJetsAuxDyn.{v}" for v in jets]
        + ["InDetTrackParticlesAuxDyn.qOverP", "InDetTrackParticlesAuxDyn.theta", "PrimaryVerticesAuxDyn.z"]
    )


def _link_inputs(key, index, n_tracks, indet: int):
    """Identity (local index, -1 for none) of linked InDet tracks with the key and range checks."""
    import awkward as ak

    valid = (key == indet) & (index < n_tracks)
    return ak.values_astype(ak.where(valid, index, -1), "int64")


def _inputs_from_arrays(get, n_tracks_source, r21: bool, indet: int):
    """The selection inputs from flat per-branch arrays (plain uproot or coffea's raw fields)."""
    import awkward as ak
    import numpy as np
    import vector

    from physlite.analysis.reference import first_or_zero

    vector.register_awkward()
    el_iso = (
        "ptvarcone20_TightTTVA_pt1000" if r21 else "ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000"
    )
    q_over_p, theta = get("InDetTrackParticlesAuxDyn.qOverP"), get("InDetTrackParticlesAuxDyn.theta")
    n_tracks = ak.num(n_tracks_source, axis=1)
    track_pt = np.abs(np.sin(theta) / q_over_p)
    key, index = get("AnalysisMuonsAuxDyn.inDetTrackParticleLink")
    id_track = _link_inputs(key, index, n_tracks, indet)
    padded = ak.pad_none(track_pt, 1, axis=1)
    id_pt = ak.mask(padded[ak.where(id_track >= 0, id_track, 0)], id_track >= 0)
    ghost_key, ghost_index = get("AnalysisJetsAuxDyn.GhostTrack")
    ghosts = _link_inputs(ghost_key, ghost_index, n_tracks, indet)
    electrons = ak.zip(
        {
            "pt": get("AnalysisElectronsAuxDyn.pt"),
            "eta": get("AnalysisElectronsAuxDyn.eta"),
            "phi": get("AnalysisElectronsAuxDyn.phi"),
            "m": get("AnalysisElectronsAuxDyn.m"),
            "loose": get("AnalysisElectronsAuxDyn.DFCommonElectronsLHLooseBL") == 1,
            "tight": get("AnalysisElectronsAuxDyn.DFCommonElectronsLHTight") == 1,
            "topoetcone20": get("AnalysisElectronsAuxDyn.topoetcone20"),
            "ptvarcone": get(f"AnalysisElectronsAuxDyn.{el_iso}"),
        },
        with_name="Momentum4D",
    )
    mu_pt = get("AnalysisMuonsAuxDyn.pt")
    muons = ak.zip(
        {
            "pt": mu_pt,
            "eta": get("AnalysisMuonsAuxDyn.eta"),
            "phi": get("AnalysisMuonsAuxDyn.phi"),
            "m": ak.full_like(mu_pt, 105.6583755),
            "good": get("AnalysisMuonsAuxDyn." + ("DFCommonGoodMuon" if r21 else "DFCommonMuonPassIDCuts"))
            == 1,
            "topoetcone20": get("AnalysisMuonsAuxDyn.topoetcone20"),
            "topoetcone40": get("AnalysisMuonsAuxDyn.topoetcone40"),
            "ptvarcone30": get("AnalysisMuonsAuxDyn.ptvarcone30"),
            "id_pt": id_pt,
            "id_track": id_track,
        },
        with_name="Momentum4D",
    )
    jet_pt, jet_eta = get("AnalysisJetsAuxDyn.pt"), get("AnalysisJetsAuxDyn.eta")
    jvt = get("AnalysisJetsAuxDyn.Jvt") > 0.2 if r21 else get("AnalysisJetsAuxDyn.NNJvtPass") != 0
    jets = ak.zip(
        {
            "pt": jet_pt,
            "eta": jet_eta,
            "phi": get("AnalysisJetsAuxDyn.phi"),
            "m": get("AnalysisJetsAuxDyn.m"),
            "jvt_pass": jvt,
            "ntrk500": first_or_zero(get("AnalysisJetsAuxDyn.NumTrkPt500")),
            "sumpt500": first_or_zero(get("AnalysisJetsAuxDyn.SumPtTrkPt500")),
            "ghost_tracks": ghosts,
        },
        depth_limit=2,
        with_name="Momentum4D",
    )
    has_vertex = ak.num(get("PrimaryVerticesAuxDyn.z"), axis=1) > 0
    return electrons, muons, jets, has_vertex


def run_physlite(path: str, chunk_size: int, compiled: bool = True):
    from physlite.analysis import run

    return run([path], mode="lazy", chunk_size=chunk_size, compiled=compiled)


def run_physlite_awkward(path: str, chunk_size: int):
    return run_physlite(path, chunk_size, compiled=False)


def run_uproot(path: str, chunk_size: int):
    import uproot

    from physlite.analysis.reference import AnalysisResult, summarize

    indet = _indet_key()
    total = AnalysisResult()
    with uproot.open(path) as file:
        tree = file["CollectionTree"]
        r21 = _release(set(tree.keys()))
        link = "AnalysisMuonsAuxDyn.inDetTrackParticleLink"
        names = [n for n in _needed_branches(r21) if n != link] + [f"{link}.m_persKey", f"{link}.m_persIndex"]
        for arrays in tree.iterate(names, step_size=chunk_size, how=dict):

            def get(name, arrays=arrays):
                if name == link:
                    return arrays[name + ".m_persKey"], arrays[name + ".m_persIndex"]
                if name.endswith("GhostTrack"):
                    return arrays[name].m_persKey, arrays[name].m_persIndex
                return arrays[name]

            inputs = _inputs_from_arrays(get, arrays["InDetTrackParticlesAuxDyn.qOverP"], r21, indet)
            total = total + summarize(*inputs, len(arrays["PrimaryVerticesAuxDyn.z"]))
    return total


def run_coffea(path: str, chunk_size: int):
    from coffea.nanoevents import NanoEventsFactory, PHYSLITESchema

    from physlite.analysis.reference import AnalysisResult, summarize

    indet = _indet_key()
    total = AnalysisResult()
    import uproot

    with uproot.open(path) as file:
        n_entries = file["CollectionTree"].num_entries
    for start in range(0, n_entries, chunk_size):
        stop = min(start + chunk_size, n_entries)
        events = NanoEventsFactory.from_root(
            {path: "CollectionTree"},
            schemaclass=PHYSLITESchema,
            mode="virtual",
            entry_start=start,
            entry_stop=stop,
        ).events()
        r21 = "Jvt" in events.Jets.fields

        def get(name, events=events):
            collection, field = name.split("AuxDyn.")
            physics = {
                "AnalysisElectrons": "Electrons",
                "AnalysisMuons": "Muons",
                "AnalysisJets": "Jets",
            }.get(collection, collection)
            value = events[physics][field]
            if field in ("inDetTrackParticleLink", "GhostTrack"):
                return value.m_persKey, value.m_persIndex
            return value

        inputs = _inputs_from_arrays(get, events.InDetTrackParticles.qOverP, r21, indet)
        total = total + summarize(*inputs, stop - start)
    return total


RUNNERS = {
    "physlite": run_physlite,
    "physlite-awkward": run_physlite_awkward,
    "uproot": run_uproot,
    "coffea": run_coffea,
}


# ------------------------------------------------------------------------------------------ bytes read
def _basket_owners(path: str) -> dict[int, str]:
    """File position of every basket of CollectionTree -> its branch name."""
    import uproot

    owners = {}
    with uproot.open(path) as file:
        for branch in file["CollectionTree"].itervalues(recursive=True):
            seeks = branch.member("fBasketSeek")[: branch.num_baskets]
            for seek in seeks:
                owners[int(seek)] = branch.name
    return owners


def _counting_source():
    import uproot.source.file

    ranges: list[tuple[int, int]] = []

    class CountingSource(uproot.source.file.MemmapSource):
        """uproot's local-file source, remembering every byte range asked for."""

        def chunk(self, start, stop):
            ranges.append((start, stop))
            return super().chunk(start, stop)

        def chunks(self, ranges, notifications):
            asked = list(ranges)
            CountingSource.ranges.extend(asked)
            return super().chunks(asked, notifications)

    CountingSource.ranges = ranges
    return CountingSource


def _summarise_ranges(ranges, owners):
    branches, basket_bytes = set(), 0
    for start, stop in ranges:
        if start in owners:
            branches.add(owners[start])
            basket_bytes += stop - start
    return {
        "branches": sorted(branches),
        "n_branches": len(branches),
        "basket_bytes": basket_bytes,
        "total_bytes": sum(stop - start for start, stop in ranges),
    }


def _reads(path: str, on_events, uproot_names: list[str], on_arrays) -> dict[str, dict]:
    """Bytes and branches each implementation reads for one small task (``on_events`` takes our or coffea's
    events, ``on_arrays`` uproot's arrays of ``uproot_names``); the task's result is kept for comparison."""
    import uproot

    import physlite.events
    from physlite.events.behavior import FACTORY_ATTR

    out = {}
    events = physlite.events.events(path)
    result = on_events(events)
    reader = events.attrs[FACTORY_ATTR].reader
    read = sorted(reader.branches_read)
    out["physlite"] = {
        "branches": read,
        "n_branches": len(read),
        "basket_bytes": int(sum(reader.info(b).compressed_bytes for b in read)),
        "total_bytes": None,
        "result": result,
    }
    owners = _basket_owners(path)
    source = _counting_source()
    source.ranges.clear()
    with uproot.open(path, handler=source) as file:
        arrays = file["CollectionTree"].arrays(uproot_names, how=dict)
        result = on_arrays(arrays)
    out["uproot"] = {**_summarise_ranges(source.ranges, owners), "result": result}
    try:
        from coffea.nanoevents import NanoEventsFactory, PHYSLITESchema

        source.ranges.clear()
        events = NanoEventsFactory.from_root(
            {path: "CollectionTree"},
            schemaclass=PHYSLITESchema,
            mode="virtual",
            uproot_options={"handler": source},
        ).events()
        result = on_events(events)
        out["coffea"] = {**_summarise_ranges(source.ranges, owners), "result": result}
    except Exception as error:  # report what coffea could not do instead of hiding the other figures
        out["coffea"] = {"error": f"{type(error).__name__}: {error}"}
    return out


def three_field_reads(path: str) -> dict[str, dict]:
    """Sum of phi of jets with pt > 25 GeV and |eta| < 2.5."""
    import awkward as ak

    def on_events(events):
        jets = events.Jets
        return float(ak.sum(jets[(jets.pt > 25_000) & (abs(jets.eta) < 2.5)].phi))

    def on_arrays(arrays):
        pt, eta, phi = (arrays[n] for n in THREE_FIELDS)
        return float(ak.sum(phi[(pt > 25_000) & (abs(eta) < 2.5)]))

    return _reads(path, on_events, list(THREE_FIELDS), on_arrays)


def vertex_count_reads(path: str) -> dict[str, dict]:
    """Number of primary vertices (the collection's size, no variable asked for)."""
    import awkward as ak

    def on_events(events):
        return int(ak.sum(ak.num(events.PrimaryVertices, axis=1)))

    def on_arrays(arrays):
        return int(ak.sum(ak.num(arrays["PrimaryVerticesAuxDyn.z"], axis=1)))

    return _reads(path, on_events, ["PrimaryVerticesAuxDyn.z"], on_arrays)


# ------------------------------------------------------------------------------------------ driver
def _child(name: str, path: str, repeat: int, chunk_size: int) -> None:
    """Run one implementation ``repeat`` times in this process and print a JSON line."""
    warnings.filterwarnings("ignore")
    runs = []
    counts = None
    n_events = 0
    for _ in range(repeat):
        if name.startswith("physlite"):
            from physlite.reader.catalogue import forget_catalogues

            forget_catalogues()  # every run reads the file's metadata, as uproot's and coffea's runs do
        wall, cpu = time.perf_counter(), time.process_time()
        result = RUNNERS[name](path, chunk_size)
        runs.append({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu})
        counts, n_events = result.counts, result.n_events
    print(json.dumps({"name": name, "runs": runs, "counts": counts, "n_events": n_events}))


def measure(name: str, path: str, repeat: int, chunk_size: int) -> dict:
    env = {**os.environ, "PHYSLITE_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    command = [
        sys.executable,
        __file__,
        path,
        "--child",
        name,
        "--repeat",
        str(repeat),
        "--chunk-size",
        str(chunk_size),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {
            "name": name,
            "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed",
        }
    report = json.loads(done.stdout.strip().splitlines()[-1])
    best = min(report["runs"], key=lambda r: r["wall"])
    report["best_wall"] = best["wall"]
    report["best_cpu"] = best["cpu"]
    report["median_wall"] = statistics.median(r["wall"] for r in report["runs"])
    report["hz"] = report["n_events"] / best["wall"]
    # the first run of a process also loads the libraries' compiled code (numba kernels, awkward, ...)
    report["first_wall"] = report["runs"][0]["wall"]
    report["hz_first_run"] = report["n_events"] / report["first_wall"]
    report["hz_per_cpu_second"] = report["n_events"] / best["cpu"] if best["cpu"] else math.nan
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = os.path.abspath(args.file)
    if not os.path.isfile(path):
        print(f"analysis bench: no file {path} (make bench-data builds the default one)", file=sys.stderr)
        return 2
    if args.child:
        _child(args.child, path, args.repeat, args.chunk_size)
        return 0

    reports = {name: measure(name, path, args.repeat, args.chunk_size) for name in IMPLEMENTATIONS}
    reads = three_field_reads(path)
    vertex_reads = vertex_count_reads(path)
    ours = reports["physlite"]
    ok = [r for r in reports.values() if "error" not in r]
    identical = len(ok) == len(reports) and all(r["counts"] == ours.get("counts") for r in ok)
    summary = {
        "file": path,
        "n_events": ours.get("n_events"),
        "threads": 1,
        "repeat": args.repeat,
        "implementations": reports,
        "counts_identical": identical,
        "three_field_selection": reads,
        "vertex_count": vertex_reads,
        "targets": TARGETS,
    }
    if "error" not in ours:
        for other in ("uproot", "coffea"):
            if "error" not in reports[other]:
                summary[f"speedup_vs_{other}"] = ours["hz"] / reports[other]["hz"]
                summary[f"first_run_speedup_vs_{other}"] = (
                    ours["hz_first_run"] / reports[other]["hz_first_run"]
                )
                summary[f"cpu_speedup_vs_{other}"] = (
                    ours["hz_per_cpu_second"] / reports[other]["hz_per_cpu_second"]
                )

    print(f"reference analysis on {path} ({ours.get('n_events')} events), one thread, best of {args.repeat}")
    print(
        f"{'implementation':<16}{'events/s':>12}{'events/CPU-s':>14}{'wall [s]':>10}{'1st run ev/s':>14}  counts"
    )
    for name, report in reports.items():
        if "error" in report:
            print(f"{name:<16}{'failed':>12}  {report['error']}")
            continue
        jets = report["counts"]["Jets"]
        print(
            f"{name:<16}{report['hz']:>12,.0f}{report['hz_per_cpu_second']:>14,.0f}{report['best_wall']:>10.2f}"
            f"{report['hz_first_run']:>14,.0f}  jets {jets['baseline']}/{jets['passOR']}/{jets['signal']}"
        )
    if "error" not in reports["physlite-awkward"] and "error" not in reports["uproot"]:
        summary["data_access_speedup_vs_uproot"] = reports["physlite-awkward"]["hz"] / reports["uproot"]["hz"]
    print(f"counts identical: {identical}")
    for other, target in (("uproot", TARGETS["vs_uproot"]), ("coffea", TARGETS["vs_coffea"])):
        if f"speedup_vs_{other}" in summary:
            print(
                f"physlite vs {other}: {summary[f'speedup_vs_{other}']:.1f}x wall, "
                f"{summary[f'cpu_speedup_vs_{other}']:.1f}x per CPU-second (target >= {target}x)"
            )
    if "data_access_speedup_vs_uproot" in summary:
        print(
            f"same awkward selection, data access only: physlite-awkward vs uproot "
            f"{summary['data_access_speedup_vs_uproot']:.1f}x wall"
        )
    print(f"target: >= {TARGETS['hz_per_core']:,} events/s per core")
    for title, table in (
        ("three-field selection (Jets pt, eta, phi)", reads),
        ("vertex count (size of PrimaryVertices; plain uproot reads PrimaryVerticesAuxDyn.z)", vertex_reads),
    ):
        print(f"\n{title}:")
        for name, read in table.items():
            if "error" in read:
                print(f"  {name:<10} failed: {read['error']}")
                continue
            branches = ", ".join(b.split(".", 1)[-1] for b in read["branches"])
            print(
                f"  {name:<10} {read['n_branches']:>3} branches {read['basket_bytes'] / 1e6:>8.2f} MB  {branches}"
            )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {args.json}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
