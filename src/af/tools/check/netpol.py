"""What the NetworkPolicies allow, evaluated offline against the facility's traffic contract.

The contract lists the flows every pod of the facility needs (:data:`REQUIRED`), derived from what the
subcharts' templates and our code make each pod do — z2jh's hub runs KubeSpawner (Kubernetes API) and the OIDC
login (the issuer), its proxy forwards to the hub and the user servers; dask-gateway's traefik runs with
``--providers.kubernetescrd`` and reads its routes from the Kubernetes API, its controller and API server
(KubeBackend) manage DaskClusters, pods and Secrets there; schedulers and workers read data — and the flows that
must stay closed (:data:`FORBIDDEN`). docs/admin.md explains each. The policies evaluated are our chart's
rendered ones and z2jh's, rebuilt from the values (:mod:`af.tools.check.z2jh_netpol`); a side no policy
selects counts as open.

The pods are described by the labels z2jh, dask-gateway (chart and Kubernetes backend) and our chart give them;
other endpoints by an address (the Kubernetes API server's from ``networkPolicy.kubeApiServer.cidrs`` when the
values narrow it). Whether an ``ipBlock`` matches a pod's IP depends on the CNI (Cilium: never, Calico: yes):
a needed flow must pass without it, a forbidden flow must stay closed with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from af.tools.check.findings import Finding
from af.tools.check.z2jh_netpol import METADATA_IP, VALUES_KEY, z2jh_labels, z2jh_policies

NAMESPACE = "analysis-facility"


@dataclass(frozen=True)
class Endpoint:
    """A pod (``labels`` not None, in ``namespace``) or an address outside the namespace's pods."""

    address: str
    labels: Mapping[str, str] | None = None
    namespace: str = NAMESPACE


def _access(*what: str) -> dict[str, str]:
    return {f"hub.jupyter.org/network-access-{w}": "true" for w in what}


GATEWAY = {"app.kubernetes.io/name": "dask-gateway"}
POD_IP = "10.244.0.10"
ENDPOINTS: dict[str, Endpoint] = {
    "hub": Endpoint(POD_IP, {**z2jh_labels("hub"), **_access("proxy-api", "proxy-http", "singleuser")}),
    "proxy": Endpoint(POD_IP, {**z2jh_labels("proxy"), **_access("hub", "singleuser")}),
    "user-server": Endpoint(POD_IP, {**z2jh_labels("singleuser-server"), **_access("hub")}),
    "user-scheduler": Endpoint(POD_IP, z2jh_labels("user-scheduler")),
    "gateway-api": Endpoint(POD_IP, {**GATEWAY, "app.kubernetes.io/component": "gateway"}),
    "traefik": Endpoint(POD_IP, {**GATEWAY, "app.kubernetes.io/component": "traefik"}),
    "controller": Endpoint(POD_IP, {**GATEWAY, "app.kubernetes.io/component": "controller"}),
    "scheduler": Endpoint(
        POD_IP,
        {**GATEWAY, "app.kubernetes.io/component": "dask-scheduler", "gateway.dask.org/cluster": "c1"},
    ),
    "worker": Endpoint(
        POD_IP,
        {**GATEWAY, "app.kubernetes.io/component": "dask-worker", "gateway.dask.org/cluster": "c1"},
    ),
    "healthcheck": Endpoint(
        POD_IP, {"app.kubernetes.io/name": "analysis-facility", "app.kubernetes.io/component": "healthcheck"}
    ),
    "guard": Endpoint(
        POD_IP,
        {"app.kubernetes.io/name": "analysis-facility", "app.kubernetes.io/component": "dashboard-guard"},
    ),
    "servicex": Endpoint(
        POD_IP,
        {
            "app.kubernetes.io/name": "analysis-facility",
            "app.kubernetes.io/component": "servicex",
            **_access("hub"),
        },
    ),
    "other-pod": Endpoint(POD_IP, {"app": "something-else"}),
    # the cluster's DNS: CoreDNS pods in kube-system
    "dns": Endpoint("10.244.0.3", {"k8s-app": "kube-dns"}, "kube-system"),
    # the `kubernetes` Service's usual ClusterIP (networkPolicy.kubeApiServer.cidrs replaces it)
    "kube-api": Endpoint("10.96.0.1"),
    # outside the cluster: the OIDC issuer, data servers, package indexes
    "internet": Endpoint("203.0.113.10"),
    "metadata": Endpoint(METADATA_IP),
}
PODS = {name: e.labels for name, e in ENDPOINTS.items() if e.labels is not None}


@dataclass(frozen=True)
class Flow:
    """A connection from one endpoint to a port (number and container-port name) of another, and why."""

    source: str
    target: str
    port: int
    port_name: str
    why: str
    protocol: str = "TCP"

    def __str__(self) -> str:
        suffix = "" if self.protocol == "TCP" else f"/{self.protocol}"
        return f"{self.source} -> {self.target}:{self.port}{suffix}"


def _api(source: str, why: str) -> tuple[Flow, ...]:
    return tuple(Flow(source, "kube-api", port, "", why) for port in (443, 6443))


def _dns(*sources: str) -> tuple[Flow, ...]:
    return tuple(Flow(s, "dns", 53, "dns", "name lookups (Services)", "UDP") for s in sources)


REQUIRED = (
    # z2jh: templates hub/, proxy/, singleuser/ and the hub's jupyterhub_config.py
    *_api("hub", "KubeSpawner creates and watches user pods (z2jh hub/rbac.yaml)"),
    Flow("hub", "proxy", 8001, "api", "the hub sets the proxy's routes (CHP API)"),
    Flow("hub", "user-server", 8888, "notebook-port", "the hub checks its users' servers"),
    Flow("hub", "internet", 443, "", "OIDC login: the issuer's discovery, token and userinfo endpoints"),
    Flow("proxy", "hub", 8081, "http", "the proxy forwards /hub/ to the hub"),
    Flow("proxy", "user-server", 8888, "notebook-port", "the proxy forwards /user/ to the servers"),
    Flow("user-server", "hub", 8081, "http", "servers use the hub API (OAuth, activity, tokens)"),
    Flow("user-server", "internet", 443, "", "users read data over https"),
    Flow("user-server", "internet", 1094, "", "users read data over root:// (XRootD)"),
    *_api("user-scheduler", "z2jh's user scheduler (a kube-scheduler) binds user pods"),
    # dask-gateway: templates traefik/, controller/, gateway/ and the KubeBackend
    *_api("traefik", "--providers.kubernetescrd: traefik reads its IngressRoutes from the API"),
    *_api("controller", "the controller turns DaskClusters into pods, Services and IngressRoutes"),
    *_api("gateway-api", "KubeBackend creates DaskCluster objects and reads their Secrets"),
    Flow("traefik", "gateway-api", 8000, "api", "traefik forwards the gateway API"),
    Flow("traefik", "scheduler", 8786, "scheduler", "traefik forwards client connections to schedulers"),
    Flow("traefik", "scheduler", 8787, "dashboard", "dashboards are served through traefik"),
    Flow("gateway-api", "scheduler", 8788, "api", "the gateway manages its schedulers"),
    Flow("scheduler", "gateway-api", 8000, "api", "schedulers report to the gateway API"),
    Flow("worker", "scheduler", 8786, "scheduler", "workers connect to their scheduler"),
    Flow("scheduler", "worker", 40000, "", "the scheduler connects to its workers"),
    Flow("worker", "worker", 40000, "", "workers exchange data"),
    Flow("worker", "internet", 1094, "", "workers read data over root:// (XRootD)"),
    Flow("worker", "internet", 443, "", "workers read data over https and S3"),
    Flow("gateway-api", "hub", 8081, "http", "the gateway checks users' tokens at the hub API"),
    # between the subcharts, through our chart's pods
    Flow(
        "proxy", "guard", 8788, "http", "the hub's proxy routes <base_url>services/dask-gateway/ to the guard"
    ),
    Flow(
        "hub", "guard", 8788, "http", "hub_config stops a user's clusters through the gateway's service URL"
    ),
    Flow("guard", "traefik", 8000, "web", "the guard forwards to the gateway through traefik"),
    Flow("guard", "hub", 8081, "http", "the guard checks tokens and OAuth at the hub API"),
    Flow("user-server", "traefik", 8786, "tcp", "dask clients reach their schedulers on traefik's TCP port"),
    Flow("user-server", "proxy", 8000, "http", "the gateway API through the proxy and the guard"),
    Flow("healthcheck", "proxy", 8000, "http", "the health check goes through the public proxy"),
    *_dns(
        "hub", "proxy", "user-server", "traefik", "gateway-api", "scheduler", "worker", "guard", "healthcheck"
    ),
)
# the cloud metadata server hands out the node's cloud credentials: closed for every pod that runs user code,
# by a NetworkPolicy or (user servers only) z2jh's iptables init container (singleuser.cloudMetadata)
METADATA = tuple(
    Flow(s, "metadata", 80, "", "pods running user code must not get the node's cloud credentials")
    for s in ("user-server", "scheduler", "worker")
)
FORBIDDEN = (
    Flow("user-server", "traefik", 8000, "web", "dashboards only through the guard (dask-gateway#570)"),
    Flow("proxy", "traefik", 8000, "web", "the proxy goes through the guard"),
    Flow("other-pod", "guard", 8788, "http", "only the hub's proxy and the hub use the guard"),
    Flow("other-pod", "traefik", 8000, "web", "only the facility's pods may use the gateway"),
    Flow("other-pod", "traefik", 8786, "tcp", "only user servers connect to schedulers"),
    Flow("other-pod", "gateway-api", 8000, "api", "the gateway API is reached only through traefik"),
    Flow("other-pod", "scheduler", 8786, "scheduler", "users' schedulers are private"),
    Flow("other-pod", "worker", 40000, "", "users' workers are private"),
    Flow("user-server", "gateway-api", 8000, "api", "user servers go through the proxy and traefik"),
    Flow("user-server", "scheduler", 8786, "scheduler", "user servers go through traefik"),
    Flow("user-server", "worker", 40000, "", "user servers do not reach workers directly"),
    Flow("guard", "scheduler", 8787, "dashboard", "the guard reaches dashboards only through traefik"),
    Flow("guard", "kube-api", 443, "", "the guard needs no Kubernetes API"),
    Flow("other-pod", "healthcheck", 8000, "", "nothing talks to the health check"),
    Flow("healthcheck", "hub", 8081, "http", "the health check uses only the public proxy"),
    Flow("healthcheck", "scheduler", 8786, "scheduler", "the health check uses only the public proxy"),
    Flow("healthcheck", "kube-api", 443, "", "the health check uses only the public proxy"),
)


# with the facility's ServiceX (settings.servicex.facility): templates/servicex.yaml and af.servicex
SERVICEX_REQUIRED = (
    Flow(
        "proxy",
        "servicex",
        5000,
        "http",
        "the hub's proxy routes <base_url>services/servicex/ to the service",
    ),
    Flow("servicex", "hub", 8081, "http", "the service checks users' tokens at the hub API"),
    Flow("servicex", "proxy", 8000, "http", "the gateway API through the proxy (its cluster of its own)"),
    Flow("servicex", "traefik", 8786, "tcp", "the service's dask client reaches its scheduler"),
    *_dns("servicex"),
)
SERVICEX_FORBIDDEN = (
    Flow("other-pod", "servicex", 5000, "http", "only the hub's proxy reaches the service"),
    Flow("user-server", "servicex", 5000, "http", "users' servers go through the hub's proxy"),
    Flow("servicex", "kube-api", 443, "", "the service needs no Kubernetes API"),
    Flow("servicex", "scheduler", 8786, "scheduler", "the service reaches its scheduler through traefik"),
    Flow("servicex", "user-server", 8888, "notebook-port", "the service never calls users' servers"),
)


def contract(values: Mapping[str, Any]) -> tuple[tuple[Flow, ...], tuple[Flow, ...]]:
    """(required, forbidden) flows for these values: ServiceX's only when the chart deploys it.

    Example:
        >>> len(contract({"settings": {"servicex": {"facility": True}}})[0]) - len(REQUIRED)
        5
    """
    servicex = ((values.get("settings") or {}).get("servicex") or {}).get("facility") is True
    if not servicex:
        return REQUIRED, FORBIDDEN
    return REQUIRED + SERVICEX_REQUIRED, FORBIDDEN + SERVICEX_FORBIDDEN


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector matches ``labels`` (matchLabels and matchExpressions).

    Example:
        >>> selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}, {"a": "x"})
        True
    """
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _in_block(address: str, block: Mapping[str, Any]) -> bool:
    ip = ipaddress.ip_address(address)
    inside = ip in ipaddress.ip_network(block["cidr"], strict=False)
    return inside and not any(ip in ipaddress.ip_network(x, strict=False) for x in block.get("except") or [])


def _peer_matches(peer: Mapping[str, Any], end: Endpoint, pod_ips_in_blocks: bool) -> bool:
    if "ipBlock" in peer:
        return (end.labels is None or pod_ips_in_blocks) and _in_block(end.address, peer["ipBlock"])
    if end.labels is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": end.namespace}):
            return False
    elif end.namespace != NAMESPACE:
        return False
    return selects(peer.get("podSelector"), end.labels)


def _port_matches(ports: list[Mapping[str, Any]] | None, flow: Flow) -> bool:
    if not ports:
        return True
    for p in ports:
        port, last = p.get("port"), p.get("endPort")
        in_range = isinstance(port, int) and last is not None and port <= flow.port <= last
        if (port in (None, flow.port, flow.port_name) or in_range) and p.get(
            "protocol", "TCP"
        ) == flow.protocol:
            return True
    return False


def _name(policy: Mapping[str, Any]) -> str:
    meta = policy["metadata"]
    key = (meta.get("annotations") or {}).get(VALUES_KEY)
    return f"{meta['name']} (z2jh's, from {key})" if key else meta["name"]


def _side(
    policies: list[Mapping[str, Any]],
    direction: str,
    flow: Flow,
    endpoints: Mapping[str, Endpoint],
    pod_ips_in_blocks: bool,
) -> tuple[bool, list[str]]:
    """Whether the ``direction`` side of ``flow`` is open, and the names of the policies that select that side.

    A side no policy selects is open (Kubernetes' default); a selected side needs a rule admitting the peer.
    """
    own, peer = (flow.target, flow.source) if direction == "Ingress" else (flow.source, flow.target)
    own_end, peer_end = endpoints[own], endpoints[peer]
    if own_end.labels is None or own_end.namespace != NAMESPACE:
        return True, []  # not a pod of ours: no policy of this namespace applies
    peers_key = "from" if direction == "Ingress" else "to"
    selected = [
        p
        for p in policies
        if direction in (p["spec"].get("policyTypes") or [])
        and selects(p["spec"]["podSelector"], own_end.labels)
    ]
    for policy in selected:
        for rule in policy["spec"].get(direction.lower()) or []:
            peers = rule.get(peers_key)
            if (
                not peers or any(_peer_matches(x, peer_end, pod_ips_in_blocks) for x in peers)
            ) and _port_matches(rule.get("ports"), flow):
                return True, [_name(p) for p in selected]
    return not selected, [_name(p) for p in selected]


def blocking(
    policies: list[Mapping[str, Any]],
    flow: Flow,
    endpoints: Mapping[str, Endpoint] = ENDPOINTS,
    pod_ips_in_blocks: bool = False,
) -> str | None:
    """None when ``flow`` passes the policies; else which side blocks it (``egress of NetworkPolicy x``).

    Example:
        >>> blocking([], REQUIRED[0]) is None
        True
    """
    for direction in ("Egress", "Ingress"):
        is_open, names = _side(policies, direction, flow, endpoints, pod_ips_in_blocks)
        if not is_open:
            return f"{direction.lower()} of NetworkPolicy {', '.join(names)}"
    return None


def allowed(
    policies: list[Mapping[str, Any]],
    flow: Flow,
    endpoints: Mapping[str, Endpoint] = ENDPOINTS,
    pod_ips_in_blocks: bool = False,
) -> bool:
    """Whether ``flow`` passes the policies (unselected sides count as open).

    Example:
        >>> allowed([], REQUIRED[0])
        True
    """
    return blocking(policies, flow, endpoints, pod_ips_in_blocks) is None


def endpoints_for(values: Mapping[str, Any]) -> dict[str, Endpoint]:
    """:data:`ENDPOINTS` with the Kubernetes API server at the first address the values narrow it to.

    Example:
        >>> endpoints_for({"networkPolicy": {"kubeApiServer": {"cidrs": ["192.168.1.10/32"]}}})["kube-api"].address
        '192.168.1.10'
    """
    cidrs = ((values.get("networkPolicy") or {}).get("kubeApiServer") or {}).get("cidrs") or []
    if not cidrs:
        return dict(ENDPOINTS)
    first = str(ipaddress.ip_network(cidrs[0], strict=False).network_address)
    return {**ENDPOINTS, "kube-api": replace(ENDPOINTS["kube-api"], address=first)}


def iptables_blocks_metadata(values: Mapping[str, Any]) -> bool:
    """z2jh's ``singleuser.cloudMetadata.blockWithIptables`` (default true): an init container drops user
    servers' TCP to the metadata server's port 80."""
    metadata = ((values.get("jupyterhub") or {}).get("singleuser") or {}).get("cloudMetadata") or {}
    return metadata.get("blockWithIptables", True) is True


def check_network_policies(
    documents: list[dict[str, Any]], values: Mapping[str, Any], origin: str
) -> list[Finding]:
    """Every required flow allowed and every forbidden flow blocked by our rendered NetworkPolicies together
    with z2jh's (rebuilt from ``values``); the metadata server closed to user servers even with no policy at
    all (then by z2jh's iptables init container).

    Example:
        >>> check_network_policies([], {"jupyterhub": {"singleuser": {"networkPolicy": {"enabled": False},
        ...     "cloudMetadata": {"blockWithIptables": False}}}}, "v.yaml")[0].message[:38]
        'user-server -> metadata:80 is allowed,'
    """
    policies = [d for d in documents if d.get("kind") == "NetworkPolicy"] + z2jh_policies(values)
    endpoints = endpoints_for(values)
    findings = []
    for flow in METADATA:
        if flow.source == "user-server" and iptables_blocks_metadata(values):
            continue
        if not policies and flow.source != "user-server":
            continue  # without NetworkPolicies only z2jh's iptables way exists (for user servers)
        if allowed(policies, flow, endpoints, pod_ips_in_blocks=True):
            findings.append(
                Finding(
                    origin,
                    "NetworkPolicy",
                    f"{flow} is allowed, but must not be: {flow.why} (no policy blocks it"
                    + (
                        "; jupyterhub.singleuser.cloudMetadata.blockWithIptables is off)"
                        if flow.source == "user-server"
                        else ")"
                    ),
                )
            )
    if not policies:
        return findings
    required, forbidden = contract(values)
    for flow in required:
        side = blocking(policies, flow, endpoints)
        if side is not None:
            findings.append(
                Finding(origin, "NetworkPolicy", f"{flow} is blocked by the {side}, but needed: {flow.why}")
            )
    for flow in forbidden:
        if allowed(policies, flow, endpoints, pod_ips_in_blocks=True):
            findings.append(
                Finding(origin, "NetworkPolicy", f"{flow} is allowed, but must not be: {flow.why}")
            )
    return findings
