"""Dask mode on a real distributed cluster (scheduler and workers in processes of their own, not the in-process
schedulers): the reference analysis gives the counts of lazy mode, and dask-mode events compute there."""

from __future__ import annotations

import awkward as ak
import dask
import dask_awkward as dak
import pytest
from distributed import Client, get_task_stream
from distributed.deploy.subprocess import SubprocessCluster

import physlite.events
from physlite.analysis import run
from physlite.analysis.reference import COLLECTIONS


@pytest.fixture(scope="module")
def client():
    # scheduler and workers each in a process of their own, as on a dask-gateway cluster: graphs are
    # materialised and optimised on the scheduler, with that process's dask settings
    with (
        SubprocessCluster(
            host="127.0.0.1", n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_reference_analysis_on_a_distributed_cluster_equals_lazy_mode(client, r21_path, r22_path, capsys):
    files = [r21_path, str(r22_path), r22_path]  # a file listed twice is analysed twice
    lazy = run(files, mode="lazy")
    with get_task_stream(client) as stream:
        on_cluster = run(files, mode="dask", chunk_size=25, scheduler=client, progress=True)
    assert on_cluster.n_events == lazy.n_events == 240
    for collection in COLLECTIONS:
        assert on_cluster.counts[collection] == lazy.counts[collection], collection
    assert on_cluster.counts["Jets"]["signal"] > 0
    for name, histogram in lazy.histograms.items():
        assert (on_cluster.histograms[name].values(flow=True) == histogram.values(flow=True)).all(), name
    # one task per partition (40 + 100 + 100 entries in chunks of 25), each run by a worker of the cluster
    partitions = [t for t in stream.data if "analyse_partition" in str(t["key"])]
    assert len(partitions) == 2 + 4 + 4
    assert {t["worker"] for t in partitions} <= set(client.scheduler_info()["workers"])
    assert "240/240" in capsys.readouterr().err  # the progress bar counts events


def test_dask_events_compute_on_a_distributed_cluster(client, r22_path):
    events = physlite.events(r22_path, mode="dask", chunk_size=30)
    assert events.npartitions == 4
    counts = dak.num(events.Electrons.pt, axis=1).compute(scheduler=client)
    lazy = physlite.events(r22_path)
    assert counts.tolist() == ak.num(lazy.Electrons.pt, axis=1).tolist()
    assert sum(counts.tolist()) > 0
    # two results from the same partitions: each lazy partition is kept on its worker for both (and sized there)
    electrons, jets = dask.compute(
        dak.num(events.Electrons.pt, axis=1), dak.sum(events.Jets.pt > 20_000, axis=1), scheduler=client
    )
    assert electrons.tolist() == counts.tolist()
    assert jets.tolist() == ak.sum(lazy.Jets.pt > 20_000, axis=1).tolist()
    assert sum(jets.tolist()) > 0


def test_a_failing_chunk_fails_the_run_with_its_error(client, r22_path, tmp_path):
    broken = tmp_path / "truncated.root"
    broken.write_bytes(r22_path.read_bytes()[: r22_path.stat().st_size // 2])
    with pytest.raises(Exception, match=r"truncated\.root"):
        run([r22_path, broken], mode="dask", chunk_size=50, scheduler=client)
