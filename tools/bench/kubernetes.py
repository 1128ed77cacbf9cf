"""`make bench` for the Kubernetes deployment: the figures of the one-machine cluster, measured in this run by the
cluster tests that produce them, side by side with the local facility's figures for the same steps.

Runs, with pytest (the tests write their figures to build/bench/*.json, see each test module):
- tests/cluster/test_chart.py's install test: the cluster's warm start (when the cluster is not already running:
  the tests then start it from the build cache and stop it afterwards) and our chart's Helm install;
- tests/cluster/test_kubespawner.py's first test: Chromium login -> KubeSpawner's form -> JupyterLab in a pod;
- tests/cluster/test_kube_gateway.py's first test: a dask-gateway cluster (KubeBackend) with two worker pods.

and, as the anchor, the same two steps on the local facility (`make up`'s facility, users' servers and dask
workers in containers of the same images): tests/e2e/test_browser.py's first test (login -> JupyterLab, then a
gateway cluster with two workers from a notebook; build/e2e/timings.json).

The cold build's time is the one recorded when the cluster's build cache was made (tools/cluster/build.sh: each
module's compile time with an empty Go build cache, plus the images), not measured again here (about half an
hour). When the cluster is already running, its warm start is the one of its last `make cluster`.

Example:
    python tools/bench/kubernetes.py --json build/bench/kubernetes.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "build" / "bench"
TESTS = [
    "tests/cluster/test_chart.py::test_install_brings_the_dashboard_guard_to_ready",
    "tests/cluster/test_kubespawner.py::test_user_pod_runs_the_notebook_image_as_1000_with_the_profile_resources",
    "tests/cluster/test_kube_gateway.py::test_scheduler_and_workers_are_pods_of_the_notebook_image_as_uid_1000",
    "tests/e2e/test_browser.py::test_atlas_user_runs_gateway_cluster_from_a_tutorial",
]
LOCAL = REPO / "build" / "e2e" / "timings.json"
# (file, key, what it means, key of the local facility's figure for the same step or None)
FIGURES = [
    ("cluster.json", "cold_build_seconds", "cold build of the cluster (recorded when cached)", None),
    ("cluster.json", "warm_start_seconds", "make cluster, build cached: node Ready, add-ons rolled out", None),
    ("cluster.json", "chart_install_seconds", "helm install of our chart part, guard Ready", None),
    ("cluster-login.json", "login_to_jupyterlab_s", "login -> JupyterLab (KubeSpawner pod)", "login_to_jupyterlab_s"),
    ("kube-gateway.json", "cluster_and_2_workers_seconds", "gateway cluster + 2 worker pods", "cluster_ready_s"),
]  # fmt: skip


def cluster_running() -> bool:
    """Whether the cluster of `make cluster` answers (then the tests reuse it and leave it running)."""
    kubectl, config = REPO / "build/cluster/kubectl", REPO / "build/cluster/kubeconfig"
    if not (kubectl.exists() and config.exists()):
        return False
    probe = [str(kubectl), "--kubeconfig", str(config), "get", "--raw", "/readyz", "--request-timeout=5s"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def run_tests(reuse: bool) -> None:
    """The cluster tests that write the figures; exits with pytest's status when one fails or skips."""
    started = time.time()
    env = {**os.environ, **({"CLUSTER_REUSE": "1"} if reuse else {})}
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *TESTS]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    print(result.stdout[-3000:], end="")
    if result.returncode != 0 or " skipped" in result.stdout.splitlines()[-1]:
        sys.exit(f"kubernetes bench: the cluster tests did not all pass (pytest exit {result.returncode})")
    written = [BENCH / name for name, *_ in FIGURES[2:]] + [LOCAL]
    stale = [str(path.relative_to(REPO)) for path in written if path.stat().st_mtime < started]
    if stale:
        sys.exit(f"kubernetes bench: {sorted(set(stale))} not written by this run")


def collect(reused: bool) -> dict:
    """The figures of this run, beside the local facility's, as one JSON document."""
    local = _read(LOCAL)
    rows = []
    for name, key, means, local_key in FIGURES:
        value = _read(BENCH / name).get(key)
        if key == "warm_start_seconds" and reused:
            value = float((REPO / "build/cluster/up-seconds").read_text())
            means += " (the running cluster's last start)"
        anchor = local.get(local_key) if local_key else None
        ratio = round(value / anchor, 2) if value and anchor else None
        rows.append({"figure": key, "seconds": value, "means": means, "local_facility_seconds": anchor,
                     "kubernetes_over_local": ratio})  # fmt: skip
    return {"kubernetes": _read(BENCH / "cluster.json").get("kubernetes"), "figures": rows,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def show(report: dict) -> None:
    print(f"\nKubernetes {report['kubernetes']} on this machine (one node)")
    print(f"{'figure':<32}{'seconds':>9}{'local':>9}{'k8s/local':>11}  means")
    for row in report["figures"]:
        local = row["local_facility_seconds"]
        ratio = row["kubernetes_over_local"]
        print(
            f"{row['figure']:<32}{row['seconds'] if row['seconds'] is not None else '-':>9}"
            f"{local if local is not None else '-':>9}{ratio if ratio is not None else '-':>11}  {row['means']}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=BENCH / "kubernetes.json", help="where the figures go")
    args = parser.parse_args(argv)
    reuse = cluster_running()
    run_tests(reuse)
    report = collect(reuse)
    show(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
