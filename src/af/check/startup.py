"""The hub's start-up configuration, run for real with what the chart gives the hub pod.

The ``jupyterhub_config.d`` snippet the chart mounts is executed in a separate Python process whose environment
holds exactly the variables the hub container gets from the values (``jupyterhub.hub.extraEnv`` and those
Zero to JupyterHub always sets), with placeholder values, and whose settings file is the ``settings.yaml`` of the
rendered ConfigMap. Only the issuer's discovery document is answered locally (no network here). A variable that
hub_config needs but the chart does not provide fails here instead of in a crash-looping hub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from af.check.findings import Finding
from af.check.wiring import SETTINGS_DIR, _env_entries, _get

# set by z2jh's hub Deployment itself, whatever the values say
Z2JH_HUB_ENV = ("PYTHONUNBUFFERED", "HELM_RELEASE_NAME", "POD_NAMESPACE", "CONFIGPROXY_AUTH_TOKEN")

_RUNNER = r"""
import json, sys
from traitlets.config import Config
import hub_config.auth

args = json.loads(sys.argv[1])
issuer = args["issuer"].rstrip("/")
hub_config.auth.discover_endpoints = lambda *a, **k: {
    "authorization_endpoint": issuer + "/authorize",
    "token_endpoint": issuer + "/token",
    "userinfo_endpoint": issuer + "/userinfo",
}
c = Config()
snippet = args["snippet"]
exec(compile(snippet, args["snippet_name"], "exec"), {"c": c, "__name__": "__config__"})
services = c.JupyterHub.services if "services" in c.JupyterHub else []
print(json.dumps({
    "spawner_class": str(c.JupyterHub.spawner_class),
    "authenticator_class": str(c.JupyterHub.authenticator_class),
    "services": {s["name"]: s.get("url") for s in services},
}))
"""


def check_hub_startup(
    values: Mapping[str, Any], documents: list[dict[str, Any]], blame: str
) -> list[Finding]:
    """Run the rendered snippet with the rendered settings and the hub's environment; findings on failure."""
    cm = next(
        (
            d
            for d in documents
            if d.get("kind") == "ConfigMap" and "analysis_facility.py" in (d.get("data") or {})
        ),
        None,
    )
    if cm is None:
        return [Finding(blame, "settings", "no ConfigMap with the jupyterhub_config.d snippet was rendered")]
    env_names = [str(n) for n in _env_entries(_get(values, "jupyterhub", "hub", "extraEnv"))]
    with tempfile.TemporaryDirectory(prefix="af-hub-") as tmp:
        settings_path = Path(tmp) / "settings.yaml"
        settings_path.write_text(cm["data"]["settings.yaml"])
        snippet = cm["data"]["analysis_facility.py"].replace(
            f"{SETTINGS_DIR}/settings.yaml", str(settings_path)
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
        env.update({name: "0" * 64 for name in (*Z2JH_HUB_ENV, *env_names)})
        args = {
            "issuer": str(_get(values, "settings", "auth", "issuer") or "https://issuer.invalid"),
            "snippet": snippet,
            "snippet_name": "jupyterhub_config.d/analysis_facility.py",
        }
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER, json.dumps(args)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return [
            Finding(
                blame,
                "jupyterhub.hub.extraEnv",
                f"the hub's configuration fails with the environment the chart gives it: {last}",
            )
        ]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    findings = []
    if result["spawner_class"] != "kubespawner.KubeSpawner":
        findings.append(
            Finding(blame, "settings.platform", f"spawner is {result['spawner_class']}, not KubeSpawner")
        )
    gateway_url = _get(values, "settings", "gateway", "service_url")
    if result["services"].get("dask-gateway") != gateway_url:
        findings.append(
            Finding(
                blame,
                "settings.gateway.service_url",
                f"hub service dask-gateway points at {result['services'].get('dask-gateway')!r}, not {gateway_url!r}",
            )
        )
    return findings
