"""Baskets compressed with each ROOT algorithm decode to the values uproot reads (files written by uproot)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

import physlite


@pytest.mark.parametrize(
    "compression",
    [uproot.ZLIB(5), uproot.ZSTD(5), uproot.LZ4(4), uproot.LZMA(5), None],
    ids=["zlib", "zstd", "lz4", "lzma", "uncompressed"],
)
def test_each_algorithm(tmp_path, compression):
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 6, 5000)
    values = ak.unflatten(rng.normal(size=counts.sum()).astype(np.float32), counts)
    number = rng.integers(0, 1 << 40, 5000).astype(np.int64)
    path = tmp_path / "compressed.root"
    with uproot.recreate(path, compression=compression) as out:
        tree = out.mktree("CollectionTree", {"x": "var * float32", "n": np.int64})
        for start in range(0, 5000, 1000):  # several baskets
            tree.extend({"x": values[start : start + 1000], "n": number[start : start + 1000]})
    with physlite.open(path) as f:
        if compression is not None:
            assert type(compression).__name__ in f.compression
        ours = f.arrays(["x", "n"])
        part = f.arrays(["x"], entry_start=1500, entry_stop=3500)["x"]
    assert ak.array_equal(ours["x"], values)
    assert np.array_equal(np.asarray(ours["n"]), number)
    assert ak.array_equal(part, values[1500:3500])


def test_one_big_branch_is_split_across_threads(tmp_path):
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, 20000)
    values = ak.unflatten(rng.normal(size=counts.sum()), counts)
    path = tmp_path / "many_baskets.root"
    with uproot.recreate(path, compression=uproot.ZSTD(1)) as out:
        tree = out.mktree("CollectionTree", {"x": "var * float64"})
        for start in range(0, 20000, 500):  # 40 baskets
            tree.extend({"x": values[start : start + 500]})
    with physlite.open(path, threads=2) as f:
        jobs = f._plan([f.info("x")], 0, f.num_entries)
        assert len(jobs) == 2 and sum(job.baskets.size for job in jobs) == 40
        assert ak.array_equal(f.array("x"), values)
        assert ak.array_equal(f.array("x", 7321, 15003), values[7321:15003])
