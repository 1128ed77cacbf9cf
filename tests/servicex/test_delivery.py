"""The real `servicex` client delivers PHYSLITE columns from the facility's ServiceX service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

COLUMNS = ["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.eta"]
CUT = "ak.num(AnalysisElectronsAuxDyn.pt) >= 1"


def _spec(name: str, files: list[str], query: dict, fmt: str = "parquet") -> dict:
    return {
        "General": {"OutputFormat": fmt, "Delivery": "LocalCache"},
        "Sample": [{"Name": name, "Dataset": _file_list(files), "Query": _uproot_raw(query)}],
    }


def _file_list(files):
    from servicex import dataset

    return dataset.FileList(files)


def _uproot_raw(query):
    from servicex import query as q

    return q.UprootRaw([query])


def _direct(path, columns, cut_count=1):
    """The same columns and cut read directly with uproot."""
    with uproot.open(path) as f:
        arrays = f["CollectionTree"].arrays(columns, library="ak")
    keep = ak.num(arrays[columns[0]]) >= cut_count
    return {c: arrays[c][keep] for c in columns}


def test_file_list_parquet_and_root_equal_direct_reads(alice, r21_path, r22_path, capsys):
    files = [str(r22_path), str(r21_path)]
    query = {"treename": "CollectionTree", "filter_name": COLUMNS, "cut": CUT}
    for fmt in ("parquet", "root-ttree"):
        delivered = alice.deliver(_spec(f"electrons-{fmt}", files, query, fmt))
        paths = delivered[f"electrons-{fmt}"]
        print(f"client delivered ({fmt}):", paths)
        assert len(paths) == 2
        for source in files:  # outputs are named after their input file
            [path] = [p for p in paths if p.endswith(f"_{Path(source).name}.{fmt.split('-')[0]}")]
            expected = _direct(source, COLUMNS)
            if fmt == "parquet":
                got = ak.from_parquet(path)
                got = {c: got[c] for c in COLUMNS}
            else:
                with uproot.open(path) as out:
                    got = out["CollectionTree"].arrays(COLUMNS, library="ak")
            assert len(got[COLUMNS[0]]) == len(expected[COLUMNS[0]]) > 0
            for column in COLUMNS:
                assert ak.to_list(got[column]) == ak.to_list(expected[column]), (fmt, source, column)


def test_link_following_expression(alice, r22_path):
    import physlite

    query = {"treename": "CollectionTree", "expressions": ["Electrons.trackParticles.z0", "Electrons.pt"],
             "cut": "ak.num(Electrons.pt) >= 1"}  # fmt: skip
    delivered = alice.deliver(_spec("electron-tracks", [str(r22_path)], query))
    [path] = delivered["electron-tracks"]
    got = ak.from_parquet(path)
    events = physlite.events(str(r22_path))
    keep = ak.num(events.Electrons.pt) >= 1
    expected = events.Electrons.trackParticles.z0[keep]
    assert ak.to_list(got["Electrons.trackParticles.z0"]) == ak.to_list(expected)
    # the links point at real tracks: z0 of the first track of each electron, checked against the raw branches
    with uproot.open(r22_path) as f:
        tree = f["CollectionTree"]
        z0 = tree["InDetTrackParticlesAuxDyn.z0"].array() if "InDetTrackParticlesAuxDyn.z0" in tree else None
    assert ak.sum(ak.num(ak.flatten(got["Electrons.trackParticles.z0"]))) > 0
    if z0 is not None:
        assert np.isfinite(
            ak.to_numpy(ak.flatten(ak.drop_none(ak.flatten(got["Electrons.trackParticles.z0"], axis=2))))
        ).all()


def test_bad_query_shows_the_service_error(alice, r22_path):
    query = {"treename": "CollectionTree", "expressions": ["Electrons.pt +* 2"]}
    with pytest.raises(Exception, match="not a valid Python expression") as raised:
        alice.deliver(_spec("bad", [str(r22_path)], query), return_exceptions=False)
    print("client raised:", raised.value)


def test_unreadable_file_fails_alone(alice, r22_path, tmp_path):
    broken = tmp_path / "broken.root"
    broken.write_bytes(b"not a ROOT file" * 100)
    query = {"treename": "CollectionTree", "filter_name": COLUMNS}
    delivered = alice.deliver(_spec("partial", [str(r22_path), str(broken)], query), fail_if_incomplete=False)
    print("delivered despite one unreadable file:", delivered["partial"])
    assert [Path(p).name.split("_", 1)[1] for p in delivered["partial"]] == [f"{r22_path.name}.parquet"]
    [status] = [s for s in asyncio.run(alice.adapter().get_transforms()) if s.title == "partial"]
    assert (status.status, status.files, status.files_completed, status.files_failed) == ("Complete", 2, 1, 1)
    failures = alice.failures(status.request_id)
    assert [f["file-path"] for f in failures] == [str(broken)]
    assert "broken.root" in failures[0]["info"], failures
    print("the service's failure record:", failures[0]["info"])


def test_a_new_worker_loads_the_transform_before_its_first_task(servicex_service, dask_scheduler):
    """The service's worker plugin: a worker that joins later has the transform's modules and physlite's kernels
    loaded before any task ran on it (the first file does not pay for loading them)."""
    import subprocess
    import sys

    from distributed import Client

    def loaded(dask_worker) -> dict:
        kernels = sys.modules.get("physlite.decode.kernels")
        return {
            "tasks_run": len(dask_worker.data) + dask_worker.state.executed_count,
            "transform": "af.servicex.transform" in sys.modules,
            "kernels": bool(kernels and kernels.decode_vector.signatures),
        }

    with Client(dask_scheduler, timeout=30) as client:
        before = set(client.scheduler_info()["workers"])
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", dask_scheduler, "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client.wait_for_workers(len(before) + 1, timeout=60)
            [new] = set(client.scheduler_info()["workers"]) - before
            state = client.run(loaded, workers=[new])[new]
            client.retire_workers([new], close_workers=True)
        finally:
            worker.terminate()
            worker.wait(30)
    print("a worker that joined later:", state)
    assert state == {"tasks_run": 0, "transform": True, "kernels": True}
