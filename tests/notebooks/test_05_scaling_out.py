"""Notebook 5 (scaling out) on the local facility's real dask-gateway: a cluster from `Gateway()` with no
arguments, the reference analysis over many files on its workers, merged results equal to a local run, no
cluster left running, and a clean second run in the same kernel (as a user who runs it again)."""

from __future__ import annotations

from physlite.analysis import run as run_reference

from . import direct
from .execute import execute
from .figure_checks import problems

COPIES = 4
CHECKS = (
    "{'n_events': total.n_events, 'counts': total.counts, 'workers': len(on_workers), "
    "'versions': worker_versions, 'tasks': sum(chunks_per_worker.values()), "
    "'workers_used': sorted(chunks_per_worker), 'cluster_workers': sorted(on_workers), 'running': running, "
    "'jet_pt_sum': float(total.histograms['jet_pt'].sum(flow=True)), "
    "'labels': [ax.get_xlabel() for ax in merged_figure.axes], 'n_electrons': n_electrons, "
    "'partitions': lazy_events.npartitions, 'panels': figure_checks.panels(merged_figure), "
    "'cluster_objects': sum(type(o).__name__ == 'GatewayCluster' for o in gc.get_objects())}"
)


def test_scaling_out(facility_user_env, r22_path):
    run = execute(
        "05_scaling_out",
        env=facility_user_env,
        parameters={"FILE_NAME": r22_path.name, "COPIES": COPIES, "CHUNK_SIZE": 50, "WORKERS": 2},
        checks=CHECKS,
        timeout=600,
        runs=2,
    )
    checks = run.checks
    local = run_reference([r22_path] * COPIES)
    assert checks["n_events"] == local.n_events == 100 * COPIES
    assert checks["counts"] == local.counts
    assert checks["jet_pt_sum"] == local.histograms["jet_pt"].sum(flow=True) > 0
    assert checks["tasks"] == 2 * COPIES  # 100 events per file, 50 per task, each copy analysed
    assert set(checks["workers_used"]) <= set(checks["cluster_workers"])  # the tasks ran on the cluster
    assert checks["workers"] == 2
    # dask mode of the event model on the gateway cluster
    assert checks["partitions"] == 2 * COPIES
    assert checks["n_electrons"] == direct.electron_count(r22_path) * COPIES
    import physlite

    assert checks["versions"] == [physlite.__version__]
    assert checks["running"] == []
    assert all("[GeV]" in label for label in checks["labels"][:3])
    assert run.images == 2  # one figure per run
    # the second run in the same kernel is as clean as the first: no traceback from objects of the first
    # run (dask-gateway's Gateway.__del__ printed "RuntimeError: Accessing the loop property ..." twice)
    errors = run.errors()
    assert "Traceback" not in errors and "RuntimeError" not in errors, errors
    assert checks["cluster_objects"] == 0  # the notebook released its cluster objects
    # the empty muon panel says why; ticks readable; numbers without float noise
    assert problems(checks["panels"]) == []
    assert [panel["notes"] for panel in checks["panels"] if not panel["has_data"]] == [
        ["none passed the selection"]
    ]
    assert run.float_noise() == []
    widgets = [o for o in run.outputs() if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the dask progress bar (a widget) was not displayed"
