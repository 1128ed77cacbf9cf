"""The ServiceX Deployment's command, parsed by the service's own parser with what the pod would have.

``python -m af.servicex`` in the rendered Deployment is parsed by `af.servicex.__main__.parse_args` with the
pod's environment (each variable the container sets, with a placeholder value: the Secrets are not here) and the
settings.yaml the chart renders at the path the container mounts it: a missing variable (S3 identity, hub token),
a settings file not mounted where --settings reads it, an option the service does not know, or a CA bundle for
rucio (settings.servicex.rucio_ca_cert) where no volume is mounted fail offline.

Example:
    >>> check_servicex_command([], "templates (values v.yaml)")
    []
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

from af.tools.check.findings import Finding

MODULE = "af.servicex"
SETTINGS_OPTION = "--settings="


def _settings_text(documents: list[dict[str, Any]], volumes: dict[str, Any], mount_path: str, mounts) -> str:
    """The text the container finds at `mount_path` (a ConfigMap key the chart renders), or ''."""
    for mount in mounts:
        if mount.get("mountPath") != mount_path:
            continue
        config_map = (volumes.get(mount.get("name")) or {}).get("configMap") or {}
        for doc in documents:
            if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == config_map.get("name"):
                return (doc.get("data") or {}).get(mount.get("subPath", ""), "")
    return ""


def _parse(argv: list[str], environ: dict[str, str]) -> tuple[argparse.Namespace | None, str]:
    """(the options, '') when the service's parser accepts `argv` with `environ`, else (None, its error line)."""
    from af.servicex.__main__ import parse_args

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return parse_args(argv, environ), ""
    except SystemExit:
        return None, (errors.getvalue().strip().splitlines() or ["rejected"])[-1]


def _unmounted_files(args: argparse.Namespace, mounts: list[dict[str, Any]]) -> list[str]:
    """The files the options name (the CA bundle for rucio) that no volume of the container provides: the root
    file system is the image's, which has none of the admin's."""
    paths = {"--rucio-ca-cert": args.rucio_ca_cert}
    return [
        f"{option}={path}: no volume is mounted there (servicex.rucioCa)"
        for option, path in paths.items()
        if path
        and not any(
            path == m.get("mountPath") or path.startswith(m.get("mountPath", "").rstrip("/") + "/")
            for m in mounts
        )
    ]


def check_servicex_command(documents: list[dict[str, Any]], origin: str) -> list[Finding]:
    """Each container running ``python -m af.servicex`` starts as far as its options go (see the module)."""
    findings = []
    for doc in documents:
        if doc.get("kind") != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for container in pod.get("containers") or []:
            argv = [*(container.get("command") or []), *(container.get("args") or [])]
            if argv[:3] != ["python", "-m", MODULE]:
                continue
            where = f"Deployment {doc['metadata']['name']}: container {container.get('name')}"
            environ = {e["name"]: "placeholder" for e in container.get("env") or [] if "name" in e}
            options = argv[3:]
            with tempfile.TemporaryDirectory(prefix="af-servicex-check-") as tmp:
                for i, option in enumerate(options):
                    if not option.startswith(SETTINGS_OPTION):
                        continue
                    path = option[len(SETTINGS_OPTION) :]
                    text = _settings_text(documents, volumes, path, container.get("volumeMounts") or [])
                    if not text:
                        findings.append(
                            Finding(
                                origin, where, f"{option}: no settings.yaml of the chart is mounted there"
                            )
                        )
                        break
                    local = Path(tmp) / "settings.yaml"
                    local.write_text(text)
                    options[i] = f"{SETTINGS_OPTION}{local}"
                else:
                    args, error = _parse(options, environ)
                    if error:
                        findings.append(Finding(origin, where, f"`{' '.join(argv)}`: {error}"))
                    if args is not None:
                        mounts = container.get("volumeMounts") or []
                        findings += [Finding(origin, where, p) for p in _unmounted_files(args, mounts)]
    return findings
