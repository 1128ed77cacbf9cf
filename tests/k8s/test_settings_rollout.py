"""The settings-rollout hook (templates/settings-rollout.yaml, af.tools.settings_rollout): after an install or
upgrade it stamps the settings' checksum on the hub's and the gateway API's pod templates, so that changed
settings restart them (they read the settings ConfigMap only at start) and unchanged settings restart nothing."""

from __future__ import annotations

import copy

import yaml

from af.tools.check.chart import render, standalone_copy
from af.tools.check.pod_security import baseline_violations
from af.tools.settings_rollout import ANNOTATION, Api, RolloutError, roll
from tests.k8s.conftest import errors

FULL = "charts/analysis-facility/examples/full.yaml"
NAME = "analysis-facility-settings-rollout"


def _objects(repo, values: str = FULL) -> dict:
    with standalone_copy(repo) as chart_dir:
        rendered, findings = render(repo, chart_dir, repo.root / values)
    assert errors(findings) == []
    return {(d["kind"], d["metadata"]["name"]): d for d in rendered.documents()}


def _checksum(objects: dict) -> str:
    command = objects["Job", NAME]["spec"]["template"]["spec"]["containers"][0]["command"]
    return command[command.index("--checksum") + 1]


def test_the_hook_job_is_restricted_and_may_only_touch_the_two_deployments(real_repo) -> None:
    objects = _objects(real_repo)
    job = objects["Job", NAME]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-upgrade"
    assert "hook-succeeded" in job["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/physlite-facility/hub:0.1.0"
    assert container["command"][:3] == ["python", "-m", "af.tools.settings_rollout"]
    assert container["command"][-2:] == ["hub", "api-dask-gateway"]
    assert baseline_violations(pod) == []
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["serviceAccountName"] == NAME
    [rule] = objects["Role", NAME]["rules"]
    assert rule == {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "resourceNames": ["hub", "api-dask-gateway"],
        "verbs": ["get", "patch"],
    }
    policy = objects["NetworkPolicy", NAME]["spec"]
    assert policy["ingress"] == [] and {p["port"] for p in policy["egress"][0]["ports"]} == {443, 6443}


def test_the_checksum_follows_the_settings_and_nothing_else(scratch) -> None:
    before = _checksum(_objects(scratch))
    values = scratch.root / FULL
    data = yaml.safe_load(values.read_text())
    data.setdefault("healthCheck", {})["schedule"] = "*/7 * * * *"  # not a setting
    values.write_text(yaml.safe_dump(data))
    assert _checksum(_objects(scratch)) == before
    data["settings"]["hub"]["public_url"] = "https://af2.example.org"
    values.write_text(yaml.safe_dump(data))
    assert _checksum(_objects(scratch)) != before


class _Deployments:
    """The API's answers for a namespace holding the given Deployments (the patch applied as the API would)."""

    def __init__(self, present: dict[str, dict], forbidden: tuple[str, ...] = ()) -> None:
        self.present = copy.deepcopy(present)
        self.forbidden = forbidden
        self.patches: list[str] = []

    def __call__(self, method: str, path: str, body: bytes | None) -> tuple[int, dict]:
        name = path.rsplit("/", 1)[1]
        if name in self.forbidden:
            return 403, {"message": f'deployments.apps "{name}" is forbidden'}
        if name not in self.present:
            return 404, {"message": "not found"}
        if method == "PATCH":
            self.patches.append(name)
            annotations = yaml.safe_load(body)["spec"]["template"]["metadata"]["annotations"]
            self.present[name]["spec"]["template"]["metadata"].setdefault("annotations", {}).update(
                annotations
            )
        return 200, self.present[name]


def _deployment(checksum: str | None = None) -> dict:
    return {"spec": {"template": {"metadata": {"annotations": {ANNOTATION: checksum} if checksum else {}}}}}


def test_roll_patches_only_changed_deployments_and_skips_missing_ones() -> None:
    api = _Deployments({"hub": _deployment("old"), "api-dask-gateway": _deployment("new")})
    lines: list[str] = []
    assert roll(Api("facility", api), ["hub", "api-dask-gateway", "absent"], "new", lines.append) == ["hub"]
    assert api.patches == ["hub"]
    assert api.present["hub"]["spec"]["template"]["metadata"]["annotations"][ANNOTATION] == "new"
    assert any("facility/absent: not found, skipped" in line for line in lines)
    # a second run with the same settings restarts nothing
    assert roll(Api("facility", api), ["hub", "api-dask-gateway"], "new", lines.append) == []


def test_a_forbidden_deployment_is_named() -> None:
    api = _Deployments({"hub": _deployment()}, forbidden=("hub",))
    try:
        roll(Api("facility", api), ["hub"], "new", print)
    except RolloutError as error:
        assert "Deployment facility/hub" in str(error) and "403" in str(error)
    else:
        raise AssertionError("a forbidden Deployment must raise")


def test_with_the_subcharts_off_there_is_no_hook(scratch) -> None:
    values = scratch.root / FULL
    data = yaml.safe_load(values.read_text())
    data["dask-gateway"] = {**data.get("dask-gateway", {}), "enabled": False}
    data["jupyterhub"] = {**data.get("jupyterhub", {}), "enabled": True}
    values.write_text(yaml.safe_dump(data))
    job = _objects(scratch)["Job", NAME]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "hub"
    data["jupyterhub"]["enabled"] = False
    values.write_text(yaml.safe_dump(data))
    assert not [key for key in _objects(scratch) if NAME in key[1]]
