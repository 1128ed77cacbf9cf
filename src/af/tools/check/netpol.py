"""What our NetworkPolicies allow, evaluated offline against the facility's traffic contract.

The pods are described by the labels Zero to JupyterHub, dask-gateway (chart and Kubernetes backend) and our
chart give them. Each flow of :data:`REQUIRED` must be allowed and each of :data:`FORBIDDEN` blocked by the
policies our chart renders (ingress of the destination and egress of the source, where our policies select
them; pods no policy of ours selects are governed by z2jh's policies, which are not rendered here). Pod IPs are
assumed to be private, so ``ipBlock`` rules that exclude the private ranges never match a pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from af.tools.check.findings import Finding

GATEWAY = {"app.kubernetes.io/name": "dask-gateway"}
PODS: dict[str, dict[str, str]] = {
    "hub": {"app": "jupyterhub", "component": "hub"},
    "proxy": {"app": "jupyterhub", "component": "proxy"},
    "user-server": {"app": "jupyterhub", "component": "singleuser-server"},
    "gateway-api": {**GATEWAY, "app.kubernetes.io/component": "gateway"},
    "traefik": {**GATEWAY, "app.kubernetes.io/component": "traefik"},
    "controller": {**GATEWAY, "app.kubernetes.io/component": "controller"},
    "scheduler": {
        **GATEWAY,
        "app.kubernetes.io/component": "dask-scheduler",
        "gateway.dask.org/cluster": "c1",
    },
    "worker": {**GATEWAY, "app.kubernetes.io/component": "dask-worker", "gateway.dask.org/cluster": "c1"},
    "healthcheck": {
        "app.kubernetes.io/name": "analysis-facility",
        "app.kubernetes.io/component": "healthcheck",
    },
    "guard": {
        "app.kubernetes.io/name": "analysis-facility",
        "app.kubernetes.io/component": "dashboard-guard",
    },
    "other-pod": {"app": "something-else"},
}


@dataclass(frozen=True)
class Flow:
    """A connection from one pod to a port (number and container-port name) of another, and why it matters."""

    source: str
    target: str
    port: int
    port_name: str
    why: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}:{self.port}"


REQUIRED = (
    Flow(
        "proxy", "guard", 8788, "http", "the hub's proxy routes <base_url>services/dask-gateway/ to the guard"
    ),
    Flow(
        "hub", "guard", 8788, "http", "hub_config stops a user's clusters through the gateway's service URL"
    ),
    Flow("guard", "traefik", 8000, "web", "the guard forwards to the gateway through traefik"),
    Flow("guard", "hub", 8081, "http", "the guard checks tokens and OAuth at the hub API"),
    Flow("user-server", "traefik", 8786, "tcp", "dask clients reach their schedulers on traefik's TCP port"),
    Flow("traefik", "gateway-api", 8000, "api", "traefik forwards the gateway API"),
    Flow("traefik", "scheduler", 8786, "scheduler", "traefik forwards client connections to schedulers"),
    Flow("traefik", "scheduler", 8787, "dashboard", "dashboards are served through traefik"),
    Flow("gateway-api", "scheduler", 8788, "api", "the gateway manages its schedulers"),
    Flow("scheduler", "gateway-api", 8000, "api", "schedulers report to the gateway API"),
    Flow("worker", "scheduler", 8786, "scheduler", "workers connect to their scheduler"),
    Flow("scheduler", "worker", 40000, "", "the scheduler connects to its workers"),
    Flow("worker", "worker", 40000, "", "workers exchange data"),
    Flow("gateway-api", "hub", 8081, "http", "the gateway checks users' tokens at the hub API"),
    Flow("healthcheck", "proxy", 8000, "http", "the health check goes through the public proxy"),
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
    Flow("other-pod", "healthcheck", 8000, "", "nothing talks to the health check"),
    Flow("healthcheck", "hub", 8081, "http", "the health check uses only the public proxy"),
    Flow("healthcheck", "scheduler", 8786, "scheduler", "the health check uses only the public proxy"),
)


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


def _peer_matches(peer: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False  # other namespaces and IP blocks (private pod IPs are excluded) never match our pods
    return selects(peer.get("podSelector"), labels)


def _port_matches(ports: list[Mapping[str, Any]] | None, flow: Flow) -> bool:
    if not ports:
        return True
    return any(
        p.get("port") in (None, flow.port, flow.port_name) and p.get("protocol", "TCP") == "TCP"
        for p in ports
    )


def _side_allows(
    policies: list[Mapping[str, Any]], direction: str, pod: str, peer: str, flow: Flow
) -> bool | None:
    """None when no policy of ours selects ``pod`` for ``direction``; else whether some rule admits ``peer``."""
    peers_key = "from" if direction == "Ingress" else "to"
    selected = [
        p
        for p in policies
        if direction in (p["spec"].get("policyTypes") or []) and selects(p["spec"]["podSelector"], PODS[pod])
    ]
    if not selected:
        return None
    for policy in selected:
        for rule in policy["spec"].get(direction.lower()) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(x, PODS[peer]) for x in peers)) and _port_matches(
                rule.get("ports"), flow
            ):
                return True
    return False


def allowed(policies: list[Mapping[str, Any]], flow: Flow) -> bool:
    """Whether ``flow`` passes our policies (unselected sides count as open).

    Example:
        >>> allowed([], REQUIRED[0])
        True
    """
    ingress = _side_allows(policies, "Ingress", flow.target, flow.source, flow)
    egress = _side_allows(policies, "Egress", flow.source, flow.target, flow)
    return ingress is not False and egress is not False


def check_network_policies(documents: list[dict[str, Any]], origin: str) -> list[Finding]:
    """Every required flow allowed and every forbidden flow blocked by the rendered NetworkPolicies."""
    policies = [d for d in documents if d.get("kind") == "NetworkPolicy"]
    if not policies:
        return []
    findings = []
    for flow in REQUIRED:
        if not allowed(policies, flow):
            findings.append(Finding(origin, "NetworkPolicy", f"{flow} is blocked, but needed: {flow.why}"))
    for flow in FORBIDDEN:
        if allowed(policies, flow):
            findings.append(
                Finding(origin, "NetworkPolicy", f"{flow} is allowed, but must not be: {flow.why}")
            )
    return findings
