"""The rendered NetworkPolicies against the traffic contract: needed flows open, everything else closed."""

from __future__ import annotations

from af.tools.check.chart import check_chart, render, standalone_copy
from af.tools.check.netpol import FORBIDDEN, METADATA, REQUIRED, allowed, blocking, selects
from af.tools.check.z2jh_netpol import z2jh_policies
from tests.k8s.conftest import edit, errors

TEMPLATE = "charts/analysis-facility/templates/networkpolicies.yaml"
DEFAULTS = "charts/analysis-facility/values.yaml"
ORIGIN = f"{TEMPLATE} (values {DEFAULTS}): NetworkPolicy"


def _policies(repo):
    with standalone_copy(repo) as chart_dir:
        rendered, _ = render(repo, chart_dir, None)
    return [d for d in rendered.documents() if d["kind"] == "NetworkPolicy"], rendered.merged


def _messages(repo, only=DEFAULTS) -> list[str]:
    return [str(f) for f in errors(check_chart(repo, only=[only]))]


def test_contract_holds_for_the_default_values(real_repo) -> None:
    ours, values = _policies(real_repo)
    assert len(ours) == 6  # with the settings-rollout hook's own (API server only)
    policies = ours + z2jh_policies(values)
    assert [str(f) for f in REQUIRED if not allowed(policies, f)] == []
    assert [str(f) for f in (*FORBIDDEN, *METADATA) if allowed(policies, f, pod_ips_in_blocks=True)] == []


def test_the_contract_needs_the_kubernetes_api_for_the_pods_that_watch_it() -> None:
    needs_api = {f.source for f in REQUIRED if f.target == "kube-api"}
    assert needs_api == {"hub", "traefik", "controller", "gateway-api", "user-scheduler"}
    assert {f.port for f in REQUIRED if f.target == "kube-api"} == {443, 6443}


def test_traefik_without_api_egress_fails_the_check(scratch) -> None:
    # the defect of issue 11: traefik (--providers.kubernetescrd) could load no route
    edit(
        scratch.chart / "templates/networkpolicies.yaml",
        """    # its routes: the IngressRoutes the gateway makes per cluster, watched through the Kubernetes API
    {{- include "af.kubeApiEgress" . | nindent 4 }}
""",
        "",
    )
    messages = _messages(scratch)
    for port in (443, 6443):
        assert (
            f"{ORIGIN}: traefik -> kube-api:{port} is blocked by the egress of NetworkPolicy "
            "analysis-facility-gateway-traefik, but needed: --providers.kubernetescrd: traefik reads its "
            "IngressRoutes from the API"
        ) in messages, messages


def test_the_api_server_narrowed_to_its_address(scratch) -> None:
    edit(scratch.chart / "values.yaml", "    cidrs: []\n", "    cidrs: [192.168.1.10/32]\n")
    ours, _ = _policies(scratch)
    traefik = next(p for p in ours if p["metadata"]["name"] == "analysis-facility-gateway-traefik")
    assert {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "192.168.1.10/32"}}]} in traefik["spec"]["egress"]  # fmt: skip
    assert _messages(scratch) == []
    # the gateway API server's rule is the same template: a wrong address in it would block the flow
    edit(scratch.chart / "templates/_helpers.tpl", "cidr: {{ . }}", "cidr: 10.0.0.0/32")
    messages = _messages(scratch)
    assert any(m.startswith(f"{ORIGIN}: gateway-api -> kube-api:443 is blocked") for m in messages), messages


def test_z2jh_policies_are_part_of_the_contract(scratch) -> None:
    # z2jh's hub policy (rebuilt from the values) must let the hub reach the guard: drop our extra egress rule
    edit(
        scratch.chart / "values.yaml",
        """    networkPolicy:
      egress:
        # hub_config stops a user's clusters when their server stops, through the gateway's service URL
        - to:
            - podSelector:
                matchLabels:
                  app.kubernetes.io/name: analysis-facility
                  app.kubernetes.io/component: dashboard-guard
""",
        """    networkPolicy:
      egress: []
""",
    )
    assert (
        f"{ORIGIN}: hub -> guard:8788 is blocked by the egress of NetworkPolicy hub (z2jh's, from "
        "jupyterhub.hub.networkPolicy), but needed: hub_config stops a user's clusters through the gateway's "
        "service URL"
    ) in _messages(scratch)


def test_z2jh_default_rules_in_the_rebuilt_policies() -> None:
    policies = z2jh_policies({})
    assert [p["metadata"]["name"] for p in policies] == ["hub", "proxy", "singleuser"]
    user_to_metadata = next(f for f in METADATA if f.source == "user-server")
    assert blocking(policies, user_to_metadata, pod_ips_in_blocks=True) == (
        "egress of NetworkPolicy singleuser (z2jh's, from jupyterhub.singleuser.networkPolicy)"
    )
    opened = z2jh_policies(
        {"jupyterhub": {"singleuser": {"networkPolicy": {"egressAllowRules": {"cloudMetadataServer": True}}}}}
    )
    assert allowed(opened, user_to_metadata)


def test_without_policies_everything_is_open() -> None:
    assert all(allowed([], f) for f in FORBIDDEN)


def test_selector_semantics() -> None:
    labels = {"app.kubernetes.io/component": "dask-worker", "app.kubernetes.io/name": "dask-gateway"}
    assert selects({"matchLabels": {"app.kubernetes.io/name": "dask-gateway"}}, labels)
    assert not selects({"matchLabels": {"app.kubernetes.io/name": "other"}}, labels)
    expr = {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["dask-worker"]}
    assert not selects({"matchExpressions": [expr]}, labels)
    assert selects({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels)
    assert selects({}, labels)


def test_a_closed_needed_flow_fails_the_check(scratch) -> None:
    # a wrong label: z2jh's user pods are `component: singleuser-server`
    edit(
        scratch.chart / "templates/networkpolicies.yaml",
        "              component: singleuser-server\n",
        "              component: singleuser\n",
    )
    messages = _messages(scratch)
    assert any(m.startswith(f"{ORIGIN}: user-server -> traefik:8786 is blocked") for m in messages), messages


def test_an_opened_forbidden_flow_fails_the_check(scratch) -> None:
    # the gateway API admitting any pod
    edit(
        scratch.chart / "templates/networkpolicies.yaml",
        """  ingress:
    - from:
        - podSelector:
            matchLabels:
              {{- include "af.gatewaySelector" "traefik" | nindent 14 }}
        - podSelector:
            matchLabels:
              {{- include "af.gatewaySelector" "dask-scheduler" | nindent 14 }}
  egress:
    # the hub API""",
        """  ingress:
    - {}
  egress:
    # the hub API""",
    )
    messages = _messages(scratch)
    assert any("other-pod -> gateway-api:8000 is allowed, but must not be" in m for m in messages), messages
