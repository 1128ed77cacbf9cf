"""The dask-awkward 2025.3 / dask 2026 workaround stays as small as it can: importing physlite changes no dask
setting, dask mode removes only the broken "layer-chains" optimisation, a scoped block is available; and the
known limit (whole-array reductions) is pinned so an upgrade that fixes it shows up here."""

from __future__ import annotations

import json
import subprocess
import sys

import awkward as ak
import dask
import dask_awkward as dak
import pytest

import physlite.events
from physlite.events.dask import OPTIMIZATIONS_KEY, working_optimizations

IN_A_FRESH_PROCESS = """
import json, sys, dask, dask_awkward
import physlite.events, physlite.events.dask
seen = {"after_import": dask.config.get("awkward.optimization.which")}
physlite.events(sys.argv[1], mode="dask", chunk_size=50)
seen["after_dask_mode"] = dask.config.get("awkward.optimization.which")
with dask.config.set({"awkward.optimization.which": ["layer-chains"]}):
    physlite.events(sys.argv[1], mode="dask", chunk_size=50)
    seen["user_choice"] = dask.config.get("awkward.optimization.which")
print(json.dumps(seen))
"""


def test_only_dask_mode_drops_only_the_broken_optimization(r22_path):
    done = subprocess.run(
        [sys.executable, "-c", IN_A_FRESH_PROCESS, str(r22_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["after_import"] == ["columns", "layer-chains"]  # dask-awkward's default, untouched
    assert seen["after_dask_mode"] == ["columns"]
    assert seen["user_choice"] == []  # only layer-chains goes: the user's other choices stay


def test_working_optimizations_is_scoped():
    with dask.config.set({OPTIMIZATIONS_KEY: ["columns", "layer-chains"]}):
        with working_optimizations():
            assert dask.config.get(OPTIMIZATIONS_KEY) == ["columns"]
        assert dask.config.get(OPTIMIZATIONS_KEY) == ["columns", "layer-chains"]


def test_per_event_reductions_work_and_whole_array_ones_are_the_known_limit(r22_path):
    events = physlite.events(r22_path, mode="dask", chunk_size=40)
    per_event = dak.sum(events.Jets.pt, axis=1).compute(scheduler="sync")
    lazy = physlite.events(r22_path)
    assert per_event.tolist() == pytest.approx(ak.sum(lazy.Jets.pt, axis=1).tolist(), rel=1e-6)
    # dask-awkward 2025.3 with awkward 2.14: fails while building the graph. If this starts to pass, the
    # limitation documented in physlite.events.dask (and notebook 5) can go.
    with pytest.raises(TypeError, match="scalar conversion/promotion is disabled"):
        dak.sum(events.Jets.pt, axis=None)
