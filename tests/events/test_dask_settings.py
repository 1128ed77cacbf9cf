"""The dask-awkward 2025.3 / dask 2026 workaround stays as small as it can: importing physlite changes no dask
setting, dask mode sets dask-awkward's optimiser hook (minus the broken "layer-chains") unless the user set it, a
scoped block is available; and the known limit (whole-array reductions) is pinned so an upgrade that fixes it
shows up here. tests/analysis/test_dask_cluster.py computes on a scheduler in its own process."""

from __future__ import annotations

import json
import subprocess
import sys

import awkward as ak
import dask
import dask_awkward as dak
import pytest

import physlite.events
from physlite.events.dask import OPTIMIZER_KEYS, optimize_without_layer_chains, working_optimizations

IN_A_FRESH_PROCESS = """
import json, sys, dask, dask_awkward
import physlite.events, physlite.events.dask

def hooks():
    return [getattr(dask.config.get(key, None), "__name__", dask.config.get(key, None))
            for key in ("awkward_array_optimize", "awkward_scalar_optimize")]

seen = {"after_import": hooks()}
physlite.events(sys.argv[1], mode="dask", chunk_size=50)
seen["after_dask_mode"] = hooks()
seen["which"] = dask.config.get("awkward.optimization.which")
with dask.config.set(awkward_array_optimize=False):  # the user's choice: no optimisation at all
    physlite.events(sys.argv[1], mode="dask", chunk_size=50)
    seen["user_choice"] = hooks()
print(json.dumps(seen))
"""


def test_only_dask_mode_sets_the_optimizer_and_only_where_the_user_has_not(r22_path):
    done = subprocess.run(
        [sys.executable, "-c", IN_A_FRESH_PROCESS, str(r22_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["after_import"] == [None, None]  # importing physlite changes no dask setting
    assert seen["after_dask_mode"] == ["optimize_without_layer_chains"] * 2
    assert seen["which"] == ["columns", "layer-chains"]  # dask-awkward's own setting is left alone
    assert seen["user_choice"] == [False, "optimize_without_layer_chains"]


def test_working_optimizations_is_scoped_and_computes(r22_path):
    from dask_awkward.lib.optimize import all_optimizations  # dask-awkward's own optimiser

    events = physlite.events(r22_path, mode="dask", chunk_size=40)
    with dask.config.set({key: all_optimizations for key in OPTIMIZER_KEYS}):
        with working_optimizations():
            counts = dak.num(events.Muons.pt, axis=1).compute(scheduler="sync")
            assert dask.config.get(OPTIMIZER_KEYS[0]) is optimize_without_layer_chains
        assert dask.config.get(OPTIMIZER_KEYS[0]) is all_optimizations
        with pytest.raises(ValueError, match="Cannot fuse tasks"):  # what the workaround is for
            dak.num(events.Muons.pt, axis=1).compute(scheduler="sync")
    assert counts.tolist() == ak.num(physlite.events(r22_path).Muons.pt, axis=1).tolist()


def test_per_event_reductions_work_and_whole_array_ones_are_the_known_limit(r22_path):
    events = physlite.events(r22_path, mode="dask", chunk_size=40)
    per_event = dak.sum(events.Jets.pt, axis=1).compute(scheduler="sync")
    lazy = physlite.events(r22_path)
    assert per_event.tolist() == pytest.approx(ak.sum(lazy.Jets.pt, axis=1).tolist(), rel=1e-6)
    # dask-awkward 2025.3 with awkward 2.14: fails while building the graph. If this starts to pass, the
    # limitation documented in physlite.events.dask (and notebook 5) can go.
    with pytest.raises(TypeError, match="scalar conversion/promotion is disabled"):
        dak.sum(events.Jets.pt, axis=None)
