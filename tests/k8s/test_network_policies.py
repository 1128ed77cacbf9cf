"""The rendered NetworkPolicies against the traffic contract: needed flows open, everything else closed."""

from __future__ import annotations

from af.tools.check.chart import check_chart, render, standalone_copy
from af.tools.check.netpol import FORBIDDEN, REQUIRED, allowed, selects
from tests.k8s.conftest import edit, errors

TEMPLATE = "charts/analysis-facility/templates/networkpolicies.yaml"


def _policies(repo):
    with standalone_copy(repo) as chart_dir:
        rendered, _ = render(repo, chart_dir, None)
    return [d for d in rendered.documents() if d["kind"] == "NetworkPolicy"]


def test_contract_holds_for_the_default_values(real_repo) -> None:
    policies = _policies(real_repo)
    assert len(policies) == 5
    assert [str(f) for f in REQUIRED if not allowed(policies, f)] == []
    assert [str(f) for f in FORBIDDEN if allowed(policies, f)] == []


def test_without_policies_everything_is_open(real_repo) -> None:
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
    messages = [str(f) for f in errors(check_chart(scratch, only=["charts/analysis-facility/values.yaml"]))]
    assert any(
        m.startswith(
            f"{TEMPLATE} (values charts/analysis-facility/values.yaml): NetworkPolicy: user-server -> traefik:8786 is blocked"
        )
        for m in messages
    ), messages


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
    messages = [str(f) for f in errors(check_chart(scratch, only=["charts/analysis-facility/values.yaml"]))]
    assert any("other-pod -> gateway-api:8000 is allowed, but must not be" in m for m in messages), messages
