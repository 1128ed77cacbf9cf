"""The kernels are compiled at install time (`make venv` runs the warm-up): a fresh process only loads them."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import physlite
from physlite.decode import kernels
from physlite.decode.baskets import read_basket_table
with physlite.open({path!r}) as f:
    f.arrays(["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.trackParticleLinks",
              "MET_Core_AnalysisMETAuxDyn.name", "AnalysisJetsAuxDyn.NumTrkPt1000", "EventInfoAuxDyn.eventNumber",
              "METAssoc_AnalysisMETAux.jetLink", "EventInfoAuxDyn.hardScatterVertexLink"])
dispatchers = [read_basket_table, kernels.decode_fixed, kernels.decode_vector, kernels.decode_nested,
               kernels.decode_strings, kernels.decode_link_nested, kernels.decode_link_vector,
               kernels.decode_link_scalar, kernels.swap_bytes]
print(sum(len(d.stats.cache_hits) for d in dispatchers), sum(sum(d.stats.cache_misses.values()) for d in dispatchers))
"""


def test_fresh_process_loads_every_kernel_from_the_cache(r22_path):
    subprocess.run([sys.executable, "-m", "physlite.decode.warmup"], check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(path=str(r22_path))], check=True, capture_output=True, text=True
    )
    hits, misses = (int(x) for x in done.stdout.split())
    assert misses == 0, "a kernel was compiled at first use: the warm-up does not cover its argument types"
    assert hits >= 8
