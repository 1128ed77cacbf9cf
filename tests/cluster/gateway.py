"""dask-gateway with its Kubernetes backend on the cluster of tools/cluster, configured as our chart configures it.

The API server and the controller run dask-gateway-server 2026.3.0 from our hub image, traefik (built from its Go
module by tools/cluster/build.sh, at the version dask-gateway 2026.3.0's chart runs) routes the API and the
clusters' dashboards on its web port and the schedulers on its TCP port; schedulers and workers are pods of the
notebook image, made by the controller from DaskCluster objects.

The stand-in for the dask-gateway subchart (its chart cannot be downloaded here): the objects below are the minimum
equivalent of what it renders with our values, in a namespace of the caller's (ServiceAccounts, ClusterRoles, the
API server's and controller's config files, Deployments and Services, traefik's Deployment and Service, the API's
IngressRoute and the two prefix Middlewares). The API server's config file sets what the chart's
dask_gateway_config.py sets from the `dask-gateway` values (addresses, instance, backend image, environment,
namespace, scheduler/worker config) and then runs OUR chart's `gateway.extraConfig` text verbatim, with the
facility settings rendered by our chart (AF_SETTINGS_YAML) — that is configure_gateway_server with KubeBackend.

One difference, on purpose: after our extraConfig, the users authenticate with dask-gateway's SimpleAuthenticator
(a shared password, the user name as given) instead of the hub. The hub authentication (FacilityHubAuthenticator)
is tested against a real hub in tests/e2e and tests/gateway; here it would need a hub registering the
dask-gateway service with a token the gateway pod knows, which tests/cluster/hub.py does not offer yet. Everything
the KubeBackend path adds (per-user totals, options, pods) is independent of the authenticator.

The CRDs: traefik's from the traefik module zip (build.sh copies them into the build); the DaskCluster CRD is
dask-gateway 2026.3.0's own (its chart's crds/daskclusters.yaml) when AF_SUBCHARTS names the subcharts, else our
stand-in (tests/cluster/daskcluster-crd.yaml says why; test_kube_gateway checks it against the release's where
that is present). CRDs are cluster-wide and stay installed (deleting one deletes every
object of its kind, other namespaces' too).

The host reaches traefik through nsforward (its web port for the API, its TCP port for the schedulers).

Example:
    >>> with KubeGateway.start(cluster, "gateway-test", settings={}) as gw:  # doctest: +SKIP
    ...     with gw.gateway("alice").new_cluster() as dask_cluster:
    ...         dask_cluster.scale(2)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from dask_gateway import BasicAuth, Gateway

from .cluster import TOOLS, Cluster, deploy_local, load_image
from .hub import chart_configmap, chart_values, forward

# the subchart's fullnameOverride in our values: the objects' names; the instance label (which DaskClusters and
# routes a gateway, its controller and its traefik take) is per namespace, so that gateways in other namespaces
# (make deploy-local, other tests) are never touched
NAME = "dask-gateway"
DASKCLUSTER_CRD = Path(__file__).with_name("daskcluster-crd.yaml")
# the gateway config the chart's dask_gateway_config.py amounts to with our values (addresses and backend), then
# our chart's extraConfig (configure_gateway_server), then the stand-in authentication (see the module docstring)
GATEWAY_CONFIG = """
import json, os
_PROPERTIES = json.loads({properties!r})

def get_property(key, default=None):
    value = _PROPERTIES
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value

c.DaskGateway.address = ":8000"
c.KubeBackend.api_url = "http://api-{name}.{namespace}:8000/api"
c.DaskGateway.backend_class = "dask_gateway_server.backends.kubernetes.KubeBackend"
c.KubeBackend.gateway_instance = "{instance}"
c.KubeClusterConfig.image = "{image}"
c.KubeClusterConfig.image_pull_policy = "IfNotPresent"
c.KubeClusterConfig.namespace = "{namespace}"
c.KubeClusterConfig.environment = {environment!r}
c.KubeClusterConfig.scheduler_cores = {scheduler_cores!r}
c.KubeClusterConfig.scheduler_memory = "512M"
c.KubeClusterConfig.worker_extra_pod_config = {worker_pod!r}
c.KubeClusterConfig.worker_extra_container_config = {worker_container!r}
{extra_config}
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = os.environ["GATEWAY_TEST_PASSWORD"]
"""
CONTROLLER_CONFIG = """
c.KubeController.address = ":8000"
c.KubeController.api_url = "http://api-{name}.{namespace}:8000/api"
c.KubeController.gateway_instance = "{instance}"
c.KubeController.proxy_prefix = "{prefix}"
c.KubeController.proxy_web_middlewares = [{{"name": "clusters-prefix-{name}"}}]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def daskcluster_crd() -> tuple[str, str]:
    """The DaskCluster CRD to apply and where it comes from: the dask-gateway release's own when AF_SUBCHARTS
    names the subcharts, else our stand-in.

    Example:
        >>> crd, origin = daskcluster_crd()  # doctest: +SKIP
    """
    subcharts = deploy_local.subcharts_folder(None)
    if subcharts is not None:
        member = "crds/daskclusters.yaml"
        text = deploy_local.subchart_file(subcharts, "dask-gateway", member)
        if text is None:
            raise AssertionError(f"{subcharts}: the dask-gateway chart has no {member} (AF_SUBCHARTS)")
        return (
            text,
            f"dask-gateway {deploy_local.SUBCHART_VERSIONS['dask-gateway']}'s {member} from {subcharts}",
        )
    return DASKCLUSTER_CRD.read_text(), f"our stand-in {DASKCLUSTER_CRD.name} (AF_SUBCHARTS not set)"


def traefik_on_node(cluster: Cluster) -> tuple[str, Path]:
    """traefik's image (from the cluster build) on the node, imported when missing; its name and the CRDs file."""
    folder = cluster.bin.parent  # the build the cluster fixture started from
    name = subprocess.run(
        ["bash", "-c", f". {TOOLS / 'lib.sh'} && echo $TRAEFIK_IMAGE"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ctr = f". {TOOLS / 'lib.sh'} && in_node ctr --address $CLUSTER_RUN/containerd/containerd.sock -n k8s.io images"
    listed = subprocess.run(["bash", "-c", f"{ctr} ls -q"], capture_output=True, text=True, check=True).stdout
    if name not in listed.split():
        subprocess.run(
            ["bash", "-c", f"{ctr} import {folder / 'images' / 'traefik.tar'}"], check=True, timeout=300
        )
    return name, folder / "crds" / "traefik.yaml"


def rbac(namespace: str) -> str:
    """ServiceAccounts and cluster roles of the API server, controller and traefik (the chart's, named per
    namespace so that tests in other namespaces do not share them)."""
    rules = {
        "api": [
            # the API server reads each cluster's TLS credentials to reach its scheduler
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            {"apiGroups": ["gateway.dask.org"], "resources": ["daskclusters"], "verbs": ["*"]},
        ],
        "controller": [
            {
                "apiGroups": ["gateway.dask.org"],
                "resources": ["daskclusters", "daskclusters/status"],
                "verbs": ["*"],
            },
            {
                "apiGroups": ["traefik.io"],
                "resources": ["ingressroutes", "ingressroutetcps"],
                "verbs": ["get", "create", "delete"],
            },
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
            {"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets", "services"], "verbs": ["create", "delete"]},
        ],
        "traefik": [
            {
                "apiGroups": [""],
                # traefik 3.3's kubernetescrd provider also watches nodes
                "resources": ["services", "endpoints", "secrets", "nodes"],
                "verbs": ["get", "list", "watch"],
            },
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            {"apiGroups": ["traefik.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        ],
    }
    docs = []
    for component, component_rules in rules.items():
        name = f"{namespace}-{component}"
        docs += [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": component, "namespace": namespace},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": component_rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "subjects": [{"kind": "ServiceAccount", "name": component, "namespace": namespace}],
                "roleRef": {"kind": "ClusterRole", "name": name, "apiGroup": "rbac.authorization.k8s.io"},
            },
        ]
    return yaml.safe_dump_all(docs)


def deployment(
    namespace: str, component: str, image: str, args: list[str], ports: dict[str, int], **spec: Any
) -> dict:
    """A one-replica Deployment of `component` (label app.kubernetes.io/component) with its ServiceAccount."""
    labels = {"app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/component": component}
    container = {
        "name": component,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"name": name, "containerPort": port} for name, port in ports.items()],
        **spec.pop("container", {}),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{component}-{NAME}", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": spec.pop("account", component),
                    "containers": [container],
                    **spec,
                },
            },
        },
    }


def service(namespace: str, name: str, component: str, ports: dict[str, tuple[int, int]]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/component": component},
            "ports": [{"name": n, "port": p, "targetPort": t} for n, (p, t) in ports.items()],
        },
    }


@dataclass
class KubeGateway:
    """A running gateway: where the host reaches it, the users' password, the settings it runs with."""

    cluster: Cluster
    namespace: str
    address: str
    proxy_address: str
    password: str
    settings: dict[str, Any]

    def gateway(self, user: str) -> Gateway:
        """A dask-gateway client of `user` (close it, or use it as a context manager)."""
        return Gateway(self.address, proxy_address=self.proxy_address, auth=BasicAuth(user, self.password))

    def pods(self, component: str) -> list[dict]:
        """The pods of one component: dask-scheduler, dask-worker, api, controller, traefik."""
        return self.cluster.json(
            "pods", "-n", self.namespace, "-l", f"app.kubernetes.io/component={component}"
        )["items"]

    def log(self, component: str) -> str:
        return self.cluster.kubectl(
            "logs", "-n", self.namespace, f"deployment/{component}-{NAME}", "--tail=200", check=False
        )

    def restart_api(self, seconds: float = 240) -> str:
        """Kill the API server's pod (no grace period, as a crash) and wait until its Deployment's new pod
        answers through traefik; the new pod's name."""
        [old] = [
            p["metadata"]["name"] for p in self.pods("api") if not p["metadata"].get("deletionTimestamp")
        ]
        self.cluster.kubectl(
            "delete", "pod", "-n", self.namespace, old, "--grace-period=0", "--force", "--wait=true"
        )
        rolled = self.cluster.kubectl(
            "rollout",
            "status",
            "-n",
            self.namespace,
            f"deployment/api-{NAME}",
            f"--timeout={int(seconds)}s",
            check=False,
            timeout=seconds + 20,
        )
        assert "successfully rolled out" in rolled, f"api: {rolled}"
        self.wait_api()
        [new] = [
            p["metadata"]["name"] for p in self.pods("api") if not p["metadata"].get("deletionTimestamp")
        ]
        assert new != old, f"the API server's pod {old} was not replaced"
        return new

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        cluster: Cluster,
        namespace: str,
        settings: Mapping[str, Any],
        data_dir: Path | None = None,
    ) -> Iterator[KubeGateway]:
        """Deploy the gateway into `namespace` (made here, removed at the end) with the facility `settings`
        (chart values under `settings`); `data_dir` (a host folder) is mounted read-only at the same path in the
        workers, through a PersistentVolume (Pod Security baseline refuses hostPath)."""
        values = chart_values()
        subchart = values["dask-gateway"]
        hub_image = f"{subchart['gateway']['image']['name']}:{subchart['gateway']['image']['tag']}"
        backend = subchart["gateway"]["backend"]
        notebook_image = f"{backend['image']['name']}:{backend['image']['tag']}"
        for image in (hub_image, notebook_image):
            load_image(image)
        traefik_image, traefik_crds = traefik_on_node(cluster)
        settings_yaml = chart_configmap({"settings": dict(settings)})["settings.yaml"]
        prefix = subchart["gateway"]["prefix"]
        password = secrets.token_hex(12)
        worker_pod: dict[str, Any] = {}
        # the node has two cores shared by every test: requests small enough for a scheduler and two workers
        worker_container: dict[str, Any] = {"resources": {"requests": {"cpu": "100m"}}}
        objects: list[dict] = []
        if data_dir is not None:
            # a volume left by an interrupted run stays bound to its old claim: a new claim would never bind
            cluster.kubectl("delete", "pv", f"{namespace}-data", "--ignore-not-found", "--wait=true")
            worker_pod = {
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}
                ]
            }
            worker_container["volumeMounts"] = [
                {"name": "data", "mountPath": str(data_dir), "readOnly": True}
            ]
            objects += [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"{namespace}-data"},
                    "spec": {
                        "capacity": {"storage": "1Gi"},
                        "accessModes": ["ReadOnlyMany"],
                        "storageClassName": "",
                        "persistentVolumeReclaimPolicy": "Retain",
                        "claimRef": {"namespace": namespace, "name": "data"},
                        "hostPath": {"path": str(data_dir), "type": "Directory"},
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "namespace": namespace},
                    "spec": {
                        "accessModes": ["ReadOnlyMany"],
                        "storageClassName": "",
                        "volumeName": f"{namespace}-data",
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                },
            ]
        instance = f"{namespace}-{NAME}"
        fmt = {"name": NAME, "instance": instance, "namespace": namespace, "prefix": prefix}
        gateway_config = GATEWAY_CONFIG.format(
            properties=json.dumps(
                {"gateway": {k: v for k, v in subchart["gateway"].items() if k != "extraConfig"}}
            ),
            image=notebook_image,
            environment=backend.get("environment", {}),
            scheduler_cores=0.1,
            worker_pod=worker_pod,
            worker_container=worker_container,
            extra_config="\n".join(subchart["gateway"]["extraConfig"].values()),
            **fmt,
        )
        objects += [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": NAME, "namespace": namespace},
                "data": {
                    "dask_gateway_config.py": gateway_config,
                    "controller_config.py": CONTROLLER_CONFIG.format(**fmt),
                    "settings.yaml": settings_yaml,
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "users", "namespace": namespace},
                "stringData": {"password": password},
            },
        ]
        config_volume = {"volumes": [{"name": "config", "configMap": {"name": NAME}}]}
        config_mount = {"volumeMounts": [{"name": "config", "mountPath": "/etc/dask-gateway"}]}
        settings_env = {
            "name": "AF_SETTINGS_YAML",
            "valueFrom": {"configMapKeyRef": {"name": NAME, "key": "settings.yaml"}},
        }
        password_env = {
            "name": "GATEWAY_TEST_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "users", "key": "password"}},
        }
        objects += [
            deployment(
                namespace,
                "api",
                hub_image,
                ["dask-gateway-server", "--config", "/etc/dask-gateway/dask_gateway_config.py"],
                {"api": 8000},
                container={"env": [settings_env, password_env], **config_mount},
                **config_volume,
            ),
            deployment(
                namespace,
                "controller",
                hub_image,
                [
                    "dask-gateway-server",
                    "kube-controller",
                    "--config",
                    "/etc/dask-gateway/controller_config.py",
                ],
                {"api": 8000},
                container=config_mount,
                **config_volume,
            ),
            deployment(
                namespace,
                "traefik",
                traefik_image,
                [
                    "--global.checknewversion=False",
                    "--global.sendanonymoususage=False",
                    "--ping=true",
                    "--providers.kubernetescrd",
                    f"--providers.kubernetescrd.labelselector=gateway.dask.org/instance={instance}",
                    f"--providers.kubernetescrd.namespaces={namespace}",
                    "--providers.kubernetescrd.throttleduration=2",
                    "--log.level=WARN",
                    "--entryPoints.traefik.address=:9000",
                    "--entryPoints.web.address=:8000",
                    "--entryPoints.tcp.address=:8786",
                ],
                {"traefik": 9000, "web": 8000, "tcp": 8786},
                container={
                    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                    "readinessProbe": {"httpGet": {"path": "/ping", "port": 9000}, "periodSeconds": 2},
                },
            ),
            service(namespace, f"api-{NAME}", "api", {"api": (8000, 8000)}),
            service(namespace, f"traefik-{NAME}", "traefik", {"web": (80, 8000), "tcp": (8786, 8786)}),
            {
                "apiVersion": "traefik.io/v1alpha1",
                "kind": "IngressRoute",
                "metadata": {
                    "name": f"api-{NAME}",
                    "namespace": namespace,
                    "labels": {"gateway.dask.org/instance": instance},
                },
                "spec": {
                    "entryPoints": ["web"],
                    "routes": [
                        {
                            "match": f"PathPrefix(`{prefix}`)",
                            "kind": "Rule",
                            "services": [{"name": f"api-{NAME}", "port": 8000}],
                            "middlewares": [{"name": f"api-prefix-{NAME}"}],
                        }
                    ],
                },
            },
            {
                "apiVersion": "traefik.io/v1alpha1",
                "kind": "Middleware",
                "metadata": {
                    "name": f"api-prefix-{NAME}",
                    "namespace": namespace,
                    "labels": {"gateway.dask.org/instance": instance},
                },
                "spec": {"stripPrefix": {"prefixes": [prefix.rstrip("/")], "forceSlash": False}},
            },
            {
                "apiVersion": "traefik.io/v1alpha1",
                "kind": "Middleware",
                "metadata": {
                    "name": f"clusters-prefix-{NAME}",
                    "namespace": namespace,
                    "labels": {"gateway.dask.org/instance": instance},
                },
                "spec": {"stripPrefixRegex": {"regex": [f"{prefix.rstrip('/')}/clusters/[a-zA-Z0-9.-]+"]}},
            },
        ]
        enforce = values["podSecurity"]["enforce"]
        forwards: list[subprocess.Popen] = []
        try:
            cluster.kubectl("apply", "--server-side", "-f", str(traefik_crds))
            crd, origin = daskcluster_crd()
            print(f"DaskCluster CRD: {origin}")
            # server-side and forced: the CRD may have been created by helm (make deploy-local) or by the other source
            cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=crd)
            cluster.kubectl(
                "wait",
                "--for=condition=Established",
                "crd/daskclusters.gateway.dask.org",
                "crd/ingressroutes.traefik.io",
            )
            cluster.apply(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {
                            "name": namespace,
                            "labels": {"pod-security.kubernetes.io/enforce": enforce},
                        },
                    }
                )
            )
            cluster.apply(rbac(namespace))
            cluster.apply(yaml.safe_dump_all(objects))
            for component in ("api", "controller", "traefik"):
                rolled = cluster.kubectl(
                    "rollout",
                    "status",
                    "-n",
                    namespace,
                    f"deployment/{component}-{NAME}",
                    "--timeout=240s",
                    check=False,
                    timeout=260,
                )
                assert "successfully rolled out" in rolled, f"{component}: {rolled}\n" + cluster.kubectl(
                    "logs", "-n", namespace, f"deployment/{component}-{NAME}", "--tail=50", check=False
                )
            traefik_ip = cluster.json("service", "-n", namespace, f"traefik-{NAME}")["spec"]["clusterIP"]
            web, tcp = free_port(), free_port()
            for port, inside in ((web, f"{traefik_ip}:80"), (tcp, f"{traefik_ip}:8786")):
                forwards.append(subprocess.Popen(forward(cluster.bin, port, inside), start_new_session=True))
            gateway = cls(
                cluster,
                namespace,
                f"http://127.0.0.1:{web}{prefix}",
                f"gateway://127.0.0.1:{tcp}",
                password,
                yaml.safe_load(settings_yaml),
            )
            gateway.wait_api()
            yield gateway
        finally:
            for process in forwards:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)
            cluster.kubectl(
                "delete", "namespace", namespace, "--wait=true", "--timeout=120s", check=False, timeout=150
            )
            for component in ("api", "controller", "traefik"):
                cluster.kubectl(
                    "delete", "clusterrole,clusterrolebinding", f"{namespace}-{component}", check=False
                )
            cluster.kubectl("delete", "pv", f"{namespace}-data", "--wait=false", check=False)

    def wait_api(self, seconds: float = 90) -> None:
        """Until traefik routes the API (it reads the IngressRoute after its throttle)."""
        deadline = time.monotonic() + seconds
        answer = None
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                answer = requests.get(f"{self.address}/api/version", timeout=5)
                if answer.status_code == 200:
                    return
            time.sleep(1)
        raise AssertionError(
            f"gateway API not routed by traefik: {answer and answer.status_code}\n{self.log('api')}"
        )
