"""The hub's and the gateway server's start-up configuration, run for real with what the chart gives their pods.

The ``jupyterhub_config.d`` snippet the chart mounts is executed with an environment holding exactly the
variables the hub container gets from the values (``jupyterhub.hub.extraEnv`` and those Zero to JupyterHub
always sets), with placeholder values, and with the ``settings.yaml`` of the rendered ConfigMap. Only the
issuer's discovery document is answered locally (no network here). A variable that hub_config needs but the
chart does not provide fails here instead of in a crash-looping hub.

The dask-gateway server's ``gateway.extraConfig`` snippets are executed the same way, after a prelude that gives
them what the dask-gateway chart's own config file defines before them: ``c`` with the Kubernetes backend and
JupyterHub authentication selected, and ``get_property`` over the chart's ``gateway`` values. Their environment
is ``gateway.env`` resolved against the rendered ConfigMap.

All jobs run in one separate Python process (one import of JupyterHub and dask-gateway-server for all values
files), each with its own environment and its own traitlets ``Config``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from af.tools.check.findings import Finding
from af.tools.check.manifests import validate_manifest
from af.tools.check.pod_security import baseline_violations
from af.tools.check.wiring import SETTINGS_DIR, _env_entries, _get

METADATA_KEY = "jupyterhub.singleuser.cloudMetadata.blockWithIptables"
HEALTH_USER_POD = "(health check user)"  # also in _RUNNER
MAX_START_WAIT = 5  # seconds the hub's start may wait for an external service's URL
# set by z2jh's hub Deployment itself, whatever the values say
Z2JH_HUB_ENV = ("PYTHONUNBUFFERED", "HELM_RELEASE_NAME", "POD_NAMESPACE", "CONFIGPROXY_AUTH_TOKEN")
PLACEHOLDER = "0" * 64
# KubeSpawner loads a kube config when constructed; nothing is ever sent to this address
OFFLINE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: offline}}]
contexts: [{name: offline, context: {cluster: offline, user: offline, namespace: analysis-facility}}]
current-context: offline
"""

_RUNNER = r"""
import json, os, sys, traceback
from traitlets.config import Config

def run_hub(job):
    import hub_config.auth
    issuer = job["issuer"].rstrip("/")
    hub_config.auth.discover_endpoints = lambda *a, **k: {
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
        "userinfo_endpoint": issuer + "/userinfo",
    }
    c = Config()
    # z2jh's jupyterhub_config.py sets the singleuser values first, then runs jupyterhub_config.d (ours adds to them)
    apply_z2jh_singleuser(c, job["singleuser"])
    exec(compile(job["snippet"], "jupyterhub_config.d/analysis_facility.py", "exec"), {"c": c, "__name__": "__config__"})
    services = c.JupyterHub.services if "services" in c.JupyterHub else []
    return {
        "spawner_class": str(c.JupyterHub.spawner_class),
        "services": {s["name"]: s.get("url") for s in services},
        # JupyterHub's Service.timeout: how long the hub's start waits for the service's URL
        "start_waits": {s["name"]: s.get("timeout", 30) for s in services if s.get("url")},
        "pods": user_pods(c, job),
    }

def user_pods(c, job):
    # the pod KubeSpawner makes for a user of each profile; z2jh would add more settings (storage, ...)
    import asyncio
    from types import SimpleNamespace as NS
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner
    c.KubeSpawner.image = job["singleuser_image"]
    c.KubeSpawner.namespace = "analysis-facility"

    async def one(profile):
        server = NS(base_url="/user/u/", url="/user/u/", host="", ip="", port=8888, bind_url="http://:8888/user/u/")
        groups = [NS(name=g) for g in profile.get("groups") or []]
        user = NS(name="u", escaped_name="u", json_escaped_name="u", id=1, url="/user/u/", server=server,
                  groups=groups, roles=[], settings={}, spawners={}, orm_user=None)
        hub = NS(public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api", host="")
        spawner = KubeSpawner(config=c, user=user, hub=hub, orm_spawner=None, server=server,
                              api_token="0" * 32, oauth_client_id="jupyterhub-user-u")
        if profile.get("name") is not None:
            spawner.user_options = {"profile": profile["name"]}
        await spawner.load_user_options()
        return ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())

    async def all_pods():
        pods = {p["name"]: await one(p) for p in job["profiles"]}
        # the health check's user: made through the API, in no group, asking for no profile
        pods[HEALTH_USER_POD] = await one({"name": None, "groups": []})
        return pods

    return asyncio.run(all_pods())

def apply_z2jh_singleuser(c, singleuser):
    # the parts of z2jh's jupyterhub_config.py that put containers, volumes and pod fields into user pods
    # (what Pod Security judges); the cloud metadata block is on unless the values turn it off
    metadata = singleuser.get("cloudMetadata") or {}
    init = list(singleuser.get("initContainers") or [])
    if metadata.get("blockWithIptables", True) is True:
        tools = (singleuser.get("networkTools") or {}).get("image") or {}
        init.append({
            "name": "block-cloud-metadata",
            "image": f"{tools.get('name', 'quay.io/jupyterhub/k8s-network-tools')}:{tools.get('tag', '4.4.0')}",
            "command": ["iptables", "--append", "OUTPUT", "--protocol", "tcp", "--destination",
                        metadata.get("ip", "169.254.169.254"), "--destination-port", "80", "--jump", "DROP"],
            "securityContext": {"privileged": True, "runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}},
        })
    c.KubeSpawner.init_containers = init
    c.KubeSpawner.extra_containers = list(singleuser.get("extraContainers") or [])
    c.KubeSpawner.extra_pod_config = dict(singleuser.get("extraPodConfig") or {})
    storage = singleuser.get("storage") or {}
    c.KubeSpawner.volumes = list(storage.get("extraVolumes") or [])
    c.KubeSpawner.volume_mounts = list(storage.get("extraVolumeMounts") or [])

HEALTH_USER_POD = "(health check user)"

def run_gateway(job):
    os.environ[job["values_env"]] = json.dumps(job["gateway"])
    c = Config()
    scope = {"c": c, "__name__": "__config__"}
    exec(compile(job["chart_prelude"], "dask-gateway chart's configuration", "exec"), scope)
    for name, snippet in sorted(job["extra_config"].items()):
        exec(compile(snippet, "gateway.extraConfig." + name, "exec"), scope)
    from dask_gateway_server.backends.kubernetes import KubeBackend
    backend = c.DaskGateway.backend_class
    return {
        "kube_backend": isinstance(backend, type) and issubclass(backend, KubeBackend),
        "prefix": str(c.Proxy.prefix),
        "hub_api_url": str(c.JupyterHubAuthenticator.jupyterhub_api_url),
    }

base = dict(os.environ)
results = []
for job in json.load(sys.stdin):
    os.environ.clear()
    os.environ.update({**base, **job["env"]})
    try:
        results.append({"ok": (run_hub if job["kind"] == "hub" else run_gateway)(job)})
    except BaseException as exc:
        results.append({"error": traceback.format_exception_only(type(exc), exc)[-1].strip()})
print(json.dumps(results))
"""


@dataclass
class Job:
    """One start-up to try: the hub or the gateway server, for one values file."""

    kind: str
    blame: str
    values: Mapping[str, Any]
    payload: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def hub_job(
    values: Mapping[str, Any], documents: list[dict[str, Any]], blame: str, tmp: Path
) -> Job | Finding:
    """The hub's start-up: the rendered snippet, the rendered settings (written under ``tmp``), the hub's env."""
    cm = next(
        (
            d
            for d in documents
            if d.get("kind") == "ConfigMap" and "analysis_facility.py" in (d.get("data") or {})
        ),
        None,
    )
    if cm is None:
        return Finding(blame, "settings", "no ConfigMap with the jupyterhub_config.d snippet was rendered")
    settings_path = tmp / f"settings-{abs(hash(blame))}.yaml"
    settings_path.write_text(cm["data"]["settings.yaml"])
    snippet = cm["data"]["analysis_facility.py"].replace(f"{SETTINGS_DIR}/settings.yaml", str(settings_path))
    names = [*Z2JH_HUB_ENV, *map(str, _env_entries(_get(values, "jupyterhub", "hub", "extraEnv")))]
    issuer = str(_get(values, "settings", "auth", "issuer") or "https://issuer.invalid")
    image = _get(values, "jupyterhub", "singleuser", "image") or {}
    payload = {
        "snippet": snippet,
        "issuer": issuer,
        "singleuser_image": f"{image.get('name')}:{image.get('tag')}",
        "profiles": list(_get(values, "settings", "profiles") or []),
        "singleuser": dict(_get(values, "jupyterhub", "singleuser") or {}),
    }
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(OFFLINE_KUBECONFIG)
    env = {n: PLACEHOLDER for n in names}
    env["KUBECONFIG"] = str(kubeconfig)
    return Job("hub", blame, values, payload, env)


GATEWAY_VALUES_ENV = "AF_CHECK_GATEWAY_VALUES"
# What the dask-gateway chart's own configuration file sets before the values' extraConfig: the Kubernetes backend,
# hub authentication and `get_property` over the chart's `gateway` values (here read, as JSON, from the variable
# GATEWAY_VALUES_ENV).
GATEWAY_CHART_PRELUDE = f"""
import json, os
properties = {{"gateway": json.loads(os.environ["{GATEWAY_VALUES_ENV}"])}}
def get_property(key, default=None):
    value = properties
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value
c.DaskGateway.backend_class = "dask_gateway_server.backends.kubernetes.KubeBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
"""


def gateway_job(values: Mapping[str, Any], documents: list[dict[str, Any]], blame: str) -> Job:
    """The gateway server's start-up: its extraConfig, its chart values and ``gateway.env``."""
    gateway = values.get("dask-gateway") or {}
    extra = _get(gateway, "gateway", "extraConfig") or {}
    extra = {"": extra} if isinstance(extra, str) else dict(extra)
    chart_values = {k: v for k, v in (gateway.get("gateway") or {}).items() if k != "extraConfig"}
    config_maps = {
        d["metadata"]["name"]: d.get("data") or {} for d in documents if d.get("kind") == "ConfigMap"
    }
    env = {"JUPYTERHUB_API_TOKEN": PLACEHOLDER}
    for entry in _get(gateway, "gateway", "env") or []:
        ref = _get(entry, "valueFrom", "configMapKeyRef")
        if isinstance(ref, Mapping):
            value = config_maps.get(ref.get("name"), {}).get(ref.get("key"))
            if value is not None:
                env[entry["name"]] = value
        else:
            env[entry["name"]] = str(entry.get("value", PLACEHOLDER))
    payload = {
        "gateway": chart_values,
        "extra_config": extra,
        "chart_prelude": GATEWAY_CHART_PRELUDE,
        "values_env": GATEWAY_VALUES_ENV,
    }
    return Job("gateway", blame, values, payload, env)


def _judge(job: Job, result: dict[str, Any]) -> list[Finding]:
    if "error" in result:
        where = "jupyterhub.hub.extraEnv" if job.kind == "hub" else "dask-gateway.gateway.extraConfig"
        what = "the hub's configuration fails with the environment the chart gives it"
        if job.kind == "gateway":
            what = "the gateway server's configuration fails"
        return [Finding(job.blame, where, f"{what}: {result['error']}")]
    ok, values, findings = result["ok"], job.values, []
    if job.kind == "hub":
        if ok["spawner_class"] != "kubespawner.KubeSpawner":
            findings.append(Finding(job.blame, "settings.platform", f"spawner is {ok['spawner_class']}"))
        findings += _judge_pods(job, ok.get("pods") or {})
        findings += [
            Finding(
                job.blame,
                f"settings (hub service {name})",
                f"the hub's start waits up to {wait} s for {ok['services'][name]} (an external service, which "
                f"may start after the hub); at most {MAX_START_WAIT} s",
            )
            for name, wait in (ok.get("start_waits") or {}).items()
            if wait > MAX_START_WAIT
        ]
        url = _get(values, "settings", "gateway", "service_url")
        if ok["services"].get("dask-gateway") != url:
            findings.append(
                Finding(
                    job.blame,
                    "settings.gateway.service_url",
                    f"hub service dask-gateway points at {ok['services'].get('dask-gateway')!r}, not {url!r}",
                )
            )
        return findings
    gateway = values.get("dask-gateway") or {}
    if not ok["kube_backend"]:
        findings.append(Finding(job.blame, "dask-gateway.gateway.extraConfig", "backend is not KubeBackend"))
    prefix = _get(gateway, "gateway", "prefix")
    if ok["prefix"] != prefix:
        findings.append(
            Finding(job.blame, "dask-gateway.gateway.prefix", f"{prefix!r}, server uses {ok['prefix']!r}")
        )
    api_url = _get(gateway, "gateway", "auth", "jupyterhub", "apiUrl")
    if ok["hub_api_url"] != api_url:
        findings.append(
            Finding(
                job.blame,
                "dask-gateway.gateway.auth.jupyterhub.apiUrl",
                f"{api_url!r}, the server authenticates against {ok['hub_api_url']!r}",
            )
        )
    return findings


def _judge_pod_security(job: Job, pods: Mapping[str, dict[str, Any]]) -> list[Finding]:
    """User pods pass the Pod Security level the namespace enforces (``podSecurity.enforce``, baseline unless
    the admin opts out with ``privileged``)."""
    if _get(job.values, "podSecurity", "enforce") == "privileged":
        return []
    messages = dict.fromkeys(m for pod in pods.values() for m in baseline_violations(pod))
    return [
        Finding(
            job.blame,
            METADATA_KEY if "[block-cloud-metadata]" in m else "jupyterhub.singleuser",
            f"user pods break Pod Security 'baseline' (podSecurity.enforce): {m}",
        )
        for m in messages
    ]


def _judge_health_user_pod(job: Job, pods: Mapping[str, dict[str, Any]]) -> list[Finding]:
    """The health check's user (in no group, asking for no profile) runs with the first profile's limits."""
    profiles = _get(job.values, "settings", "profiles") or []
    pod = pods.get(HEALTH_USER_POD)
    if not profiles or pod is None:
        return []
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")
    limits = (container.get("resources") or {}).get("limits") or {}
    if float(limits.get("cpu", "nan")) == float(profiles[0]["cores"]):
        return []
    return [
        Finding(
            job.blame,
            "settings.profiles[0]",
            f"the health check's user (in no group) gets no facility profile: its pod's limits are {limits}, "
            f"not those of profile {profiles[0]['name']!r}",
        )
    ]


def _judge_pods(job: Job, pods: Mapping[str, dict[str, Any]]) -> list[Finding]:
    """Each profile's user pod: a valid Pod, the profile's image, its resources, the gateway's addresses,
    Pod Security."""
    findings = _judge_pod_security(job, pods) + _judge_health_user_pod(job, pods)
    address = _get(job.values, "settings", "gateway", "address")
    for i, profile in enumerate(_get(job.values, "settings", "profiles") or []):
        key = f"settings.profiles[{i}]"
        pod = pods.get(profile["name"])
        if pod is None:
            findings.append(Finding(job.blame, key, "KubeSpawner made no pod for this profile"))
            continue
        origin = f"{job.blame} (KubeSpawner pod of profile {profile['name']!r})"
        findings += validate_manifest(pod, origin)
        container = next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")
        expected = profile.get("image") or job.payload["singleuser_image"]
        if container.get("image") != expected:
            findings.append(
                Finding(job.blame, f"{key}.image", f"pod runs {container.get('image')}, not {expected}")
            )
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        if env.get("DASK_GATEWAY__ADDRESS") != address:
            findings.append(
                Finding(
                    job.blame,
                    "settings.gateway.address",
                    f"user pods get {env.get('DASK_GATEWAY__ADDRESS')!r}",
                )
            )
        servicex = _get(job.values, "settings", "servicex") or {}
        if servicex.get("facility") is True and env.get("AF_SERVICEX_ENDPOINT") != servicex.get("address"):
            findings.append(
                Finding(
                    job.blame,
                    "settings.servicex.address",
                    f"user pods get AF_SERVICEX_ENDPOINT {env.get('AF_SERVICEX_ENDPOINT')!r}, not the service "
                    f"through the proxy in the cluster ({servicex.get('address')!r})",
                )
            )
        findings += _judge_grid_ca(job, pod, container, env)
        limits = (container.get("resources") or {}).get("limits") or {}
        if "cores" in profile and float(limits.get("cpu", "nan")) != float(profile["cores"]):
            findings.append(Finding(job.blame, f"{key}.cores", f"pod cpu limit is {limits.get('cpu')!r}"))
    return findings


def _judge_grid_ca(job: Job, pod: dict[str, Any], container: dict[str, Any], env: dict) -> list[Finding]:
    """With ``settings.grid_ca.configmap``, the user pod mounts that ConfigMap read-only where X509_CERT_DIR
    points."""
    configmap = _get(job.values, "settings", "grid_ca", "configmap")
    if not configmap:
        return []
    volumes = {
        v["name"]
        for v in pod["spec"].get("volumes") or []
        if (v.get("configMap") or {}).get("name") == configmap
    }
    mounts = {
        m["mountPath"]
        for m in container.get("volumeMounts") or []
        if m["name"] in volumes and m.get("readOnly")
    }
    if env.get("X509_CERT_DIR") in mounts:
        return []
    return [
        Finding(
            job.blame,
            "settings.grid_ca.configmap",
            f"user pods do not mount ConfigMap {configmap!r} read-only at X509_CERT_DIR "
            f"({env.get('X509_CERT_DIR')!r}; volumes {sorted(volumes)}, mounts {sorted(mounts)})",
        )
    ]


def run_jobs(jobs: list[Job], workdir: Path) -> list[Finding]:
    """Run every job in one Python process; findings for the jobs that failed or configured the wrong thing.

    Example:
        >>> run_jobs([], Path("."))
        []
    """
    if not jobs:
        return []
    payload = [{"kind": j.kind, "env": j.env, **j.payload} for j in jobs]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(payload),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return [Finding(jobs[0].blame, "", f"start-up checks could not run: {last}")]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return [f for job, result in zip(jobs, results, strict=True) for f in _judge(job, result)]


def check_startup(rendered: list[tuple[Mapping[str, Any], list[dict[str, Any]], str]]) -> list[Finding]:
    """Hub and gateway start-up for each (merged values, rendered documents, values file) triple."""
    with tempfile.TemporaryDirectory(prefix="af-startup-") as tmp:
        jobs: list[Job] = []
        findings: list[Finding] = []
        for values, documents, blame in rendered:
            hub = hub_job(values, documents, blame, Path(tmp))
            if isinstance(hub, Finding):
                findings.append(hub)
            else:
                jobs.append(hub)
            jobs.append(gateway_job(values, documents, blame))
        return findings + run_jobs(jobs, Path(tmp))
