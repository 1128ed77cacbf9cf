"""The notebook image as a cluster runs it (uid 1000, read-only root, home volume, /tmp tmpfs, no network):
physlite's kernels come from the image's cache (no compilation at all) and its numbers equal uproot's on the host."""

from __future__ import annotations

import json
import pickle

import awkward as ak
import pytest
import uproot

from tests.conftest import R21_FILE, R22_FILE
from tests.conftest import test_data_dir as example_data
from tests.reader.test_against_uproot import _uproot_readable

from .containers import DATA, HOME, home_volume, image, run

# Runs in the container: time to the first decoded branch in a fresh process, then every leaf uproot reads of both
# files, then the warm-up's calls (read-only and writable input of every layout); reports every numba dispatcher
# of physlite.decode with its cache hits and misses (a miss is a compilation).
PROBE = """
import time
started = time.perf_counter()
import importlib, json, pickle, pkgutil, sys
import physlite
imported = time.perf_counter() - started
with physlite.open(sys.argv[1] + "/" + sys.argv[2]) as f:
    f.arrays(["AnalysisElectronsAuxDyn.pt"])
first = time.perf_counter() - started
import numba.core.dispatcher
import physlite.decode
from physlite.decode import warmup
wanted = json.load(open(sys.argv[3]))
arrays = {}
for name, leaves in wanted.items():
    with physlite.open(sys.argv[1] + "/" + name) as f:
        arrays[name] = f.arrays([leaf for leaf in leaves if leaf in f])
pickle.dump(arrays, open(sys.argv[4], "wb"))
warmup.compile_all()
modules = [importlib.import_module("physlite.decode." + m.name) for m in pkgutil.iter_modules(physlite.decode.__path__)]
stats = {
    module.__name__ + "." + name: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
    for module in modules
    for name, d in vars(module).items()
    if isinstance(d, numba.core.dispatcher.Dispatcher) and d.__module__ == module.__name__
}
print("PROBE " + json.dumps({"first_decode_seconds": first, "import_seconds": imported, "kernels": stats}))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """The probe's report, its output, uproot's arrays on the host and physlite's from the container."""
    home = home_volume(tmp_path_factory.mktemp("probe") / "home")
    expected = {
        name: _uproot_readable(uproot.open(example_data() / name)["CollectionTree"])
        for name in (R21_FILE, R22_FILE)
    }
    (home / "leaves.json").write_text(json.dumps({name: list(arrays) for name, arrays in expected.items()}))
    done = run(
        image("notebook"),
        ["python", "-c", PROBE, DATA, R22_FILE, f"{HOME}/leaves.json", f"{HOME}/arrays.pkl"],
        home=home,
        data=example_data(),
        env={"NUMBA_DEBUG_CACHE": "1"},
    )
    report = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))[6:])
    print(
        f"\nfirst decode in a fresh container process: {report['first_decode_seconds']:.2f} s, of which "
        f"{report['import_seconds']:.2f} s import physlite (awkward, numba, uproot); the rest opens the file, loads "
        "the cached kernels (numba's one-time initialisation) and decodes"
    )
    ours = pickle.loads((home / "arrays.pkl").read_bytes())
    return report, done.stdout, expected, ours


def test_every_kernel_loads_from_the_image_cache(probe):
    report, stdout, _, _ = probe
    # helpers called only from other kernels are compiled into them and never dispatched themselves
    kernels = {name: counts for name, counts in report["kernels"].items() if sum(counts)}
    print("kernel cache hits/misses:", kernels)
    # NUMBA_DEBUG_CACHE prints '[cache] data saved to ...' for every kernel compiled and stored (in any folder)
    saved = [line for line in stdout.splitlines() if "[cache] data saved" in line or "index saved" in line]
    assert saved == [], f"{len(saved)} kernels compiled in the container:\n" + "\n".join(saved[:10])
    assert {name: counts for name, counts in kernels.items() if counts[1]} == {}, (
        "cache misses (compilations)"
    )
    assert len(kernels) >= 9, kernels


def test_physlite_in_the_image_reads_what_uproot_reads_on_the_host(probe):
    _, _, expected, ours = probe
    for name, theirs in expected.items():
        assert set(ours[name]) == set(theirs), f"{name}: leaves not read in the image"
        different = [
            leaf
            for leaf, values in theirs.items()
            if not ak.array_equal(ours[name][leaf], values, check_parameters=False, equal_nan=True)
            or str(ak.without_parameters(ours[name][leaf]).type) != str(ak.without_parameters(values).type)
        ]
        assert different == [], f"{name}: values differ from uproot's on the host: {different[:10]}"
