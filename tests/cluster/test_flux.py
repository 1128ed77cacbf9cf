"""Flux on the real cluster: its controllers built from their Go modules reconcile flux/clusters/staging from a git
server on this machine serving this repository, decrypt the staging SOPS Secrets with an age key made for the
test, install the HelmRelease, and reconcile a commit that changes the values as a Helm upgrade.

What differs from production is listed (and done) in tests/cluster/flux.py: a test overlay commit (the chart
without its undownloadable subchart dependencies; the staging Secrets re-created with the same names and keys and
test values, encrypted for the test's own age key) and the bootstrap's patches (the GitRepository on the loopback
git server, the subcharts' HelmRepositories suspended, a namespace of the test's own, the subcharts switched off
by their `enabled` values).
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import certifi
import pytest
import yaml

from .cluster import Cluster, facility_chart, load_image
from .flux import (
    CONTROLLERS,
    AgeKey,
    TestRepository,
    bootstrap_manifest,
    controller_image,
    git_server,
    install_controllers,
    request_reconcile,
    uninstall_controllers,
    wait_ready,
)
from .test_chart import hub_image

NAMESPACE = "af-flux-test"
GIT_PORT = int(os.environ.get("CLUSTER_GIT_PORT", "18418"))
RELEASE = "analysis-facility"


@dataclass
class Staging:
    """Flux running with flux/clusters/staging reconciled and the release installed."""

    cluster: Cluster
    repo: TestRepository
    install_seconds: float

    def release_secrets(self) -> list[str]:
        """Helm's release records in the namespace (sh.helm.release.v1.<release>.v<revision>)."""
        names = self.cluster.kubectl("-n", NAMESPACE, "get", "secrets", "-o", "name").split()
        return sorted(
            n.split("/")[1] for n in names if n.startswith(f"secret/sh.helm.release.v1.{RELEASE}.v")
        )

    def settings(self) -> dict:
        """The settings.yaml of the release's settings ConfigMap."""
        data = self.cluster.json("-n", NAMESPACE, "configmap", "analysis-facility-settings")["data"]
        return yaml.safe_load(data["settings.yaml"])


@pytest.fixture(scope="module")
def staging(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Staging]:
    load_image(hub_image())
    folder = tmp_path_factory.mktemp("flux")
    key = AgeKey.create()
    repo = TestRepository.create(folder, key)
    install_controllers(cluster)
    cluster.kubectl("-n", "flux-system", "create", "secret", "generic", "sops-age", "--from-literal",
                    f"age.agekey={key.private}")  # fmt: skip
    # no z2jh here: the Secret it would generate (tools/cluster/chart.py makes it the same way)
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("-n", NAMESPACE, "create", "secret", "generic", facility_chart.Z2JH_SECRET,
                    *(f"--from-literal={k}={secrets.token_hex(32)}" for k in facility_chart.Z2JH_KEYS))  # fmt: skip
    # the CA bundle the staging values mount for rucio (servicex.rucioCa), made by the admin as docs/admin.md says
    cluster.kubectl(
        "-n", NAMESPACE, "create", "configmap", "grid-ca-bundle", f"--from-file=ca.pem={certifi.where()}"
    )
    try:
        with git_server(folder / "repos", GIT_PORT) as url:
            started = time.monotonic()
            cluster.apply(bootstrap_manifest(f"{url}/facility.git", NAMESPACE))
            wait_ready(cluster, "helmrelease", RELEASE, NAMESPACE, 900)
            yield Staging(cluster, repo, time.monotonic() - started)
    finally:
        cleanup(cluster)
        uninstall_controllers(cluster)


def cleanup(cluster: Cluster) -> None:
    """Flux's objects first (while the controllers run: their finalizers uninstall the release and prune), then
    the namespace."""
    cluster.kubectl("-n", "flux-system", "delete", "--ignore-not-found", "--wait", "kustomization", "flux-system",
                    timeout=600, check=False)  # fmt: skip
    for kind, namespace in (("kustomizations,gitrepositories,helmrepositories,helmcharts", "flux-system"),
                            ("helmreleases", NAMESPACE)):  # fmt: skip
        cluster.kubectl("-n", namespace, "delete", "--all", "--ignore-not-found", "--wait", kind, timeout=600,
                        check=False)  # fmt: skip
    cluster.kubectl(
        "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait", timeout=600, check=False
    )


def test_controllers_run_from_the_images_built_from_their_modules(staging: Staging):
    pods = staging.cluster.json("-n", "flux-system", "pods")["items"]
    running = {
        pod["metadata"]["labels"]["app"]: pod["spec"]["containers"][0]["image"]
        for pod in pods
        if pod["status"]["phase"] == "Running"
    }
    assert running == {controller: controller_image(controller) for controller in CONTROLLERS}


def test_staging_is_reconciled_into_a_helm_release(staging: Staging):
    release = staging.cluster.json("-n", NAMESPACE, "helmrelease", RELEASE)
    assert release["status"]["history"][0]["chartName"] == "analysis-facility"
    assert staging.release_secrets() == [f"sh.helm.release.v1.{RELEASE}.v1"]
    settings = staging.settings()
    # flux/deploy/staging/values.yaml, through the generated ConfigMap and valuesFrom
    assert settings["hub"]["public_url"] == "https://af-staging.example.org"
    assert settings["culling"]["server_idle_timeout"] == 1800
    guard = staging.cluster.json("-n", NAMESPACE, "deployment", "analysis-facility-dashboard-guard")
    assert guard["status"].get("readyReplicas") == 1


def test_sops_secrets_are_decrypted_with_the_clusters_age_key(staging: Staging):
    for name, values in staging.repo.secret_values.items():
        data = staging.cluster.json("-n", NAMESPACE, "secret", name)["data"]
        assert {k: base64.b64decode(v).decode() for k, v in data.items()} == values
    # what git holds is ciphertext only
    committed = (staging.repo.work / "flux/deploy/staging/hub-env.sops.yaml").read_text()
    assert not any(v in committed for values in staging.repo.secret_values.values() for v in values.values())


def test_a_values_commit_is_reconciled_as_an_upgrade(staging: Staging):
    commit = staging.repo.commit_values_change({"culling": {"server_idle_timeout": 3600}})
    request_reconcile(staging.cluster, "gitrepository", "analysis-facility")
    # The new commit reaches the release by two paths that Flux reconciles separately: the chart rebuilt for the
    # new revision (reconcileStrategy Revision) and the values ConfigMap (a new name: kustomize's content hash).
    # Each may be its own upgrade, so the release ends at revision 2 or 3; wait for the one with both.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not _has_commit_and_values(staging, commit):
        time.sleep(3)
    release = wait_ready(staging.cluster, "helmrelease", RELEASE, NAMESPACE, 600)
    history = release["status"]["history"]
    assert history[0]["status"] == "deployed", history[0]
    assert history[0]["chartVersion"].endswith(commit[:12]), history[0]
    latest = history[0]["version"]
    # upgrades of the one installed release (Helm's records v1..vN), never a reinstall
    assert latest in (2, 3), history
    assert staging.release_secrets() == [f"sh.helm.release.v1.{RELEASE}.v{n}" for n in range(1, latest + 1)]
    assert staging.settings()["culling"]["server_idle_timeout"] == 3600


def _has_commit_and_values(staging: Staging, commit: str) -> bool:
    history = history_of(staging)
    return bool(
        history
        and history[0]["chartVersion"].endswith(commit[:12])
        and history[0].get("status") == "deployed"
        and staging.settings()["culling"]["server_idle_timeout"] == 3600
    )


def history_of(staging: Staging) -> list[dict]:
    """The HelmRelease's release history, newest first."""
    return staging.cluster.json("-n", NAMESPACE, "helmrelease", RELEASE).get("status", {}).get("history", [])
