"""`make bench` for the reader: physlite against uproot and the decompression ceiling, side by side.

In one process, alternating, median of --repeat runs: (a) all 2-D ElementLink branches, (b) all leaves that
uproot reads correctly. Prints seconds, MB/s (uncompressed), events/s and ratios; writes build/bench/reader.json.
Also measures, in fresh processes, the first decode with the kernel cache and with an empty cache (compilation).

Example:
    python tools/bench/reader.py --file build/data/physlite_bench_50k.root --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uproot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ceiling import decompress_and_copy

import physlite
from physlite.decode.layouts import Kind
from physlite.reader.file import default_threads

UPROOT_WRONG = {"METAssoc_AnalysisMETAux.jetLink"}  # uproot 5.7 misreads the member-wise form
FIRST_DECODE = """
import time; t0 = time.perf_counter()
import physlite; t1 = time.perf_counter()
f = physlite.open({path!r}); t2 = time.perf_counter()
f.arrays([{branch!r}], entry_stop=1000); t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _case(f, tree, names: list[str], repeat: int, threads: int) -> dict:
    mb = sum(f.info(n).uncompressed_bytes for n in names) / 1e6
    runs: dict[str, list[float]] = {"physlite": [], "physlite_1thread": [], "uproot": [], "ceiling": []}
    for _ in range(repeat):
        f.threads = threads
        runs["physlite"].append(_timed(lambda: f.arrays(names)))
        runs["uproot"].append(_timed(lambda: tree.arrays(names, library="ak")))
        runs["ceiling"].append(_timed(lambda: decompress_and_copy(f, names, threads)))
        f.threads = 1
        runs["physlite_1thread"].append(_timed(lambda: f.arrays(names)))
    f.threads = threads
    result = {
        "branches": len(names),
        "uncompressed_MB": round(mb, 1),
        "entries": f.num_entries,
        "methods": {},
    }
    for method, times in runs.items():
        seconds = statistics.median(times)
        result["methods"][method] = {
            "seconds": round(seconds, 3),
            "runs": [round(t, 3) for t in times],
            "MB_per_s": round(mb / seconds, 1),
            "events_per_s": round(f.num_entries / seconds),
        }
    m = result["methods"]
    result["speedup_vs_uproot"] = round(m["uproot"]["seconds"] / m["physlite"]["seconds"], 2)
    result["fraction_of_ceiling"] = round(m["ceiling"]["seconds"] / m["physlite"]["seconds"], 3)
    return result


def _first_decode(path: str, branch: str) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as empty_cache:
        for label, env in (
            ("cached_kernels", {}),
            ("empty_cache_compiles", {"NUMBA_CACHE_DIR": empty_cache}),
        ):
            code = FIRST_DECODE.format(path=path, branch=branch)
            done = subprocess.run(
                [sys.executable, "-c", code],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=True,
            )
            imp, opening, decode = (float(x) for x in done.stdout.split())
            out[label] = {
                "import_s": round(imp, 3),
                "open_s": round(opening, 3),
                "first_decode_s": round(decode, 3),
            }
    return out


def _print_case(title: str, case: dict) -> None:
    print(
        f"\n{title}: {case['branches']} branches, {case['uncompressed_MB']} MB uncompressed, {case['entries']} events"
    )
    print(f"  {'method':<18}{'seconds':>9}{'MB/s':>9}{'kHz':>9}   runs")
    for method, m in case["methods"].items():
        print(
            f"  {method:<18}{m['seconds']:>9.3f}{m['MB_per_s']:>9.0f}{m['events_per_s'] / 1e3:>9.1f}   {m['runs']}"
        )
    print(
        f"  physlite vs uproot: {case['speedup_vs_uproot']:.1f}x faster;"
        f" physlite reaches {100 * case['fraction_of_ceiling']:.0f}% of the decompress+copy ceiling"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", default="build/data/physlite_bench_50k.root")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default="build/bench/reader.json")
    args = parser.parse_args()
    if not Path(args.file).is_file():
        sys.exit(f"benchmark file {args.file} is missing: run `make bench-data`")

    threads = default_threads()
    f = physlite.open(args.file)
    tree = uproot.open(args.file)["CollectionTree"]
    links = [
        n for n in f.keys() if f.info(n).layout is not None and f.info(n).layout.kind is Kind.LINK_NESTED
    ]
    leaves = []
    for branch in tree.itervalues(recursive=True):
        if branch.branches or branch.name in UPROOT_WRONG or branch.name not in f:
            continue
        if f.info(branch.name).layout is not None and not isinstance(
            branch.interpretation, uproot.interpretation.identify.UnknownInterpretation
        ):
            leaves.append(branch.name)
    Path(args.file).read_bytes()  # page cache warm for everyone
    f.arrays(links[:1])  # kernel load outside the timings (measured separately below)
    decompress_and_copy(f, links[:1], threads)  # the ceiling's kernel is compiled here, not in the timings

    print(
        f"file {args.file}: {f.num_entries} events, {f.compression}, {threads} threads, median of {args.repeat}"
    )
    results = {
        "file": args.file,
        "entries": f.num_entries,
        "compression": f.compression,
        "threads": threads,
        "repeat": args.repeat,
        "uproot_version": uproot.__version__,
        "links_2d": _case(f, tree, links, args.repeat, threads),
    }
    _print_case("(a) all 2-D ElementLink branches", results["links_2d"])
    results["all_leaves"] = _case(f, tree, leaves, args.repeat, threads)
    _print_case("(b) all leaves uproot reads correctly", results["all_leaves"])
    results["first_decode"] = _first_decode(args.file, "AnalysisElectronsAuxDyn.pt")
    print("\nfirst decode in a fresh process (import / open / first arrays call):")
    for label, m in results["first_decode"].items():
        print(f"  {label:<22} {m['import_s']:.2f} s / {m['open_s']:.2f} s / {m['first_decode_s']:.2f} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
