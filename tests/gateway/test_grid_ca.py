"""``grid_ca.configmap``: the grid CA folder (read-only at /etc/grid-security/certificates, X509_CERT_DIR) in the
pods that real KubeSpawner (users' servers) and dask-gateway's KubeController (schedulers, workers) make from our
configuration; a name that is no Kubernetes object name is refused naming the key. On a real cluster:
tests/cluster/test_kube_gateway.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS
from typing import Any

import pytest
from dask_gateway_server.backends.kubernetes import KubeBackend
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
from dask_gateway_server.backends.kubernetes.controller import KubeController
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config

from af.gateway.server_config import configure_gateway_server
from af.tools.check.startup import OFFLINE_KUBECONFIG
from hub_config import configure
from hub_config.settings import Settings, SettingsError, validate_settings

MOUNT = {"name": "grid-ca", "mountPath": "/etc/grid-security/certificates", "readOnly": True}
VOLUME = {"name": "grid-ca", "configMap": {"name": "grid-ca-bundle"}}
X509 = {"name": "X509_CERT_DIR", "value": "/etc/grid-security/certificates"}
DISCOVERY = {
    "issuer": "https://iam.example.org",
    "authorization_endpoint": "https://iam.example.org/authorize",
    "token_endpoint": "https://iam.example.org/token",
    "userinfo_endpoint": "https://iam.example.org/userinfo",
}


def settings(**grid_ca: Any) -> Settings:
    return validate_settings(
        {
            "platform": "kubernetes",
            "hub": {"public_url": "https://af.example.org"},
            "auth": {"client_id": "af-hub", "issuer": "https://iam.example.org"},
            "grid_ca": grid_ca,
        },
        "settings.yaml",
    )


def gateway_pods(s: Settings) -> dict[str, dict]:
    """The scheduler and worker pods KubeController makes with our gateway configuration over values the chart
    set before (a worker volume and requests, as backend.worker.extraPodConfig/extraContainerConfig)."""
    c = Config()
    c.KubeClusterConfig.worker_extra_pod_config = {"volumes": [{"name": "data", "emptyDir": {}}]}
    c.KubeClusterConfig.worker_extra_container_config = {
        "resources": {"requests": {"cpu": "100m"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    configure_gateway_server(c, s, "http://hub:8081/hub/api", backend_class=KubeBackend)
    c.KubeController.gateway_instance = "af-test"
    controller, config = KubeController(config=c), KubeClusterConfig(config=c)
    return {
        role: controller.make_pod("af", "abc", config, is_worker=role == "worker")
        for role in ("scheduler", "worker")
    }


def test_gateway_schedulers_and_workers_mount_the_grid_ca_folder():
    pods = gateway_pods(settings(configmap="grid-ca-bundle"))
    for role, pod in pods.items():
        [container] = pod["spec"]["containers"]
        assert VOLUME in pod["spec"]["volumes"], role
        assert MOUNT in container["volumeMounts"], role
        assert X509 in container["env"], role
    worker = pods["worker"]["spec"]
    # what the chart configured stays
    assert {"name": "data", "emptyDir": {}} in worker["volumes"]
    assert {"name": "data", "mountPath": "/data"} in worker["containers"][0]["volumeMounts"]
    assert worker["containers"][0]["resources"]["requests"]["cpu"] == "100m"


def test_gateway_pods_without_the_setting_have_no_ca_folder():
    for pod in gateway_pods(settings()).values():
        assert "grid-ca" not in [v["name"] for v in pod["spec"].get("volumes", [])]
        assert "X509_CERT_DIR" not in [e["name"] for e in pod["spec"]["containers"][0]["env"]]


def user_pod(s: Settings, monkeypatch) -> dict:
    """The pod real KubeSpawner makes for a user with `configure`'s configuration over z2jh's home volume."""
    from kubespawner import KubeSpawner

    for name in ("AF_OIDC_CLIENT_SECRET", "AF_GATEWAY_API_TOKEN"):
        monkeypatch.setenv(name, "secret")
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "00" * 32)
    c = Config()
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-u"}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    configure(c, s, DISCOVERY)
    c.KubeSpawner.namespace = "af"

    async def manifest() -> dict:
        server = NS(
            base_url="/user/u/", url="/user/u/", host="", ip="", port=8888, bind_url="http://:8888/user/u/"
        )
        user = NS(name="u", escaped_name="u", json_escaped_name="u", id=1, url="/user/u/", server=server,
                  groups=[], roles=[], settings={}, spawners={}, orm_user=None)  # fmt: skip
        hub = NS(public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api",
                 host="")  # fmt: skip
        spawner = KubeSpawner(config=c, user=user, hub=hub, orm_spawner=None, server=server,
                              api_token="0" * 32, oauth_client_id="jupyterhub-user-u")  # fmt: skip
        await spawner.load_user_options()
        return ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())

    return asyncio.run(manifest())


def test_user_servers_mount_the_grid_ca_folder(monkeypatch, tmp_path):
    (tmp_path / "kubeconfig").write_text(OFFLINE_KUBECONFIG)  # KubeSpawner loads one; nothing is sent to it
    # kubernetes_asyncio read $KUBECONFIG when it was imported
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    pod = user_pod(settings(configmap="grid-ca-bundle"), monkeypatch)
    [container] = pod["spec"]["containers"]
    assert VOLUME in pod["spec"]["volumes"]
    assert {"name": "home", "persistentVolumeClaim": {"claimName": "claim-u"}} in pod["spec"]["volumes"]
    assert MOUNT in container["volumeMounts"]
    assert X509 in container["env"]
    bare = user_pod(settings(), monkeypatch)
    assert "grid-ca" not in [v["name"] for v in bare["spec"]["volumes"]]
    assert "X509_CERT_DIR" not in [e["name"] for e in bare["spec"]["containers"][0]["env"]]


@pytest.mark.parametrize("name", ["Grid_CA", "grid ca", "-grid", "grid-"])
def test_a_configmap_name_that_kubernetes_refuses_is_refused_naming_the_key(name):
    with pytest.raises(
        SettingsError, match=r"settings\.yaml: grid_ca\.configmap: expected a Kubernetes object"
    ):
        settings(configmap=name)
