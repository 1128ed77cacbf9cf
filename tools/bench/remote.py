"""Remote reading benchmark (issue 4): physlite against uproot's default remote path and against downloading the
whole file first, over https (nginx) and root:// (XRootD), behind a delay line of 20 and 50 ms round trip.

    make bench-remote          # or: .venv/bin/python tools/bench/remote.py --json build/bench/remote.json

Everything runs in a network namespace of its own (created here, deleted at the end): the servers listen on its
127.0.0.1, an iptables NFQUEUE rule hands every incoming packet to tools/bench/delay_line.py, which accepts it
after RTT/2. Cases: (a) open `PHYSLITE_example.root` and read 20 branches; (b) read every 2-D ElementLink branch
of the production-like benchmark file. Methods: physlite opening the file for the first time in the process (no
metadata plan, no catalogue), physlite re-opening it (metadata plan and the reader's catalogue remembered; the
next file of a dataset gets the plan's single round but parses its own catalogue), uproot 5.7
(`uproot.open(url)`, its default handler), and a full download (one stream; `xrdcp` for root://) followed by a
local physlite read. Counted per run: requests,
connections and bytes on the server side for https (nginx access log: `conns` = connections used), client side
for root:// (physlite's and uproot's counters; `conns` = new XRootD logins, the client keeps its connection per
server), physlite's own round trips, and the effective round trips (time / RTT). Connections kept alive from
earlier runs of a method are reused, for uproot (fsspec's session) and physlite (its connection pool) alike.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
print = functools.partial(print, flush=True)  # progress shows while the benchmark runs
sys.path.insert(0, str(REPO / "tests"))  # the test servers (nginx, XRootD) are reused here

SMALL_BRANCHES = [
    "EventInfoAuxDyn.eventNumber",
    "EventInfoAuxDyn.runNumber",
    "EventInfoAuxDyn.mcChannelNumber",
    "EventInfoAuxDyn.averageInteractionsPerCrossing",
    "EventInfoAuxDyn.mcEventWeights",
    "AnalysisElectronsAuxDyn.pt",
    "AnalysisElectronsAuxDyn.eta",
    "AnalysisElectronsAuxDyn.phi",
    "AnalysisElectronsAuxDyn.m",
    "AnalysisMuonsAuxDyn.pt",
    "AnalysisMuonsAuxDyn.eta",
    "AnalysisMuonsAuxDyn.phi",
    "AnalysisJetsAuxDyn.pt",
    "AnalysisJetsAuxDyn.eta",
    "AnalysisJetsAuxDyn.phi",
    "AnalysisJetsAuxDyn.m",
    "AnalysisPhotonsAuxDyn.pt",
    "AnalysisPhotonsAuxDyn.eta",
    "AnalysisPhotonsAuxDyn.phi",
    "AnalysisElectronsAuxDyn.trackParticleLinks",
]
METHODS = ["physlite", "physlite (reopen)", "uproot", "download"]


# ---------------------------------------------------------------------------------------------- outside
def outside(args: argparse.Namespace) -> int:
    """Create the namespace with its NFQUEUE rule, run the measurement inside it, always clean up."""
    for tool in ("ip", "iptables", "runuser", "xrdcp"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            print(f"bench-remote: {tool} is missing (make sysdeps installs it)", file=sys.stderr)
            return 2
    netns = f"physlite-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        # --queue-bypass: without a delay line bound to the queue, packets pass undelayed
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                "iptables",
                "-A",
                "INPUT",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "0",
                "--queue-bypass",
            ],
            check=True,
        )
        inner = [sys.executable, str(Path(__file__).resolve()), "--inside", *sys.argv[1:]]
        return subprocess.run(["ip", "netns", "exec", netns, *inner]).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)


# ---------------------------------------------------------------------------------------------- inside
class DelayLine:
    """tools/bench/delay_line.py as a process (its own venv with NetfilterQueue)."""

    def __init__(self, python: Path, rtt_ms: float) -> None:
        self.process = None
        if rtt_ms > 0:
            self.process = subprocess.Popen(
                [str(python), str(REPO / "tools" / "bench" / "delay_line.py"), "--delay-ms", str(rtt_ms / 2)],
                stdout=subprocess.PIPE,
                text=True,
            )
            self.process.stdout.readline()  # bound to the queue

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


def measured_rtt_ms(port: int) -> float:
    """Median time of a TCP connect to the https server (one round trip)."""
    import socket

    times = []
    for _ in range(5):
        started = time.perf_counter()
        socket.create_connection(("127.0.0.1", port)).close()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def xrootd_logins(log: Path) -> int:
    return log.read_text(errors="replace").count(" login") if log.exists() else 0


def run_physlite(url: str, branches: list[str], store, cold: bool = False) -> dict:
    import physlite
    import physlite.reader.catalogue

    if cold:  # first open of this file in this process: no catalogue, no metadata plan
        with physlite.reader.catalogue._cache_lock:
            physlite.reader.catalogue._cache.clear()
    with physlite.open(url, metadata_cache=store) as file:
        arrays = file.arrays(branches)
        stats = file._source.stats.as_dict()
    return {"entries": len(next(iter(arrays.values()))), "client": stats}


def run_uproot(url: str, branches: list[str]) -> dict:
    import uproot

    with uproot.open(url) as file:
        arrays = file["CollectionTree"].arrays(branches)
        source = file.file.source
        client = {
            "requests": getattr(source, "num_requests", None),
            "bytes": getattr(source, "num_requested_bytes", None),
        }
    return {"entries": len(arrays), "client": client}


def run_download(url: str, branches: list[str], folder: Path, ca_file: str) -> dict:
    import physlite

    target = folder / "download.root"
    if url.startswith("root://"):
        subprocess.run(["xrdcp", "--force", "--silent", url, str(target)], check=True)
    else:
        import shutil
        import ssl
        import urllib.request

        context = ssl.create_default_context(cafile=ca_file)
        with urllib.request.urlopen(url, context=context) as answer, open(target, "wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)
    try:
        with physlite.open(target) as file:
            arrays = file.arrays(branches)
        return {"entries": len(next(iter(arrays.values()))), "client": {"requests": 1}}
    finally:
        target.unlink()


def measure(case: dict, protocol: str, url: str, rtt: float, servers, args, folder: Path) -> dict:
    import uproot

    import physlite
    from physlite.io.metadata import PlanStore

    # untimed: imports, numba kernels and uproot's interpretations are paid once per process, not per method
    with physlite.open(case["file"]) as file:
        file.arrays(case["branches"])
    with uproot.open(case["file"]) as file:
        file["CollectionTree"].arrays(case["branches"][:2])
    warm = PlanStore()
    run_physlite(url, case["branches"][:1], warm)  # remembers this file's metadata plan
    results: dict[str, list[dict]] = {method: [] for method in METHODS}
    for _ in range(args.repeat):
        for method in METHODS:  # alternating, so that drifts hit every method alike
            servers["nginx"].clear_log()
            logins = xrootd_logins(servers["xrootd"].run / "xrootd.log")
            started = time.perf_counter()
            if method == "physlite":
                outcome = run_physlite(url, case["branches"], PlanStore(), cold=True)
            elif method == "physlite (reopen)":
                outcome = run_physlite(url, case["branches"], warm)
            elif method == "uproot":
                outcome = run_uproot(url, case["branches"])
            else:
                outcome = run_download(url, case["branches"], folder, str(servers["nginx"].cert))
            elapsed = time.perf_counter() - started
            outcome["seconds"] = elapsed
            if protocol == "https":
                log = servers["nginx"].access_log()
                outcome["server"] = {
                    "requests": len(log),
                    "connections": len({entry["connection"] for entry in log}),
                    "bytes": sum(entry["bytes"] for entry in log),
                }
            else:
                outcome["server"] = {
                    "connections": xrootd_logins(servers["xrootd"].run / "xrootd.log") - logins
                }
            results[method].append(outcome)
    summary = {}
    for method, runs in results.items():
        seconds = statistics.median(run["seconds"] for run in runs)
        typical = min(runs, key=lambda run: abs(run["seconds"] - seconds))
        summary[method] = {
            "seconds": seconds,
            "all_seconds": [run["seconds"] for run in runs],
            "effective_round_trips": seconds / (rtt / 1000) if rtt else None,
            "client": typical["client"],
            "server": typical["server"],
            "entries": typical["entries"],
        }
    base = summary["uproot"]["seconds"]
    for method in summary:
        summary[method]["time_vs_uproot"] = summary[method]["seconds"] / base
        if case["mb"]:
            summary[method]["MB_per_s"] = case["mb"] / summary[method]["seconds"]
    return summary


def inside(args: argparse.Namespace) -> int:
    import uproot
    from servers.nginx import start_nginx
    from servers.xrootd import start_xrootd

    folder = Path(tempfile.mkdtemp(prefix="physlite-bench-remote-"))
    served = folder / "served"
    served.mkdir()
    for path in (args.small, args.large):
        (served / path.name).symlink_to(path.resolve())
    nginx = start_nginx(served, folder / "nginx")
    xrootd = start_xrootd([args.small, args.large], isolated=False)
    os.environ["SSL_CERT_FILE"] = str(nginx.cert)  # uproot's aiohttp and physlite trust the test certificate
    servers = {"nginx": nginx, "xrootd": xrootd}
    large_tree = uproot.open(args.large)["CollectionTree"]
    links = [
        b.name for b in large_tree.branches if b.typename.startswith("std::vector<std::vector<ElementLink")
    ]
    cases = [
        {
            "name": "a: open + 20 branches, PHYSLITE_example.root",
            "file": args.small,
            "branches": SMALL_BRANCHES,
            "mb": 0,
        },
        {
            "name": f"b: {len(links)} 2-D ElementLink branches, {args.large.name}",
            "file": args.large,
            "branches": links,
            "mb": sum(large_tree[n].uncompressed_bytes for n in links) / 1e6,
        },
    ]
    report = {"rtt_ms": {}, "cases": []}
    try:
        for rtt in args.rtt:
            line = DelayLine(args.delay_python, rtt)
            try:
                report["rtt_ms"][str(rtt)] = measured = measured_rtt_ms(nginx.https_port)
                print(
                    f"\n=== delay line {rtt} ms round trip (measured TCP connect: {measured:.1f} ms) ===",
                    flush=True,
                )
                for case in cases:
                    for protocol in ("https", "root"):
                        name = case["file"].name
                        url = nginx.url(name) if protocol == "https" else xrootd.url(name)
                        summary = measure(case, protocol, url, rtt, servers, args, folder)
                        report["cases"].append(
                            {"rtt_ms": rtt, "case": case["name"], "protocol": protocol, "methods": summary}
                        )
                        print_table(rtt, case["name"], protocol, summary)
            finally:
                line.stop()
    finally:
        nginx.stop()
        xrootd.stop()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"\nwritten {args.json}")
    return 0


def print_table(rtt: float, case: str, protocol: str, summary: dict) -> None:
    print(f"\n{case} over {protocol}, RTT {rtt} ms")
    print(
        f"  {'method':16} {'seconds':>8} {'vs uproot':>9} {'MB/s':>7} {'eff. RTs':>8} {'rounds':>6} "
        f"{'requests':>8} {'conns':>9} {'MB moved':>8}"
    )
    for method, row in summary.items():
        client, server = row["client"], row["server"]
        requests = server.get("requests", client.get("requests"))
        moved = server.get("bytes", client.get("bytes"))
        print(
            f"  {method:16} {row['seconds']:8.3f} {row['time_vs_uproot']:8.2f}x "
            f"{row.get('MB_per_s', 0):7.0f} {row['effective_round_trips'] or 0:8.1f} "
            f"{client.get('rounds', '-')!s:>6} {requests if requests is not None else '-'!s:>8} "
            f"{server.get('connections', client.get('connections', '-'))!s:>9} "
            f"{(moved or 0) / 1e6:8.1f}"
        )
    cold, again = summary["physlite"]["time_vs_uproot"], summary["physlite (reopen)"]["time_vs_uproot"]
    if case.startswith("a"):
        print(f"  physlite time / uproot time: {cold:.2f} first open, {again:.2f} reopened (target <= 0.5)")
    else:
        print(
            f"  physlite throughput / uproot: {1 / cold:.1f}x first open, {1 / again:.1f}x reopened (target >= 3)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = Path(os.environ.get("PHYSLITE_TEST_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--small", type=Path, default=data / "PHYSLITE_example.root")
    parser.add_argument("--large", type=Path, default=REPO / "build" / "data" / "physlite_bench_50k.root")
    parser.add_argument("--rtt", type=float, nargs="+", default=[20, 50], help="round trips to emulate, ms")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=REPO / "build" / "bench" / "remote.json")
    parser.add_argument("--delay-python", type=Path, default=REPO / "build" / "delayenv" / "bin" / "python")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for path in (args.small, args.large, args.delay_python):
        if not path.exists():
            print(
                f"bench-remote: {path} does not exist (make bench-data / make delay-line-env)",
                file=sys.stderr,
            )
            return 2
    args.json = args.json.resolve()
    return inside(args) if args.inside else outside(args)


if __name__ == "__main__":
    sys.exit(main())
