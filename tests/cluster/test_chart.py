"""Our own part of charts/analysis-facility installed with the Helm SDK on the cluster of `make cluster`
(tools/cluster/chart.py: subcharts off, namespace enforcing Pod Security `restricted`), and used: the settings
ConfigMap, the dashboard guard answering over HTTP, our NetworkPolicies refusing what they do not allow, the
health CronJob run as a Job, `helm upgrade` rolling out changed values, and bad upgrades refused or rolled back.

The client pods run the hub image (python), the same the guard and the health check run.
The tests run in this order: later ones build on the release revisions of earlier ones."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import helm_python
import pytest
import yaml

from hub_config.settings import validate_settings

from .cluster import REPO, TOOLS, Cluster, facility_chart, load_image

CHART = REPO / "charts" / "analysis-facility"
NAMESPACE = facility_chart.NAMESPACE
GUARD = "analysis-facility-dashboard-guard"
PREFIX = "/services/dask-gateway"
# the CronJob must not fire by itself during the tests: the test triggers it
VALUES = {"healthCheck": {"schedule": "0 0 1 1 *"}}
RESTRICTED = """
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: main
      image: %(image)s
      imagePullPolicy: Never
      command: %(command)s
      ports: %(ports)s
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""
# what a client pod runs to ask host:port for path: prints "<status> <Location>" or "unreachable <error>"
PROBE = """
import http.client, sys
host, port, path, auth = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
connection = http.client.HTTPConnection(host, port, timeout=4)
try:
    connection.request("GET", path, headers={"Authorization": auth} if auth else {})
    response = connection.getresponse()
    print(response.status, response.getheader("Location") or "")
except OSError as err:
    print("unreachable", type(err).__name__)
"""
SERVE = "python -m http.server {} --directory /tmp"
SLEEP = "exec sleep 3600"
# Pods with the labels our policies select on (z2jh's proxy and user servers, dask-gateway's traefik and
# schedulers, our health check) and one without labels: (labels, shell command, named container ports).
# The policies decide by labels and ports only, so these stand for the subcharts' pods.
CLIENTS = {
    "proxy": ({"component": "proxy"}, SERVE.format(8000), {}),
    "outsider": ({}, SERVE.format(8000), {}),
    "health-like": (
        {"app.kubernetes.io/name": "analysis-facility", "app.kubernetes.io/component": "healthcheck"},
        SLEEP,
        {},
    ),
    "user-like": ({"component": "singleuser-server"}, SLEEP, {}),
    # traefik: web (dashboards, API) on 8000, schedulers' TLS on 8786 (the chart's port names)
    "traefik-like": (
        {"app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/component": "traefik"},
        f"{SERVE.format(8000)} & exec {SERVE.format(8786)}",
        {"web": 8000, "tcp": 8786},
    ),
    "scheduler-like": (
        {"app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/component": "dask-scheduler"},
        f"exec {SERVE.format(8786)}",
        {},
    ),
}


def hub_image() -> str:
    """The image the chart's guard and health check run (the hub image of `make images`)."""
    image = helm_python.Chart.load(CHART).values["dashboardGuard"]["image"]
    return f"{image['name']}:{image['tag']}"


def client_pod(name: str, labels: dict[str, str], command: str, image: str, ports: dict[str, int]) -> str:
    """A pod of `image` running ``sh -c command`` that Pod Security "restricted" admits."""
    ports_list = [{"name": port_name, "containerPort": number} for port_name, number in ports.items()]
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {json.dumps(labels)}}}\n"
        "spec:\n  terminationGracePeriodSeconds: 1\n"
        + RESTRICTED
        % {"image": image, "command": json.dumps(["sh", "-c", command]), "ports": json.dumps(ports_list)}
    )


def record_install(seconds: float) -> None:
    """Adds the chart's install time to build/bench/cluster.json (written by conftest at the cluster's start)."""
    bench = REPO / "build" / "bench" / "cluster.json"
    entry = json.loads(bench.read_text()) if bench.exists() else {}
    entry["chart_install_seconds"] = round(seconds, 1)
    entry["chart_install_means"] = (
        "helm install (Helm SDK) of our own part of the chart, waiting until the dashboard guard is Ready"
    )
    bench.write_text(json.dumps(entry, indent=2) + "\n")


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> facility_chart.Facility:
    """The release installed (revision 1) and the client pods Ready in its namespace."""
    image = hub_image()
    load_image(image)
    facility = facility_chart.Facility()
    facility.prepare()
    started = time.monotonic()
    facility.deploy(VALUES)
    record_install(time.monotonic() - started)
    for name, (labels, command, ports) in CLIENTS.items():
        facility.kubectl("apply", "-f", "-", stdin=client_pod(name, labels, command, image, ports))
    facility.kubectl("wait", "--for", "condition=Ready", *(f"pod/{n}" for n in CLIENTS), "--timeout", "120s")
    return facility


def probe(
    facility: facility_chart.Facility, client: str, host: str, port: int, path: str = "/", auth: str = ""
):
    """(status or "unreachable", Location) of a GET from pod `client`."""
    out = facility.kubectl(
        "exec", client, "--", "python", "-c", PROBE, host, str(port), path, auth, timeout=60
    )
    status, _, location = out.strip().partition(" ")
    return status, location


def until(predicate, seconds: float = 60) -> bool:
    """Whether predicate() becomes true within `seconds` (the enforcer programs new pods within moments)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
    return True


def guard_answers(facility: facility_chart.Facility) -> bool:
    """Whether the guard sends the proxy's anonymous dashboard request to the hub's login (302) within 30 s:
    a new guard pod is Ready before its Service endpoint and the enforcer's rules for it are in place."""
    return until(
        lambda: probe(facility, "proxy", GUARD, 8788, f"{PREFIX}/clusters/abc/status")[0] == "302", 30
    )


def refused(facility: facility_chart.Facility, client: str, host: str, port: int, path: str = "/") -> bool:
    """Whether the flow from pod `client` to host:port is (or, within a minute, becomes) unreachable."""
    return until(lambda: probe(facility, client, host, port, path)[0] == "unreachable")


def jsonpath(facility: facility_chart.Facility, name: str, expression: str) -> str:
    return facility.kubectl("get", name, "-o", f"jsonpath={expression}")


def guard_pods(facility: facility_chart.Facility) -> list[dict]:
    pods = json.loads(
        facility.kubectl("get", "pods", "-l", "app.kubernetes.io/component=dashboard-guard", "-o", "json")
    )["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def test_install_brings_the_dashboard_guard_to_ready(release: facility_chart.Facility):
    [revision] = release.helm.history(facility_chart.RELEASE)
    assert (revision["revision"], revision["status"]) == (1, "deployed")
    deployment = json.loads(release.kubectl("get", "deployment", GUARD, "-o", "json"))
    assert deployment["status"].get("readyReplicas") == 1
    [pod] = guard_pods(release)
    assert ready(pod)
    assert pod["spec"]["containers"][0]["image"] == hub_image()
    names = release.kubectl("get", "configmap,service,cronjob,networkpolicy", "-o", "name").split()
    for expected in (
        "configmap/analysis-facility-settings",
        f"service/{GUARD}",
        "cronjob.batch/analysis-facility-healthcheck",
        f"networkpolicy.networking.k8s.io/{GUARD}",
        "networkpolicy.networking.k8s.io/analysis-facility-healthcheck",
    ):
        assert expected in names


def test_settings_configmap_holds_the_rendered_settings(release: facility_chart.Facility):
    data = json.loads(release.kubectl("get", "configmap", "analysis-facility-settings", "-o", "json"))["data"]
    settings = yaml.safe_load(data["settings.yaml"])
    assert settings == {**helm_python.Chart.load(CHART).values["settings"], "platform": "kubernetes"}
    assert validate_settings(settings, "ConfigMap analysis-facility-settings").platform == "kubernetes"
    assert (
        data["analysis_facility.py"].strip()
        == (CHART / "files" / "analysis_facility_config.py").read_text().strip()
    )


def test_guard_answers_as_it_defines(release: facility_chart.Facility):
    dashboard = f"{PREFIX}/clusters/abc/status"
    assert guard_answers(release)
    status, location = probe(release, "proxy", GUARD, 8788, dashboard)
    # a browser without a hub identity is sent through the hub's OAuth flow for the guard's client
    assert status == "302", (status, location)
    assert location.startswith("/hub/api/oauth2/authorize?client_id=service-dask-gateway&")
    # a token the hub cannot confirm (here: no hub at all) is unauthenticated, never a 500
    assert probe(release, "proxy", GUARD, 8788, dashboard, auth="token garbage")[0] == "401"
    assert probe(release, "proxy", GUARD, 8788, f"{PREFIX}/a/../clusters/abc/status")[0] == "400"
    # the gateway API passes through to traefik, which is absent: bad gateway
    assert probe(release, "proxy", GUARD, 8788, f"{PREFIX}/api/v1/clusters/")[0] == "502"


def test_guard_admits_only_the_hubs_proxy(release: facility_chart.Facility):
    path = f"{PREFIX}/clusters/abc/status"
    assert refused(release, "outsider", GUARD, 8788, path), (
        "the guard's NetworkPolicy lets a pod without the proxy's label in"
    )
    assert probe(release, "proxy", GUARD, 8788, path)[0] == "302"


def test_health_check_pods_reach_only_the_proxy(release: facility_chart.Facility):
    address = {name: jsonpath(release, f"pod/{name}", "{.status.podIP}") for name in ("proxy", "outsider")}
    assert refused(release, "health-like", address["outsider"], 8000), (
        "the health check's NetworkPolicy lets it reach a pod that is not the proxy"
    )
    assert probe(release, "health-like", address["proxy"], 8000)[0] == "200"
    # without a policy on the outsider, the refusal above is the health check's own egress rule
    assert probe(release, "outsider", address["proxy"], 8000)[0] == "200"


def test_user_servers_reach_schedulers_only_through_traefiks_tcp_port(release: facility_chart.Facility):
    address = {name: jsonpath(release, f"pod/{name}", "{.status.podIP}") for name in CLIENTS}
    for client, server, port in (("user-like", "scheduler-like", 8786), ("user-like", "traefik-like", 8000)):
        assert refused(release, client, address[server], port), (
            f"our NetworkPolicies let {client} reach {server}:{port}"
        )
    # traefik's port named `tcp` is open to user servers, and traefik reaches the schedulers
    assert probe(release, "user-like", address["traefik-like"], 8786)[0] == "200"
    assert probe(release, "traefik-like", address["scheduler-like"], 8786)[0] == "200"


def test_gateway_pods_reach_no_private_address(release: facility_chart.Facility):
    """networkPolicy.dataEgress leaves out the private ranges (pods, nodes, cloud metadata) for schedulers and
    workers; traefik only reaches the gateway's pods and the API server."""
    outsider = jsonpath(release, "pod/outsider", "{.status.podIP}")
    for client in ("scheduler-like", "traefik-like"):
        assert refused(release, client, outsider, 8000), (
            f"{client} reaches the pod without labels at {outsider}"
        )
    # the outsider itself serves: the refusals above are the dask pods' egress rules
    assert probe(release, "proxy", outsider, 8000)[0] == "200"


def test_health_job_reports_the_missing_hub(release: facility_chart.Facility):
    release.kubectl("create", "job", "health-now", "--from", "cronjob/analysis-facility-healthcheck")
    release.kubectl("wait", "--for", "condition=Failed", "job/health-now", "--timeout", "180s", timeout=200)
    [pod] = json.loads(release.kubectl("get", "pods", "-l", "job-name=health-now", "-o", "json"))["items"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    log = release.kubectl("logs", "job/health-now")
    assert log.startswith("af health: FAIL: cannot reach the hub at http://proxy-public/hub/api/: "), log


def test_pod_security_restricted_is_enforced(release: facility_chart.Facility):
    labels = json.loads(release.kubectl("get", "namespace", NAMESPACE, "-o", "json"))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # our pods were admitted (the guard and the health Job's pod ran); a privileged one is refused
    privileged = client_pod("privileged", {}, SLEEP, hub_image(), {}).replace(
        "allowPrivilegeEscalation: false", "privileged: true"
    )
    with pytest.raises(RuntimeError, match='violates PodSecurity "restricted:latest": privileged'):
        release.kubectl("apply", "--dry-run=server", "-f", "-", stdin=privileged)


def test_upgrade_with_changed_values_rolls_out(release: facility_chart.Facility):
    [before] = guard_pods(release)
    upgraded = release.deploy(
        {
            **VALUES,
            "settings": {"culling": {"server_idle_timeout": 7200}},
            "dashboardGuard": {"resources": {"limits": {"memory": "192Mi"}}},
        }
    )
    assert (upgraded["revision"], upgraded["status"]) == (2, "deployed")
    data = json.loads(release.kubectl("get", "configmap", "analysis-facility-settings", "-o", "json"))["data"]
    assert yaml.safe_load(data["settings.yaml"])["culling"]["server_idle_timeout"] == 7200
    [after] = guard_pods(release)
    assert after["metadata"]["uid"] != before["metadata"]["uid"] and ready(after)
    assert after["spec"]["containers"][0]["resources"]["limits"]["memory"] == "192Mi"
    assert guard_answers(release), "the guard does not answer the proxy"


def test_upgrade_the_values_schema_refuses_changes_nothing(release: facility_chart.Facility):
    with pytest.raises(helm_python.HelmError, match="networkPolicy"):
        release.deploy({**VALUES, "networkPolicy": {"enabled": "yes"}})
    history = release.helm.history(facility_chart.RELEASE)
    assert [(r["revision"], r["status"]) for r in history][-1] == (2, "deployed")
    assert len(history) == 2


def test_failed_upgrade_is_rolled_back_and_the_guard_keeps_serving(release: facility_chart.Facility):
    [before] = guard_pods(release)
    # an image no registry serves: the new pod never becomes Ready and helm's wait times out
    absent = {"image": {"name": "localhost/physlite-cluster/absent", "tag": "1"}}
    with pytest.raises(helm_python.HelmError):
        release.deploy({**VALUES, "dashboardGuard": absent}, timeout=15, rollback_on_failure=True)
    history = release.helm.history(facility_chart.RELEASE)
    assert [(r["revision"], r["status"]) for r in history][-2:] == [(3, "failed"), (4, "deployed")]
    image = jsonpath(release, f"deployment/{GUARD}", "{.spec.template.spec.containers[0].image}")
    assert image == hub_image()
    release.kubectl("rollout", "status", f"deployment/{GUARD}", "--timeout", "60s")
    [after] = guard_pods(release)
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "the running guard was replaced"
    assert guard_answers(release), "the guard does not answer the proxy"


def test_chart_py_reads_a_values_file(release: facility_chart.Facility, tmp_path: Path):
    """`make cluster-chart`'s command upgrades with a values file and names a bad one."""
    bad = tmp_path / "values.yaml"
    bad.write_text("- a list\n")
    result = subprocess.run(
        [sys.executable, str(TOOLS / "chart.py"), "install", "-f", str(bad)], capture_output=True, text=True
    )
    assert result.returncode != 0 and f"{bad}: values must be a mapping" in result.stderr
