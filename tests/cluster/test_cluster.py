"""The single-node cluster of `make cluster`, used as a user of Kubernetes would: the node is Ready at the
pinned version, a pod resolves a Service through CoreDNS and reaches it, a PVC is provisioned and written,
a NetworkPolicy refuses a flow it does not allow, and `make cluster-down` leaves the host as it was.

The tests run in this order (the last one stops the cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from .cluster import (
    NETNS,
    REPO,
    REUSE,
    STATE,
    TOOLS,
    Cluster,
    HostState,
    leftovers,
    pinned_kubernetes,
    run_script,
)

NAMESPACE = "cluster-test"


def image_name(kind: str) -> str:
    """The name `make images` gives the hub or notebook image (tools/images/build.py reads it from the chart)."""
    sys.path.insert(0, str(REPO / "tools" / "images"))
    try:
        import build  # tools/images is a script folder, not a package
    finally:
        sys.path.pop(0)
    return build.image_name(kind)


BUSYBOX = "localhost/physlite-cluster/busybox:1"


def pod(name: str, command: str, labels: str = "{}", extra: str = "") -> str:
    """A busybox pod running ``sh -c command`` in the test namespace."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NAMESPACE}, labels: {labels}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: {BUSYBOX}
      imagePullPolicy: Never
      command: [/bin/sh, -c, {command!r}]
{extra}
"""


def wait_phase(cluster: Cluster, name: str, phases: tuple[str, ...], seconds: float = 120) -> str:
    """Wait until the pod is in one of phases; return that phase (AssertionError with its events otherwise)."""
    deadline = time.monotonic() + seconds
    phase = ""
    while time.monotonic() < deadline:
        phase = cluster.json("pod", "-n", NAMESPACE, name).get("status", {}).get("phase", "")
        if phase in phases:
            return phase
        time.sleep(1)
    events = cluster.kubectl(
        "get", "events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={name}"
    )
    raise AssertionError(f"pod {name} is {phase!r}, not {phases}, after {seconds}s:\n{events}")


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> Cluster:
    """A namespace with an HTTP server pod (app=web) behind the Service ``web``."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.apply(
        pod(
            "web",
            "mkdir -p /tmp/www && echo physlite-web > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www",
            labels="{app: web}",
        )
        + f"""---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NAMESPACE}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""
    )
    wait_phase(cluster, "web", ("Running",))
    cluster.kubectl("wait", "-n", NAMESPACE, "--for", "condition=Ready", "pod/web", "--timeout", "60s")
    return cluster


def fetch_from(cluster: Cluster, client: str, host: str, port: int = 80) -> tuple[bool, str]:
    """Whether pod ``client`` gets the server's page from host:port (busybox nc, 4 s timeout), and the reply.

    (busybox's wget crashes in a scratch image; nc needs nothing but the resolver.)"""
    request = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 4 {host} {port}'
    result = cluster.kubectl(
        "exec", "-n", NAMESPACE, client, "--", "sh", "-c", request, check=False, timeout=60
    )
    return "physlite-web" in result, result


def test_node_ready_at_the_pinned_version(cluster: Cluster):
    node = cluster.json("node", "physlite-node")
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True", conditions
    server = json.loads(cluster.kubectl("get", "--raw", "/version"))
    assert server["gitVersion"] == pinned_kubernetes() == node["status"]["nodeInfo"]["kubeletVersion"]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


def test_host_firewall_and_routes_untouched_while_running(cluster: Cluster, host_before: HostState):
    """The node's rules and routes (kube-proxy, kube-router, CNI) live only in its own network namespace."""
    now = HostState.capture()
    assert now.iptables == host_before.iptables
    assert now.routes == host_before.routes
    node_rules = subprocess.run(
        ["ip", "netns", "exec", NETNS, "iptables-save"], capture_output=True, text=True, check=True
    ).stdout
    assert "KUBE-SERVICES" in node_rules and "KUBE-ROUTER-FORWARD" in node_rules, node_rules[:2000]


def test_pod_resolves_a_service_through_coredns_and_reaches_it(web: Cluster):
    web.apply(pod("client", "sleep 3600", labels="{role: client}"))
    wait_phase(web, "client", ("Running",))
    lookup = web.kubectl(
        "exec", "-n", NAMESPACE, "client", "--", "nslookup", f"web.{NAMESPACE}.svc.cluster.local"
    )
    service_ip = web.json("service", "-n", NAMESPACE, "web")["spec"]["clusterIP"]
    assert service_ip in lookup, lookup
    resolv = web.kubectl("exec", "-n", NAMESPACE, "client", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 10.96.0.10" in resolv, resolv
    ok, output = fetch_from(web, "client", "web")  # the short name, through the search path
    assert ok, output


def test_pvc_is_bound_and_written(cluster: Cluster):
    claim = f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: {NAMESPACE}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 10Mi}}}}
"""
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.apply(claim)
    volume = """      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]"""
    cluster.apply(pod("writer", "echo written-in-a-pod > /data/hello && cat /data/hello", extra=volume))
    assert wait_phase(cluster, "writer", ("Succeeded", "Failed"), seconds=180) == "Succeeded"
    assert "written-in-a-pod" in cluster.kubectl("logs", "-n", NAMESPACE, "writer")
    pvc = cluster.json("pvc", "-n", NAMESPACE, "data")
    assert pvc["status"]["phase"] == "Bound"
    pv = cluster.json("pv", pvc["spec"]["volumeName"])
    folder = pv["spec"].get("hostPath", pv["spec"].get("local", {}))["path"]
    assert folder.startswith(str(STATE / "volumes")), folder
    assert (STATE / "volumes").joinpath(
        folder.split("/volumes/", 1)[1], "hello"
    ).read_text() == "written-in-a-pod\n"


def test_network_policy_refuses_a_flow_it_does_not_allow(web: Cluster):
    web.apply(pod("client", "sleep 3600", labels="{role: client}"))
    web.apply(pod("outsider", "sleep 3600"))
    wait_phase(web, "client", ("Running",))
    wait_phase(web, "outsider", ("Running",))
    ok, output = fetch_from(web, "outsider", "web")
    assert ok, f"before any policy the outsider must reach the server: {output}"
    web.apply(
        f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: web-from-clients, namespace: {NAMESPACE}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  policyTypes: [Ingress]
  ingress:
    - from: [{{podSelector: {{matchLabels: {{role: client}}}}}}]
      ports: [{{port: 8080}}]
"""
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reached, output = fetch_from(web, "outsider", "web")
        if not reached:
            break
        time.sleep(2)
    assert not reached, f"the policy did not stop the outsider within 60 s: {output}"
    ok, output = fetch_from(web, "client", "web")
    assert ok, f"the allowed client was refused too: {output}"
    web.kubectl("delete", "networkpolicy", "-n", NAMESPACE, "web-from-clients")


def test_images_of_make_images_run_on_the_node(cluster: Cluster):
    """make cluster-load-images puts the notebook image on the node (nothing can be pulled); a pod runs it."""
    notebook = image_name("notebook")
    result = subprocess.run(
        [str(TOOLS / "load-images.sh"), notebook, "localhost/physlite-cluster/not-built:1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "skipped localhost/physlite-cluster/not-built:1: podman has no such image" in result.stdout
    assert f"skipped {notebook}" not in result.stdout, (
        f"{notebook} is not built (make images): {result.stdout}"
    )
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.apply(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: notebook, namespace: {NAMESPACE}}}
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: {notebook}
      imagePullPolicy: Never
      command: [python, -c, "import physlite; print('physlite', physlite.__name__)"]
"""
    )
    assert wait_phase(cluster, "notebook", ("Succeeded", "Failed"), seconds=300) == "Succeeded"
    assert "physlite physlite" in cluster.kubectl("logs", "-n", NAMESPACE, "notebook")


@pytest.mark.skipif(REUSE, reason="CLUSTER_REUSE=1 keeps the cluster running for the next test run")
def test_cluster_down_leaves_nothing(cluster: Cluster, host_before: HostState):
    run_script("down", 300)
    assert leftovers() == []
    after = HostState.capture()
    assert after.sysctls == host_before.sysctls
    assert after.routes == host_before.routes
    assert after.iptables == host_before.iptables
    assert after.ip6tables == host_before.ip6tables
    assert after.node_host_paths == host_before.node_host_paths
