"""The single-node cluster of tools/cluster as the tests drive it: start/stop scripts, kubectl, host state."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "cluster"
sys.path.insert(0, str(TOOLS))
try:
    import chart as facility_chart  # tools/cluster is a script folder, not a package
    import deploy_local  # noqa: F401 (for the tests: make deploy-local's subcharts)
finally:
    sys.path.pop(0)
KUBECONFIG = facility_chart.KUBECONFIG
NETNS = os.environ.get("CLUSTER_NETNS", "physlite-cluster")
STATE = Path(os.environ.get("CLUSTER_STATE", "/var/lib/physlite-facility/cluster"))
RUN = Path(os.environ.get("CLUSTER_RUN", "/run/physlite-cluster"))
# development: CLUSTER_REUSE=1 runs the tests against a running `make cluster` and leaves it running
REUSE = os.environ.get("CLUSTER_REUSE") == "1"
KUBELET_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)


def run_script(name: str, timeout: float) -> float:
    """Run tools/cluster/<name>.sh, fail with its output when it fails; return the seconds it took.

    Example: ``run_script("up", 600)``
    """
    started = time.monotonic()
    result = subprocess.run(
        [str(TOOLS / f"{name}.sh")], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    if result.returncode != 0:
        raise AssertionError(
            f"tools/cluster/{name}.sh failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return time.monotonic() - started


def load_image(image: str) -> None:
    """Load `image` from podman onto the node (tools/cluster/load-images.sh; quick when it is there already);
    AssertionError naming `make images` when podman does not have it.

    Example: ``load_image("ghcr.io/physlite-facility/notebook:0.1.0")``
    """
    loaded = subprocess.run(
        [str(TOOLS / "load-images.sh"), image], capture_output=True, text=True, timeout=900
    )
    assert loaded.returncode == 0 and "skipped" not in loaded.stdout, (
        f"{image} is not on the node (make images): {loaded.stdout}{loaded.stderr}"
    )


def pinned_kubernetes() -> str:
    """The k8s.io/kubernetes version tools/cluster/modules/kubernetes/go.mod requires, e.g. ``v1.35.4``."""
    go_mod = (TOOLS / "modules" / "kubernetes" / "go.mod").read_text()
    return re.search(r"^require k8s.io/kubernetes (v\S+)", go_mod, re.M).group(1)


def build_dir() -> Path:
    """The cache folder of the current build (building it when absent)."""
    result = subprocess.run([str(TOOLS / "build.sh")], capture_output=True, text=True, check=True, cwd=REPO)
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class Cluster:
    """A running cluster: its programs' folder and an admin kubectl."""

    bin: Path

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None) -> str:
        """Run kubectl with the admin kubeconfig; return stdout (AssertionError with stderr when it fails).

        Example: ``cluster.kubectl("get", "nodes", "-o", "name")``
        """
        return facility_chart.kubectl(self.bin / "kubectl", *args, check=check, stdin=stdin, timeout=timeout)

    def json(self, *args: str) -> dict:
        """``kubectl get ... -o json`` parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, manifest: str) -> None:
        """``kubectl apply`` of a YAML text."""
        self.kubectl("apply", "-f", "-", stdin=manifest)


@dataclass(frozen=True)
class HostState:
    """What the cluster must leave as it found it on the host."""

    iptables: str
    ip6tables: str
    routes: str
    sysctls: dict[str, str]
    node_host_paths: frozenset[str]

    @classmethod
    def capture(cls) -> HostState:
        """The host's firewall (without packet counters), routes and the kernel settings the kubelet changes."""
        return cls(
            iptables=_rules("iptables-save"),
            ip6tables=_rules("ip6tables-save"),
            routes=subprocess.run(
                ["ip", "route", "show", "table", "all"], capture_output=True, text=True
            ).stdout,
            sysctls={key: _sysctl(key) for key in KUBELET_SYSCTLS},
            node_host_paths=frozenset(_node_host_paths()),
        )


# Host paths the node's programs use whatever their settings say (shim sockets, runc state, device-plugin
# sockets, pod log links): the cluster must leave them as it found them.
NODE_HOST_PATHS = tuple(
    Path(path)
    for path in (
        "/run/containerd",
        "/opt/containerd",
        "/var/lib/kubelet",
        "/var/log/containers",
        "/var/log/pods",
    )
)


def _node_host_paths() -> list[str]:
    """The node programs' fixed host paths that exist, with what is in them."""
    found = []
    for path in NODE_HOST_PATHS:
        if path.exists():
            found += [str(path), *(str(child) for child in path.rglob("*"))]
    return found


def _rules(command: str) -> str:
    output = subprocess.run([command], capture_output=True, text=True, check=True).stdout
    lines = [line for line in output.splitlines() if not line.startswith("#")]
    return "\n".join(re.sub(r"\[\d+:\d+\]", "[-]", line) for line in lines)


def _sysctl(key: str) -> str:
    return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, check=True).stdout.strip()


def leftovers() -> list[str]:
    """Everything of the cluster still on the host: processes, the namespace, mounts, cgroups, folders."""
    found = []
    marks = (str(STATE), str(RUN), "/var/cache/physlite-facility/cluster")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroups = (proc / "cgroup").read_text()
        except OSError:
            continue
        if any(mark in cmdline for mark in marks) or ":/physlite-cluster/" in cgroups:
            found.append(f"process {proc.name}: {cmdline.strip()}")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"network namespace {line}" for line in netns.splitlines() if line.split()[0] == NETNS]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4]
        if mount_point.startswith((str(STATE), str(RUN))):
            found.append(f"mount {mount_point}")
    found += [f"cgroup {path}" for path in Path("/sys/fs/cgroup").glob("*/physlite-cluster")]
    # results that CNI caches for the node's networks (named in tools/cluster/config/cni.conflist and by
    # containerd's loopback); podman's share the folder
    found += [f"CNI result {path}" for path in Path("/var/lib/cni/results").glob("pods-*")]
    found += [f"CNI result {path}" for path in Path("/var/lib/cni/results").glob("cni-loopback-*")]
    found += [
        f"folder {path}"
        for path in (RUN, STATE / "etcd", STATE / "kubelet", STATE / "volumes")
        if path.exists()
    ]
    return found
