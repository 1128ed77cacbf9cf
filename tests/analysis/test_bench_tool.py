"""tools/bench/analysis.py: its implementations agree and it reports the branches each one reads."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench" / "analysis.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_analysis", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["uproot", "coffea"])
def test_other_implementations_give_our_counts(bench, physlite_path, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = bench.RUNNERS[name](str(physlite_path), 30)
    ours = bench.RUNNERS["physlite"](str(physlite_path), 30)
    assert theirs.n_events == ours.n_events
    assert theirs.counts == ours.counts


def test_reads_are_reported(bench, r22_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reads = bench.three_field_reads(str(r22_path))
        vertices = bench.vertex_count_reads(str(r22_path))
    assert reads["physlite"]["n_branches"] == 3
    assert reads["uproot"]["basket_bytes"] == reads["physlite"]["basket_bytes"] > 0
    assert reads["physlite"]["result"] == reads["uproot"]["result"] == reads["coffea"]["result"]
    assert vertices["physlite"]["branches"] == ["PrimaryVerticesAuxDyn.vertexType"]
    assert vertices["physlite"]["result"] == vertices["uproot"]["result"] == vertices["coffea"]["result"]


def test_bench_tool_names_a_missing_file(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), str(tmp_path / "none.root")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "none.root" in done.stderr and "make bench-data" in done.stderr
