"""Check that a benchmark file has the production layout and the source's values (with the project's uproot).

    .venv/bin/python tools/bench_data/verify_bench_file.py build/data/physlite_bench_50k.root \
        --source ../shared/data/PHYSLITE_example.root --entries 50000 [--full]

Exit status 0 when the file is valid, 1 with the reasons otherwise. Without --full only the cheap checks run
(entries, compression, cluster size, values of a few branches): they decide whether a cached file is reused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

TREE = "CollectionTree"
AUTO_FLUSH = 1000
MAX_BASKET = 128 * 1024
SAMPLE_BRANCHES = [
    "EventInfoAuxDyn.eventNumber",
    "AnalysisJetsAuxDyn.pt",
    "AnalysisElectronsAuxDyn.trackParticleLinks",
    "PrimaryVerticesAuxDyn.trackParticleLinks",
    "AnalysisMuonsAuxDyn.eta",
    "METAssoc_AnalysisMETAux.objectLinks",
]


def walk(branches):
    for branch in branches:
        yield branch
        yield from walk(branch.branches)


def check(path: Path, source: Path, entries: int, full: bool) -> list[str]:
    """The reasons why `path` is not a valid benchmark file (empty when it is)."""
    if not path.is_file():
        return [f"{path} does not exist"]
    problems = []
    try:
        file = uproot.open(path)
        tree = file[TREE]
    except Exception as err:  # any failure to open means: rebuild
        return [f"{path} cannot be opened as a ROOT file with {TREE}: {err}"]
    source_tree = uproot.open(source)[TREE]
    n_source = source_tree.num_entries
    if tree.num_entries != entries:
        problems.append(f"{tree.num_entries} entries, expected {entries}")
    compression = file.file.compression
    if type(compression).__name__ != "ZSTD" or compression.level != 5:
        problems.append(f"compression {compression}, expected ZSTD(5)")
    clusters = tree["EventInfoAuxDyn.eventNumber"].entry_offsets
    if list(np.diff(clusters[:-1])) != [AUTO_FLUSH] * (len(clusters) - 2):
        problems.append(f"clusters start at entries {clusters[:5]}..., expected one every {AUTO_FLUSH}")
    last_copy = (max(tree.num_entries, n_source) // n_source - 1) * n_source
    for name in SAMPLE_BRANCHES:
        expected = ak.flatten(source_tree[name].array(), axis=None)
        for start in (0, last_copy):
            got = ak.flatten(tree[name].array(entry_start=start, entry_stop=start + n_source), axis=None)
            if len(got) != len(expected) or not ak.all(got == expected):
                problems.append(f"{name}: entries {start}..{start + n_source} differ from the source")
    if full:
        largest = max(
            (
                (branch.basket_uncompressed_bytes(i), branch.name)
                for branch in walk(tree.branches)
                for i in range(branch.num_baskets)
            ),
            default=(0, ""),
        )
        print(f"largest basket: {largest[0]} bytes uncompressed ({largest[1]})")
        if largest[0] > MAX_BASKET:
            problems.append(f"basket of {largest[1]} has {largest[0]} bytes, more than {MAX_BASKET}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--full", action="store_true", help="also check every basket's size (slower)")
    args = parser.parse_args(argv)
    problems = check(args.path, args.source, args.entries, args.full)
    for problem in problems:
        print(f"verify_bench_file: {args.path}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.path}: valid ({args.path.stat().st_size / 1e6:.1f} MB)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
