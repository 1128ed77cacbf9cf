"""Installs our own part of charts/analysis-facility (settings, dashboard guard, NetworkPolicies, health CronJob)
into the cluster of `make cluster` with the Helm SDK (PyPI helm-python-sdk), as `make cluster-chart` does.

    python tools/cluster/chart.py install     # namespace, the Secrets the chart expects, install or upgrade
    python tools/cluster/chart.py uninstall

The subcharts (jupyterhub, dask-gateway) cannot be downloaded here, and Helm refuses to install a chart whose
declared dependencies are missing even when their `condition` switches them off. So, as `make check` does
(af.tools.check.chart.standalone_copy), a copy of the chart without its `dependencies` is installed; the values
still set `jupyterhub.enabled` and `dask-gateway.enabled` to false, which is what switches them off in the whole
chart once `helm dependency build` has fetched them.

Without z2jh nobody creates the Secret `hub` (z2jh generates the gateway's service token in it), so it is made
here with a random token, as is the admin's Secret of `hubEnvSecret`; both are kept when they exist.
The namespace enforces Pod Security `restricted`: our own pods comply with it.

Example:
    >>> facility = Facility()                                              # doctest: +SKIP
    >>> facility.prepare()                                                 # doctest: +SKIP
    >>> facility.deploy({"settings": {"culling": {"server_idle_timeout": 7200}}})["revision"]  # doctest: +SKIP
    2
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import yaml

from af.tools.check.chart import standalone_copy
from af.tools.check.repo import Repo

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = REPO / "build" / "cluster" / "kubeconfig"
KUBECTL = REPO / "build" / "cluster" / "kubectl"  # up.sh links the cluster's own kubectl here
KUBE_CACHE = REPO / "build" / "cluster" / "kube-cache"
NAMESPACE = "analysis-facility"
RELEASE = "analysis-facility"
POD_SECURITY = "restricted"
SUBCHARTS = ("jupyterhub", "dask-gateway")
# the Secret z2jh generates and the keys of it our templates and values read
Z2JH_SECRET = "hub"
Z2JH_KEYS = (
    "hub.services.dask-gateway.apiToken",
    "hub.services.servicex.apiToken",
    "hub.config.CryptKeeper.keys",
)


def with_subcharts_off(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values with each subchart's `enabled` (its `condition` in Chart.yaml) set to false.

    Example:
        >>> with_subcharts_off({"jupyterhub": {"hub": {}}})["jupyterhub"]
        {'hub': {}, 'enabled': False}
    """
    return {**values, **{name: {**values.get(name, {}), "enabled": False} for name in SUBCHARTS}}


def kubectl(
    binary: Path, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120
) -> str:
    """Run the cluster's kubectl with the admin kubeconfig (discovery cache in build/cluster, not ~/.kube); its
    stdout, or RuntimeError naming the command and kubectl's error.

    Example:
        >>> kubectl(KUBECTL, "get", "nodes", "-o", "name")  # doctest: +SKIP
        'node/physlite-node\\n'
    """
    result = subprocess.run(
        [str(binary), "--kubeconfig", str(KUBECONFIG), "--cache-dir", str(KUBE_CACHE), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Facility:
    """Our release in the running cluster: kubectl and the Helm SDK with the admin kubeconfig."""

    kubectl_binary: Path = KUBECTL
    namespace: str = NAMESPACE
    helm: helm_python.Config = field(init=False)

    def __post_init__(self) -> None:
        if not KUBECONFIG.exists():
            raise SystemExit(f"{KUBECONFIG} does not exist: start the cluster first (make cluster)")
        self.helm = helm_python.Config(kubeconfig_path=KUBECONFIG, namespace=self.namespace)

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120) -> str:
        """kubectl in the release namespace (see :func:`kubectl`)."""
        return kubectl(
            self.kubectl_binary, "-n", self.namespace, *args, check=check, stdin=stdin, timeout=timeout
        )

    def prepare(self, pod_security: str = POD_SECURITY, z2jh_secret: bool = True) -> None:
        """The namespace (Pod Security `pod_security` enforced) and the Secrets the chart expects to exist (the
        Secret `hub` only with `z2jh_secret`: with the jupyterhub subchart, z2jh makes and owns it)."""
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": self.namespace,
                "labels": {
                    "pod-security.kubernetes.io/enforce": pod_security,
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(namespace))
        self.hub_env_secret()
        if z2jh_secret:
            self._secret_unless_present(Z2JH_SECRET, Z2JH_KEYS)

    def hub_env_secret(self) -> dict[str, str]:
        """The admin's Secret of `hubEnvSecret` (made with random values when absent): key -> value."""
        hub_env = helm_python.Chart.load(REPO / "charts" / "analysis-facility").values["hubEnvSecret"]
        self._secret_unless_present(hub_env["name"], hub_env["keys"])
        data = json.loads(self.kubectl("get", "secret", hub_env["name"], "-o", "json"))["data"]
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def _secret_unless_present(self, name: str, keys: list[str] | tuple[str, ...]) -> None:
        if self.kubectl("get", "secret", name, "--ignore-not-found", "-o", "name").strip():
            return
        literals = [f"--from-literal={key}={secrets.token_hex(32)}" for key in keys]
        self.kubectl("create", "secret", "generic", name, *literals)

    def deploy(
        self,
        values: Mapping[str, Any] | None = None,
        timeout: int = 120,
        rollback_on_failure: bool = False,
        chart_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Install the release, or upgrade it with `values` (chart defaults + these), waiting until its objects are
        ready; with `rollback_on_failure` a failed upgrade is rolled back (helm's --atomic). The release summary.
        Without `chart_dir` (the whole chart, its subcharts in charts/) our own part is installed, subcharts off.
        """
        options = {"wait": "watcher", "timeout": timeout, "rollback_on_failure": rollback_on_failure}
        with contextlib.ExitStack() as stack:
            if chart_dir is None:
                values = with_subcharts_off(values or {})
                chart_dir = stack.enter_context(standalone_copy(Repo.discover()))
            chart = helm_python.Chart.load(chart_dir)
            if self.exists():
                return self.helm.upgrade(
                    chart, RELEASE, dict(values or {}), cleanup_on_fail=rollback_on_failure, **options
                )
            return self.helm.install(chart, RELEASE, dict(values or {}), **options)

    def exists(self) -> bool:
        """Whether the release has any revision."""
        try:
            self.helm.history(RELEASE)
        except helm_python.HelmNotFoundError:
            return False
        return True

    def uninstall(self) -> None:
        """Remove the release (the namespace and its Secrets stay)."""
        self.helm.uninstall(RELEASE, wait="watcher", timeout=120, ignore_not_found=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/cluster/chart.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("-f", "--values", type=Path, help="a values file (on top of the chart's defaults)")
    args = parser.parse_args(argv)
    facility = Facility()
    if args.action == "uninstall":
        facility.uninstall()
        print(f"cluster: release {RELEASE} removed from namespace {NAMESPACE}")
        return 0
    values = yaml.safe_load(args.values.read_text()) if args.values else {}
    if not isinstance(values, dict):
        raise SystemExit(f"{args.values}: values must be a mapping")
    facility.prepare()
    try:
        release = facility.deploy(values)
    except helm_python.HelmError as err:
        print(f"cluster: helm install/upgrade of {RELEASE} failed: {err}", file=sys.stderr)
        return 1
    print(
        f"cluster: release {RELEASE} revision {release['revision']} {release['status']} in namespace {NAMESPACE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
