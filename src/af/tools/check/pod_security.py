"""The Pod Security Standards' "baseline" profile, checked on a pod offline.

A namespace labelled ``pod-security.kubernetes.io/enforce: baseline`` (or ``restricted``, which includes it)
rejects a pod that breaks any of these rules (https://kubernetes.io/docs/concepts/security/pod-security-standards/,
"Baseline"): host namespaces, privileged containers, capabilities beyond the default set, hostPath volumes, host
ports, SELinux types and users, /proc mount, seccomp ``Unconfined``, unsafe sysctls, AppArmor ``unconfined``,
Windows HostProcess.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

BASELINE_CAPABILITIES = frozenset(
    [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
)
SAFE_SYSCTLS = frozenset(
    [
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ]
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind in CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            yield f"{kind}[{container.get('name', '?')}]", container


def _context_violations(where: str, ctx: Mapping[str, Any], with_container_fields: bool) -> Iterator[str]:
    se = ctx.get("seLinuxOptions") or {}
    if se.get("type", "") not in SELINUX_TYPES:
        yield f"{where}.securityContext.seLinuxOptions.type {se['type']!r} is not allowed"
    for field in ("user", "role"):
        if se.get(field):
            yield f"{where}.securityContext.seLinuxOptions.{field} may not be set"
    if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield f"{where}.securityContext.seccompProfile is Unconfined"
    if (ctx.get("appArmorProfile") or {}).get("type") == "Unconfined":
        yield f"{where}.securityContext.appArmorProfile is Unconfined"
    if (ctx.get("windowsOptions") or {}).get("hostProcess"):
        yield f"{where}.securityContext.windowsOptions.hostProcess is true"
    if not with_container_fields:
        return
    if ctx.get("privileged"):
        yield f"{where} is privileged"
    extra = sorted(set((ctx.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES)
    if extra:
        yield f"{where} adds capabilities {extra} beyond the baseline set"
    if ctx.get("procMount", "Default") != "Default":
        yield f"{where}.securityContext.procMount is {ctx['procMount']!r}"


def baseline_violations(pod: Mapping[str, Any]) -> list[str]:
    """What in ``pod`` (a Pod manifest) the Pod Security "baseline" profile forbids; empty when it passes.

    Example:
        >>> baseline_violations({"spec": {"hostNetwork": True, "containers": [
        ...     {"name": "a", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}})
        ['spec.hostNetwork is true', "containers[a] adds capabilities ['NET_ADMIN'] beyond the baseline set"]
    """
    spec = pod.get("spec") or {}
    out = [f"spec.{field} is true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    out += [f"volume {v.get('name')!r} is a hostPath" for v in spec.get("volumes") or [] if "hostPath" in v]
    out += [
        f"spec.securityContext.sysctls {s.get('name')!r} is not a safe sysctl"
        for s in (spec.get("securityContext") or {}).get("sysctls") or []
        if s.get("name") not in SAFE_SYSCTLS
    ]
    out += list(_context_violations("spec", spec.get("securityContext") or {}, with_container_fields=False))
    for where, container in _containers(spec):
        out += list(
            _context_violations(where, container.get("securityContext") or {}, with_container_fields=True)
        )
        out += [
            f"{where} uses hostPort {p['hostPort']}"
            for p in container.get("ports") or []
            if p.get("hostPort")
        ]
    return out
