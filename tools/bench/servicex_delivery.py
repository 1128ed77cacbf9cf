"""`make bench` for ServiceX: the facility's service delivering 20 PHYSLITE columns with a cut to the real
`servicex` client, against the same query through plain uproot, in the same run.

Started here on loopback as tests/servicex starts them: a JupyterHub (tokens), SeaweedFS (S3), a dask scheduler
with ONE worker process of one thread pinned to one CPU (PHYSLITE_THREADS=1: one worker core), and
`python -m af.servicex`. Each repeat delivers --copies links to the benchmark file (fresh names, so neither the
client's nor the service's cache answers) and runs uproot.open + arrays + the same cut + Parquet on the same CPU.

Reported per repeat, medians printed side by side: the worker's compute seconds per file (dask's task stream),
the client's deliver() wall time, events/s per worker core of both (input events), uproot's events/s on one
core, their ratios, and the time to first file (submit → the first output in S3, from the service's records).
A first single-file delivery right after the service started (its workers warm at start) gives the time to first
file of a fresh service; it is not in the medians.

Example:
    python tools/bench/servicex_delivery.py --file build/data/physlite_bench_50k.root --copies 8 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # tests/servers: the hub and SeaweedFS as the tests start them

import awkward as ak  # noqa: E402
import uproot  # noqa: E402
from servers.common import free_port, stop  # noqa: E402
from servers.minimal_hub import start_hub  # noqa: E402
from servers.seaweedfs import start_seaweedfs  # noqa: E402

from tests.servicex.service_process import SERVICE, start_service, write_user_config  # noqa: E402

COLUMNS = (
    [f"AnalysisElectronsAuxDyn.{leaf}" for leaf in ("pt", "eta", "phi", "m", "charge")]
    + [f"AnalysisMuonsAuxDyn.{leaf}" for leaf in ("pt", "eta", "phi", "charge")]
    + [f"AnalysisJetsAuxDyn.{leaf}" for leaf in ("pt", "eta", "phi", "m", "JVFCorr")]
    + [f"AnalysisPhotonsAuxDyn.{leaf}" for leaf in ("pt", "eta", "phi")]
    + [
        "EventInfoAuxDyn.eventNumber",
        "EventInfoAuxDyn.runNumber",
        "EventInfoAuxDyn.averageInteractionsPerCrossing",
    ]
)[:20]
CUT = "ak.num(AnalysisElectronsAuxDyn.pt) >= 1"


def uproot_cut(arrays):
    """CUT, on uproot's arrays (the same expression, the branch read by its full name)."""
    return ak.num(arrays["AnalysisElectronsAuxDyn.pt"]) >= 1


def say(text: str) -> None:
    print(f"[bench-servicex {time.strftime('%H:%M:%S')}] {text}", flush=True)


def start_dask(run: Path, cpu: int) -> tuple[subprocess.Popen, subprocess.Popen, str]:
    """A scheduler and one worker process with one thread, pinned to `cpu`."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    log = open(run / "dask.log", "wb")  # noqa: SIM115 (kept open for the processes' lifetime)
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0",
         "--no-show"], stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
         "--no-dashboard", "--no-nanny", "--memory-limit", "0"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PHYSLITE_THREADS": "1"},
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )  # fmt: skip
    return scheduler, worker, address


def deliver(config: Path, files: list[str], name: str, output: Path) -> list[str]:
    from servicex import ProgressBarFormat, dataset, query
    from servicex import deliver as sx_deliver

    spec = {
        "General": {"OutputFormat": "parquet", "Delivery": "LocalCache"},
        "Sample": [{"Name": name, "Dataset": dataset.FileList(files),
                    "Query": query.UprootRaw([{"treename": "CollectionTree", "filter_name": COLUMNS,
                                               "cut": CUT}])}],
    }  # fmt: skip
    return sx_deliver(
        spec, config_path=str(config), progress_bar=ProgressBarFormat.none, ignore_local_cache=True,
        cache_dir=str(output),
    )[name]  # fmt: skip


def run_uproot(files: list[str], output: Path) -> tuple[float, int, list[str]]:
    """The same query through plain uproot, one file after the other: (seconds, events kept, outputs)."""
    kept, outputs = 0, []
    start = time.perf_counter()
    for i, path in enumerate(files):
        with uproot.open(path) as f:
            arrays = f["CollectionTree"].arrays(COLUMNS, library="ak")
        arrays = arrays[uproot_cut(arrays)]
        target = output / f"{i:05d}.parquet"
        ak.to_parquet(arrays, target)
        kept += len(arrays)
        outputs.append(str(target))
    return time.perf_counter() - start, kept, outputs


def same_output(delivered: str, direct: str) -> bool:
    got, expected = ak.from_parquet(delivered), ak.from_parquet(direct)
    return len(got) == len(expected) and all(ak.all(ak.ravel(got[c] == expected[c])) for c in COLUMNS)


def service_view(config: Path, request_title: str) -> dict:
    """Submit time and each file's arrival in S3, from the service's own records (through the client)."""
    from servicex.servicex_client import ServiceXClient

    client = ServiceXClient(config_path=str(config))
    [status] = [s for s in client.get_transforms() if s.title == request_title]
    adapter = client.servicex
    results = asyncio.run(adapter.get_transformation_results(status.request_id, None))
    created = sorted(r.created_at.replace(tzinfo=None).isoformat() for r in results)
    return {
        "request_id": status.request_id,
        "status": status.status.value,
        "files_completed": status.files_completed,
        "files_failed": status.files_failed,
        "submit": status.submit_time.replace(tzinfo=None).isoformat(),
        "first_file": created[0] if created else None,
        "last_file": created[-1] if created else None,
    }


def seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def compute_seconds(client, request_id: str, since: float) -> list[float]:
    """The worker's compute time of each task of the request (dask's task stream)."""
    prefix = f"servicex-{request_id}-"
    seconds = []
    for record in client.get_task_stream(start=since):
        if str(record["key"]).startswith(prefix):
            seconds += [s["stop"] - s["start"] for s in record["startstops"] if s["action"] == "compute"]
    return seconds


@dataclass
class Round:
    """One measured delivery and its uproot counterpart, on links to the benchmark file of fresh names."""

    run: Path
    source: Path
    config: Path
    client: object  # distributed.Client of the bench's scheduler
    cpu: int

    def files(self, name: str, copies: int) -> list[str]:
        folder = self.run / "data" / name
        folder.mkdir(parents=True)
        for i in range(copies):
            (folder / f"{i}_{self.source.name}").symlink_to(self.source)
        return sorted(str(p) for p in folder.iterdir())

    def servicex(self, name: str, copies: int) -> dict:
        files = self.files(name, copies)
        since = time.time()
        started = time.perf_counter()
        delivered = deliver(self.config, files, name, self.run / "cache")
        wall = time.perf_counter() - started
        view = service_view(self.config, name)
        return {
            "deliver_wall_s": round(wall, 3),
            "worker_compute_s": [
                round(t, 3) for t in compute_seconds(self.client, view["request_id"], since)
            ],
            "time_to_first_file_s": round(seconds_between(view["submit"], view["first_file"]), 3),
            "submit_to_last_file_s": round(seconds_between(view["submit"], view["last_file"]), 3),
            **view,
            "delivered": sorted(delivered),
        }

    def uproot(self, name: str, delivered: list[str]) -> dict:
        output = self.run / "uproot" / name
        output.mkdir(parents=True)
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.cpu})  # the worker's core
        try:
            seconds, kept, direct = run_uproot(self.files(name + "-uproot", len(delivered)), output)
        finally:
            os.sched_setaffinity(0, affinity)
        equal = len(direct) == len(delivered) and all(map(same_output, delivered, direct))
        return {"uproot_s": round(seconds, 3), "events_kept": kept, "outputs_equal": equal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", default="build/data/physlite_bench_50k.root")
    parser.add_argument("--copies", type=int, default=8, help="files per delivery (links to --file)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default="build/bench/servicex.json")
    args = parser.parse_args()
    source = Path(args.file).resolve()
    if not source.is_file():
        sys.exit(f"benchmark file {args.file} is missing: run `make bench-data`")
    with uproot.open(source) as f:
        entries = f["CollectionTree"].num_entries
    cpu = max(os.sched_getaffinity(0))

    from distributed import Client

    with tempfile.TemporaryDirectory(prefix="bench-servicex-") as folder:
        run = Path(folder)
        say("starting SeaweedFS, JupyterHub, a dask scheduler with one 1-thread worker, the ServiceX service")
        seaweedfs = start_seaweedfs(run / "seaweedfs")
        hub = start_hub(run / "hub", SERVICE)
        scheduler, worker, address = start_dask(run, cpu)
        service = client = None
        try:
            client = Client(address, timeout=60)
            client.wait_for_workers(1, timeout=60)
            cores = sum(client.nthreads().values())
            client.get_task_stream()  # the scheduler records tasks from now on
            service = start_service(run / "service", hub, seaweedfs, address)
            config = write_user_config(run / "home", service.url, hub.user_token("bench"))
            source.read_bytes()  # the page cache holds the file for everyone
            repeats = []
            bench = Round(run, source, config, client, cpu)
            say("first delivery after the service started (1 file; time to first file of a fresh service)")
            first = bench.servicex("first", 1)
            say(f"  time to first file {first['time_to_first_file_s']:.2f} s")
            for r in range(args.repeat):
                say(f"repeat {r + 1}/{args.repeat}: ServiceX delivers {args.copies} x {entries} events ...")
                measured = bench.servicex(f"bench-{r}", args.copies)
                say(f"  delivered in {measured['deliver_wall_s']:.2f} s, worker compute "
                    f"{sum(measured['worker_compute_s']):.2f} s; plain uproot on the same core ...")  # fmt: skip
                measured.update(bench.uproot(f"bench-{r}", measured.pop("delivered")))
                say(f"  uproot: {measured['uproot_s']:.2f} s, outputs equal: {measured['outputs_equal']}")
                repeats.append(measured)
        finally:
            if service is not None:
                service.stop()
            if client is not None:
                client.close()
            stop(worker)
            stop(scheduler)
            hub.stop()
            seaweedfs.stop()

    events = entries * args.copies
    compute = statistics.median(sum(r["worker_compute_s"]) for r in repeats)
    wall = statistics.median(r["deliver_wall_s"] for r in repeats)
    served = statistics.median(r["submit_to_last_file_s"] for r in repeats)
    up = statistics.median(r["uproot_s"] for r in repeats)
    warm = [r["time_to_first_file_s"] for r in repeats]
    result = {
        "file": str(args.file),
        "events_per_file": entries,
        "files_per_delivery": args.copies,
        "columns": COLUMNS,
        "cut": CUT,
        "output_format": "parquet",
        "worker_cores": cores,
        "repeat": args.repeat,
        "uproot_version": uproot.__version__,
        "servicex_transform": {"seconds": round(compute, 3), "events_per_s_per_core": round(events / compute / cores)},
        "servicex_service": {"seconds": round(served, 3), "events_per_s_per_core": round(events / served / cores)},
        "servicex_delivery": {"seconds": round(wall, 3), "events_per_s_per_core": round(events / wall / cores)},
        "uproot": {"seconds": round(up, 3), "events_per_s_per_core": round(events / up)},
        "ratio_transform_vs_uproot": round(up / compute, 2),
        "ratio_service_vs_uproot": round(up / served, 2),
        "ratio_delivery_vs_uproot": round(up / wall, 2),
        "time_to_first_file_s": {"first_delivery": first["time_to_first_file_s"],
                                 "repeats_median": round(statistics.median(warm), 3)},
        "outputs_equal": all(r["outputs_equal"] for r in repeats),
        "ratio_transform_vs_uproot_best": round(
            min(r["uproot_s"] for r in repeats) / min(sum(r["worker_compute_s"]) for r in repeats), 2
        ),
        "ratio_transform_vs_uproot_per_repeat": [round(r["uproot_s"] / sum(r["worker_compute_s"]), 2) for r in repeats],
        "first_delivery": {k: v for k, v in first.items() if k != "delivered"},
        "repeats": repeats,
    }  # fmt: skip
    print(
        f"\n{args.copies} files x {entries} events, {len(COLUMNS)} columns, cut {CUT!r}, Parquet; "
        f"{cores} worker core(s); median of {args.repeat}"
    )
    print(f"  {'method':<50}{'core-s':>9}{'events/s/core':>15}{'vs uproot':>11}")
    rows = [
        ("ServiceX, worker compute (read+cut+write+upload)", compute, up / compute),
        ("ServiceX service, submit -> last output in S3", served * cores, up / served / cores),
        ("ServiceX, client deliver() wall (5 s polling)", wall * cores, up / wall / cores),
        ("plain uproot (open+arrays+cut+Parquet)", up, 1.0),
    ]
    for label, seconds, ratio in rows:
        print(f"  {label:<50}{seconds:>9.2f}{events / seconds:>15,.0f}{ratio:>10.1f}x")
    print(
        f"  best of {args.repeat} (least disturbed by other load): worker compute "
        f"{result['ratio_transform_vs_uproot_best']:.1f}x uproot's events/s per core"
    )
    ttff = result["time_to_first_file_s"]
    print(
        f"  time to first file (submit -> first output in S3): {ttff['first_delivery']:.2f} s in the first"
        f" delivery after the service started, {ttff['repeats_median']:.2f} s later;"
        f"  outputs equal to uproot's: {result['outputs_equal']}"
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
