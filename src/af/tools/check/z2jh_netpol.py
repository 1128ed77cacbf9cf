"""The NetworkPolicies Zero to JupyterHub 4.4.0 renders for the hub, the proxy and user servers, from our values.

The subchart's templates cannot be rendered offline (the chart cannot be downloaded), but its three policies
follow a small rule set, read from z2jh 4.4.0's ``templates/{hub,proxy,singleuser}/netpol.yaml`` and
``templates/_helpers-netpol.tpl``: each component's fixed rules (who may reach it, whom it reaches), the
``<component>.networkPolicy.egressAllowRules`` flags (DNS, private and non-private IP ranges, the cloud metadata
server) and the extra ``ingress``/``egress`` rules of the values. Rebuilding them lets the flow contract of
:mod:`af.tools.check.netpol` cover z2jh's pods too, with z2jh's defaults wherever our values say nothing.
``interNamespaceAccessLabels: accept`` only adds peers in other namespaces, which the contract never uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RELEASE = "analysis-facility"
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
METADATA_IP = "169.254.169.254"  # singleuser.cloudMetadata.ip
PATHS = ("hub", "proxy.chp", "singleuser")  # z2jh's components with a NetworkPolicy, in its values
# annotation of a rebuilt policy: the values key it comes from (for messages)
VALUES_KEY = "af.check/values-key"
DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
_ALLOW_ALL = {
    "cloudMetadataServer": True,
    "dnsPortsCloudMetadataServer": True,
    "dnsPortsKubeSystemNamespace": True,
    "dnsPortsPrivateIPs": True,
    "nonPrivateIPs": True,
    "privateIPs": True,
}
# z2jh 4.4.0 values.yaml: `<path>.networkPolicy` defaults; user servers may not reach private IPs or the metadata
DEFAULTS: dict[str, dict[str, Any]] = {
    "hub": {"enabled": True, "egressAllowRules": _ALLOW_ALL, "allowedIngressPorts": []},
    "proxy.chp": {"enabled": True, "egressAllowRules": _ALLOW_ALL, "allowedIngressPorts": ["http", "https"]},
    "singleuser": {
        "enabled": True,
        "egressAllowRules": {**_ALLOW_ALL, "cloudMetadataServer": False, "privateIPs": False},
        "allowedIngressPorts": [],
    },
}


def z2jh_labels(component: str) -> dict[str, str]:
    """The labels z2jh's ``jupyterhub.matchLabels`` gives a component's pods (and selects them by).

    Example:
        >>> z2jh_labels("hub")["component"]
        'hub'
    """
    return {"component": component, "app": "jupyterhub", "release": RELEASE}


def _get(data: Any, *path: str) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, Mapping) else None
    return data


def network_policy(jupyterhub: Mapping[str, Any], path: str) -> dict[str, Any]:
    """``<path>.networkPolicy`` of the jupyterhub values over z2jh's defaults (egressAllowRules merged by key).

    Example:
        >>> network_policy({}, "singleuser")["egressAllowRules"]["privateIPs"]
        False
    """
    given = _get(jupyterhub, *path.split("."), "networkPolicy") or {}
    merged = {**DEFAULTS[path], **given}
    merged["egressAllowRules"] = {
        **DEFAULTS[path]["egressAllowRules"],
        **(given.get("egressAllowRules") or {}),
    }
    return merged


def egress_allow_rules(netpol: Mapping[str, Any], metadata_ip: str) -> list[dict[str, Any]]:
    """The egress rules z2jh's ``jupyterhub.networkPolicy.renderEgressRules`` makes of a networkPolicy's flags
    and its extra ``egress``.

    Example:
        >>> egress_allow_rules({"egressAllowRules": {"privateIPs": True}}, METADATA_IP)[0]["to"][0]
        {'ipBlock': {'cidr': '10.0.0.0/8'}}
    """
    flags = netpol.get("egressAllowRules") or {}
    rules: list[dict[str, Any]] = []
    dns_peers: list[dict[str, Any]] = []
    if flags.get("dnsPortsCloudMetadataServer"):
        dns_peers.append({"ipBlock": {"cidr": f"{metadata_ip}/32"}})
    if flags.get("dnsPortsKubeSystemNamespace"):
        dns_peers.append(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
        )
    if flags.get("dnsPortsPrivateIPs"):
        dns_peers += [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE]
    if dns_peers:
        rules.append({"ports": DNS_PORTS, "to": dns_peers})
    if flags.get("nonPrivateIPs"):
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [*PRIVATE, f"{metadata_ip}/32"]}}]})
    if flags.get("privateIPs"):
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE]})
    if flags.get("cloudMetadataServer"):
        rules.append({"to": [{"ipBlock": {"cidr": f"{metadata_ip}/32"}}]})
    return rules + list(netpol.get("egress") or [])


def _policy(
    name: str,
    path: str,
    component: str,
    netpol: Mapping[str, Any],
    ingress: list[dict[str, Any]],
    egress: list[dict[str, Any]],
    metadata_ip: str,
) -> dict[str, Any]:
    opened = (
        [{"ports": [{"port": p} for p in netpol["allowedIngressPorts"]]}]
        if netpol["allowedIngressPorts"]
        else []
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "annotations": {VALUES_KEY: f"jupyterhub.{path}.networkPolicy"},
        },
        "spec": {
            "podSelector": {"matchLabels": z2jh_labels(component)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [*opened, *ingress, *(netpol.get("ingress") or [])],
            "egress": [*egress, *egress_allow_rules(netpol, metadata_ip)],
        },
    }


def _from_labelled(label: str, port: str) -> dict[str, Any]:
    return {"ports": [{"port": port}], "from": [{"podSelector": {"matchLabels": {label: "true"}}}]}


def _to(component: str, *ports: int) -> dict[str, Any]:
    return {
        "to": [{"podSelector": {"matchLabels": z2jh_labels(component)}}],
        "ports": [{"port": p} for p in ports],
    }


def z2jh_policies(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The NetworkPolicies z2jh would render from the merged values' ``jupyterhub`` (the enabled ones).

    Example:
        >>> [p["metadata"]["name"] for p in z2jh_policies({})]
        ['hub', 'proxy', 'singleuser']
    """
    jupyterhub = values.get("jupyterhub") or {}
    metadata_ip = str(_get(jupyterhub, "singleuser", "cloudMetadata", "ip") or METADATA_IP)
    hub, proxy, user = (network_policy(jupyterhub, p) for p in PATHS)
    policies = [
        ("hub", "hub", hub, [_from_labelled("hub.jupyter.org/network-access-hub", "http")],
         [_to("proxy", 8001), _to("singleuser-server", 8888)]),
        ("proxy", "proxy", proxy,
         [_from_labelled("hub.jupyter.org/network-access-proxy-http", "http"),
          _from_labelled("hub.jupyter.org/network-access-proxy-api", "api")],
         [_to("hub", 8081), _to("singleuser-server", 8888)]),
        ("singleuser", "singleuser-server", user,
         [_from_labelled("hub.jupyter.org/network-access-singleuser", "notebook-port")],
         [_to("hub", 8081), _to("proxy", 8000), _to("autohttps", 8080, 8443)]),
    ]  # fmt: skip
    return [
        _policy(name, path, component, netpol, ingress, egress, metadata_ip)
        for (name, component, netpol, ingress, egress), path in zip(policies, PATHS, strict=True)
        if netpol.get("enabled")
    ]
