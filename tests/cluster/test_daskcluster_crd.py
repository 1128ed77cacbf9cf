"""Our stand-in DaskCluster CRD (tests/cluster/daskcluster-crd.yaml, applied by tests/cluster/gateway.py when the
subcharts are absent) defines the same resource as dask-gateway 2026.3.0's own (its chart's
crds/daskclusters.yaml): same group, names, scope, versions and status subresource, and it keeps every field the
gateway and its controller write (spec and status, whatever they hold). Where AF_SUBCHARTS names the subcharts,
gateway.py applies the release's CRD itself and the KubeBackend tests run on it."""

from __future__ import annotations

import pytest
import yaml

from .cluster import deploy_local
from .gateway import DASKCLUSTER_CRD

SUBCHARTS = deploy_local.subcharts_folder(None)
pytestmark = pytest.mark.skipif(
    SUBCHARTS is None,
    reason="dask-gateway's CRD ships only in its chart, which cannot be downloaded here: "
    "set AF_SUBCHARTS to a folder holding the subcharts",
)


def _release_crd() -> dict:
    text = deploy_local.subchart_file(SUBCHARTS, "dask-gateway", "crds/daskclusters.yaml")
    assert text is not None, f"{SUBCHARTS}: dask-gateway has no crds/daskclusters.yaml"
    return yaml.safe_load(text)


def _served(crd: dict) -> list[tuple]:
    return [
        (v["name"], v["served"], v["storage"], v.get("subresources")) for v in crd["spec"]["versions"]
    ]  # fmt: skip


def test_the_stand_in_names_the_same_resource_as_the_release():
    ours, release = yaml.safe_load(DASKCLUSTER_CRD.read_text()), _release_crd()
    assert ours["metadata"]["name"] == release["metadata"]["name"] == "daskclusters.gateway.dask.org"
    for key in ("group", "names", "scope"):
        assert ours["spec"][key] == release["spec"][key], key
    assert _served(ours) == _served(release) == [("v1alpha1", True, True, {"status": {}})]


def test_the_stand_in_keeps_what_the_release_keeps():
    """The release's schema validates nothing and keeps every field; ours keeps spec and status whole, the only
    fields (besides apiVersion, kind, metadata) that dask-gateway-server 2026.3.0 writes."""
    [release] = _release_crd()["spec"]["versions"]
    assert release["schema"]["openAPIV3Schema"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    [ours] = yaml.safe_load(DASKCLUSTER_CRD.read_text())["spec"]["versions"]
    properties = ours["schema"]["openAPIV3Schema"]["properties"]
    assert set(properties) == {"spec", "status"}
    for field in properties.values():
        assert field == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
