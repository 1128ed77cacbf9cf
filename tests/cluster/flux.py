"""Flux on the cluster of tools/cluster, reconciling flux/clusters/staging from a git server on the machine.

The pieces, each as production has it except where named:

- the controllers (source-, kustomize-, helm-controller) from the images tools/cluster/build.sh builds from their
  Go modules, with the CRDs of the same releases (the build's crds/flux/), as pods in flux-system
  (tools/cluster/flux/controllers.yaml);
- the repository: a clone of this repository's HEAD with one commit on top, the *test overlay*
  (`TestRepository.overlay`), served over smart HTTP by tests/cluster/git_server.py on the node's address inside
  the node's network namespace (pods clone from it; nothing leaves the machine);
- what `flux bootstrap` would create: a GitRepository and a Kustomization `flux-system` for
  flux/clusters/staging, here with the patches of `bootstrap_manifest` (the differences from production).

What differs from production, all of it in this file:

1. the test overlay commit: charts/analysis-facility/Chart.yaml without `dependencies` (the subcharts jupyterhub
   and dask-gateway cannot be downloaded here, and source-controller, like Helm, fetches declared dependencies
   even when their `condition` is false); the staging rule of .sops.yaml names the test's own age key, and
   flux/deploy/staging/*.sops.yaml are re-created with the same Secret names and keys, random test values,
   encrypted with that key (the committed ones are encrypted for the real staging key, which the test has not);
2. the bootstrap's patches: the GitRepository `analysis-facility` points at the loopback git server instead of
   GitHub; the HelmRepositories of the subcharts are suspended (unreachable, and nothing may leave the
   machine); the Flux Kustomization `analysis-facility` gets `targetNamespace` (a namespace of the test's own, as
   other tests use `analysis-facility` on the same cluster) and a patch of the HelmRelease setting
   `jupyterhub.enabled` and `dask-gateway.enabled` to false (the values that switch the subcharts off);
3. the Secret `hub` that z2jh would generate is created by the test (no z2jh here), as tools/cluster/chart.py does.

Example:
    >>> repo = TestRepository.create(tmp_path, namespace="af-flux-test")  # doctest: +SKIP
    >>> repo.commit_values_change({"culling": {"server_idle_timeout": 3600}})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .cluster import NETNS, REPO, RUN, TOOLS, Cluster

CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller")
IMAGE_PREFIX = "localhost/physlite-cluster"  # tools/cluster/lib.sh IMAGE_PREFIX
NODE_IP = "10.201.0.1"  # tools/cluster/lib.sh NODE_IP
STAGING = "flux/deploy/staging"
SOPS = REPO / ".venv" / "bin" / "sops"


def controller_image(controller: str) -> str:
    """The image build.sh makes of `controller` (tools/cluster/lib.sh flux_image), at its pinned version.

    Example:
        >>> controller_image("helm-controller")
        'localhost/physlite-cluster/helm-controller:v1.6.4'
    """
    go_mod = (TOOLS / "modules" / controller / "go.mod").read_text()
    version = re.search(rf"^require github.com/fluxcd/{controller} (v\S+)", go_mod, re.M).group(1)
    return f"{IMAGE_PREFIX}/{controller}:{version}"


def import_images(build: Path) -> None:
    """Import the controllers' image archives of the build folder into the node's containerd (the cluster may
    have been started before they were built)."""
    holder = (RUN / "pids" / "holder").read_text().strip()
    for controller in CONTROLLERS:
        subprocess.run(
            [
                "nsenter",
                f"--mount=/proc/{holder}/ns/mnt",
                f"--net=/run/netns/{NETNS}",
                "--",
                "ctr",
                "--address",
                str(RUN / "containerd" / "containerd.sock"),
                "-n",
                "k8s.io",
                "images",
                "import",
                str(build / "images" / f"{controller}.tar"),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )


def install_controllers(cluster: Cluster) -> None:
    """The CRDs of the controllers' releases and the controllers (rolled out)."""
    build = cluster.bin.parent
    import_images(build)
    for crd in sorted((build / "crds" / "flux").glob("*.yaml")):
        # server-side: the CRDs are larger than client-side apply's last-applied annotation may be
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    for crd in sorted((build / "crds" / "flux").glob("*.yaml")):
        name = yaml.safe_load(crd.read_text())["metadata"]["name"]
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    manifest = (TOOLS / "flux" / "controllers.yaml").read_text()
    for controller in CONTROLLERS:
        placeholder = f"@{controller.upper().replace('-', '_')}_IMAGE@"
        manifest = manifest.replace(placeholder, controller_image(controller))
    cluster.apply(manifest)
    for controller in CONTROLLERS:
        cluster.kubectl(
            "-n",
            "flux-system",
            "rollout",
            "status",
            f"deployment/{controller}",
            "--timeout=300s",
            timeout=320,
        )


def uninstall_controllers(cluster: Cluster) -> None:
    """Remove the controllers, their namespace, RBAC and CRDs (call after their objects are gone)."""
    manifest = (TOOLS / "flux" / "controllers.yaml").read_text()
    cluster.kubectl("delete", "--ignore-not-found", "--wait", "-f", "-", stdin=manifest, timeout=300)
    for crd in sorted((cluster.bin.parent / "crds" / "flux").glob("*.yaml")):
        cluster.kubectl("delete", "--ignore-not-found", "-f", str(crd), timeout=300)


def git(folder: Path, *args: str) -> str:
    """Run git in `folder` (a fixed identity, no user configuration); its stdout."""
    env = {
        "GIT_AUTHOR_NAME": "flux test",
        "GIT_AUTHOR_EMAIL": "flux-test@localhost",
        "GIT_COMMITTER_NAME": "flux test",
        "GIT_COMMITTER_EMAIL": "flux-test@localhost",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["git", *args], cwd=folder, env=env, check=True, capture_output=True, text=True
    ).stdout


@dataclass
class AgeKey:
    """An age key pair made for the test (age-keygen)."""

    private: str
    public: str

    @classmethod
    def create(cls) -> AgeKey:
        private = subprocess.run(["age-keygen"], check=True, capture_output=True, text=True).stdout
        public = re.search(r"^# public key: (age1\S+)", private, re.M).group(1)
        return cls(private=private, public=public)


@dataclass
class TestRepository:
    """The clone served to Flux: a working copy (commits are made here) pushed to a bare repository."""

    work: Path
    bare: Path
    key: AgeKey
    secret_values: dict[str, dict[str, str]]  # Secret name -> key -> the test's clear value

    __test__ = False  # not a pytest class

    @classmethod
    def create(cls, folder: Path, key: AgeKey) -> TestRepository:
        """Clone this repository's HEAD, commit the test overlay, push it to `folder`/repos/facility.git."""
        work, bare = folder / "work", folder / "repos" / "facility.git"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(work)], check=True)
        git(work, "checkout", "--quiet", "-B", "main")
        repo = cls(work=work, bare=bare, key=key, secret_values={})
        repo.overlay()
        bare.parent.mkdir(parents=True)
        subprocess.run(["git", "clone", "--quiet", "--bare", str(work), str(bare)], check=True)
        git(work, "remote", "set-url", "origin", str(bare))
        return repo

    def overlay(self) -> None:
        """The test overlay commit (point 1 of the module's list of differences from production)."""
        chart = self.work / "charts" / "analysis-facility"
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        meta.pop("dependencies", None)
        (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        (chart / "Chart.lock").unlink(missing_ok=True)
        rules = yaml.safe_load((self.work / ".sops.yaml").read_text())
        for rule in rules["creation_rules"]:
            if rule["path_regex"].startswith(STAGING):
                rule["age"] = self.key.public
        (self.work / ".sops.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
        for path in sorted((self.work / STAGING).glob("*.sops.yaml")):
            self.secret_values.update(self._reencrypt(path))
        git(self.work, "add", "-A")
        git(
            self.work,
            "commit",
            "--quiet",
            "-m",
            "flux test overlay: chart without dependencies, test age key",
        )

    def _reencrypt(self, path: Path) -> dict[str, dict[str, str]]:
        """Re-create the encrypted Secret at `path` with its names and keys and random values, encrypted with
        the test's key; the clear values by Secret name."""
        encrypted = yaml.safe_load(path.read_text())
        field = "stringData" if "stringData" in encrypted else "data"
        values = {key: f"flux-test-{secrets.token_hex(8)}" for key in encrypted[field]}
        clear = {k: v for k, v in encrypted.items() if k not in ("sops", "data", "stringData")}
        clear["stringData"] = values
        path.write_text(yaml.safe_dump(clear, sort_keys=False))
        subprocess.run(
            [str(SOPS), "--encrypt", "--in-place", str(path.relative_to(self.work))],
            cwd=self.work,
            check=True,
            capture_output=True,
        )
        return {clear["metadata"]["name"]: values}

    def commit_values_change(self, settings: Mapping[str, Any]) -> str:
        """Merge `settings` into flux/deploy/staging/values.yaml's `settings`, commit and push; the commit."""
        path = self.work / STAGING / "values.yaml"
        values = yaml.safe_load(path.read_text())
        for key, value in settings.items():
            values["settings"][key] = {**values["settings"].get(key, {}), **value}
        path.write_text(yaml.safe_dump(values, sort_keys=False))
        git(self.work, "commit", "--quiet", "-am", f"staging values: {dict(settings)}")
        git(self.work, "push", "--quiet", "origin", "main")
        return git(self.work, "rev-parse", "HEAD").strip()

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD").strip()


@contextlib.contextmanager
def git_server(root: Path, port: int) -> Iterator[str]:
    """tests/cluster/git_server.py serving `root` on the node's address inside its network namespace; the base
    URL pods use."""
    server = subprocess.Popen(
        [
            "ip", "netns", "exec", NETNS, sys.executable, "-m", "tests.cluster.git_server",
            "--listen", f"{NODE_IP}:{port}", "--root", str(root),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://{NODE_IP}:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["ip", "netns", "exec", NETNS, "git", "ls-remote", f"{url}/facility.git"], capture_output=True
            )
            if probe.returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the git server on {url} did not answer: {probe.stderr.decode()}")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def bootstrap_manifest(repository_url: str, namespace: str) -> str:
    """What `flux bootstrap --path=flux/clusters/staging` creates (a GitRepository and a Kustomization
    flux-system), with the patches that are the differences from production (point 2 of the module's list)."""
    not_subcharts = {"jupyterhub": {"enabled": False}, "dask-gateway": {"enabled": False}}
    # a JSON patch with a target: a strategic-merge patch without a namespace matches no object once the
    # Kustomization has set one ("no matches for Id HelmRelease...[noNs]")
    helmrelease_patch = {
        "target": {"kind": "HelmRelease", "name": "analysis-facility"},
        "patch": yaml.safe_dump([{"op": "add", "path": "/spec/values", "value": not_subcharts}]),
    }
    patches = [
        {
            "target": {"kind": "GitRepository", "name": "analysis-facility"},
            "patch": yaml.safe_dump(
                [{"op": "replace", "path": "/spec/url", "value": repository_url},
                 {"op": "replace", "path": "/spec/interval", "value": "1m"}]
            ),
        },
        {
            "target": {"kind": "HelmRepository"},
            "patch": yaml.safe_dump([{"op": "add", "path": "/spec/suspend", "value": True}]),
        },
        {
            "target": {"kind": "Kustomization", "name": "analysis-facility"},
            "patch": yaml.safe_dump(
                [
                    {"op": "add", "path": "/spec/targetNamespace", "value": namespace},
                    {"op": "replace", "path": "/spec/interval", "value": "1m"},
                    {"op": "add", "path": "/spec/patches", "value": [helmrelease_patch]},
                ]
            ),
        },
    ]  # fmt: skip
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"interval": "1m", "url": repository_url, "ref": {"branch": "main"}},
    }
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {
            "interval": "1m",
            "path": "./flux/clusters/staging",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            "patches": patches,
        },
    }
    return yaml.safe_dump_all([source, kustomization])


def request_reconcile(cluster: Cluster, kind: str, name: str, namespace: str = "flux-system") -> None:
    """Ask Flux to reconcile `kind`/`name` now (what `flux reconcile` does: the requestedAt annotation)."""
    cluster.kubectl(
        "-n",
        namespace,
        "annotate",
        "--overwrite",
        kind,
        name,
        f"reconcile.fluxcd.io/requestedAt={time.time_ns()}",
    )


def wait_ready(cluster: Cluster, kind: str, name: str, namespace: str, timeout: float) -> dict:
    """Wait until `kind`/`name` is Ready=True for its current generation; the object. AssertionError with its
    conditions (and the Flux objects' states) when it is not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    found: dict = {}
    while time.monotonic() < deadline:
        found = cluster.json("-n", namespace, kind, name) if _exists(cluster, kind, name, namespace) else {}
        status = found.get("status", {})
        ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
        if (
            ready
            and ready[0]["status"] == "True"
            and status.get("observedGeneration") == found["metadata"]["generation"]
        ):
            return found
        time.sleep(3)
    states = cluster.kubectl(
        "get", "gitrepositories,kustomizations,helmreleases,helmcharts", "-A", check=False
    )
    raise AssertionError(
        f"{kind} {namespace}/{name} not Ready after {timeout}s: {found.get('status', {}).get('conditions')}\n{states}"
    )


def _exists(cluster: Cluster, kind: str, name: str, namespace: str) -> bool:
    return bool(
        cluster.kubectl("-n", namespace, "get", kind, name, "--ignore-not-found", "-o", "name").strip()
    )
