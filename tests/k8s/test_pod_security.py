"""User pods pass Pod Security "baseline" unless the admin opts out; the cloud metadata server stays closed."""

from __future__ import annotations

from af.tools.check.chart import check_chart
from af.tools.check.pod_security import baseline_violations
from tests.k8s.conftest import edit, errors

DEFAULTS = "charts/analysis-facility/values.yaml"
NO_NETPOL = "charts/analysis-facility/examples/hub-behind-ingress-no-netpol.yaml"


def _messages(repo, only: str) -> list[str]:
    return [str(f) for f in errors(check_chart(repo, only=[only]))]


def test_z2jh_iptables_block_fails_baseline(scratch) -> None:
    # z2jh's default: a privileged root init container with NET_ADMIN in every user pod
    edit(scratch.chart / "values.yaml", "      blockWithIptables: false\n", "      blockWithIptables: true\n")
    messages = _messages(scratch, DEFAULTS)
    prefix = (
        f"{DEFAULTS}: jupyterhub.singleuser.cloudMetadata.blockWithIptables: user pods break Pod Security "
        "'baseline' (podSecurity.enforce): initContainers[block-cloud-metadata]"
    )
    assert f"{prefix} is privileged" in messages, messages
    assert f"{prefix} adds capabilities ['NET_ADMIN'] beyond the baseline set" in messages, messages


def test_opting_out_is_explicit(scratch) -> None:
    # the no-NetworkPolicy example keeps the iptables block and opts out; without the opt-out it fails
    assert _messages(scratch, NO_NETPOL) == []
    edit(
        scratch.chart / "examples/hub-behind-ingress-no-netpol.yaml",
        "podSecurity:\n  enforce: privileged",
        "podSecurity:\n  enforce: baseline",
    )
    assert any(
        m.startswith(f"{NO_NETPOL}: jupyterhub.singleuser.cloudMetadata.blockWithIptables: user pods break")
        for m in _messages(scratch, NO_NETPOL)
    )


def test_other_singleuser_settings_that_break_baseline_are_named(scratch) -> None:
    edit(
        scratch.chart / "values.yaml",
        "      blockWithIptables: false\n",
        "      blockWithIptables: false\n"
        "    storage:\n      extraVolumes: [{name: host, hostPath: {path: /data}}]\n"
        "    extraPodConfig: {hostNetwork: true}\n",
    )
    messages = _messages(scratch, DEFAULTS)
    prefix = (
        f"{DEFAULTS}: jupyterhub.singleuser: user pods break Pod Security 'baseline' (podSecurity.enforce)"
    )
    assert f"{prefix}: spec.hostNetwork is true" in messages, messages
    assert f"{prefix}: volume 'host' is a hostPath" in messages, messages


def test_metadata_server_must_stay_closed_without_iptables(scratch) -> None:
    edit(
        scratch.root / NO_NETPOL,
        "    cloudMetadata:\n      blockWithIptables: true\n",
        "    cloudMetadata:\n      blockWithIptables: false\n",
    )
    messages = _messages(scratch, NO_NETPOL)
    assert any(
        "NetworkPolicy: user-server -> metadata:80 is allowed, but must not be" in m
        and "jupyterhub.singleuser.cloudMetadata.blockWithIptables is off" in m
        for m in messages
    ), messages


def test_baseline_rules() -> None:
    ok = {"spec": {"containers": [{"name": "n", "securityContext": {"capabilities": {"add": ["CHOWN"]}}}]}}
    assert baseline_violations(ok) == []
    bad = {
        "spec": {
            "hostPID": True,
            "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
            "containers": [
                {
                    "name": "n",
                    "ports": [{"containerPort": 80, "hostPort": 80}],
                    "securityContext": {"procMount": "Unmasked", "seccompProfile": {"type": "Unconfined"}},
                }
            ],
        }
    }
    assert baseline_violations(bad) == [
        "spec.hostPID is true",
        "spec.securityContext.sysctls 'kernel.msgmax' is not a safe sysctl",
        "containers[n].securityContext.seccompProfile is Unconfined",
        "containers[n].securityContext.procMount is 'Unmasked'",
        "containers[n] uses hostPort 80",
    ]
