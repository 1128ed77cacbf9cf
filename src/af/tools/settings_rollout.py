"""Roll Deployments that read the facility settings once at start-up when the settings change.

z2jh's hub and dask-gateway's API server read ``analysis-facility-settings`` only at start, and the parent chart
cannot template their pod annotations. The chart's post-upgrade hook Job runs this module: it writes
the settings' checksum as the pod-template annotation ``analysis-facility/settings-checksum`` of each Deployment.
Same checksum: nothing is patched, nothing restarts; a new checksum: Kubernetes rolls the Deployment.

Example (inside the hook's pod, with its service account)::

    python -m af.tools.settings_rollout --checksum 3f1c... hub api-dask-gateway
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ANNOTATION = "analysis-facility/settings-checksum"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_URL = "https://kubernetes.default.svc"


class RolloutError(RuntimeError):
    """The API refused to read or patch a Deployment (the message names it)."""


@dataclass(frozen=True)
class Api:
    """Just enough of the Kubernetes API: GET and strategic-merge PATCH of a namespace's Deployments."""

    namespace: str
    request: Callable[[str, str, bytes | None], tuple[int, dict]]

    def _path(self, name: str) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}"

    def get(self, name: str) -> tuple[int, dict]:
        return self.request("GET", self._path(name), None)

    def patch(self, name: str, body: dict) -> tuple[int, dict]:
        return self.request("PATCH", self._path(name), json.dumps(body).encode())


def in_cluster_api(base_url: str = API_URL, account: Path = SERVICE_ACCOUNT) -> Api:
    """The API as the pod's service account sees it (token, CA and namespace mounted by Kubernetes)."""
    token = (account / "token").read_text().strip()
    context = ssl.create_default_context(cafile=str(account / "ca.crt"))

    def request(method: str, path: str, body: bytes | None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/strategic-merge-patch+json"
        req = urllib.request.Request(base_url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=context, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, {"message": error.read().decode(errors="replace")}

    return Api((account / "namespace").read_text().strip(), request)


def roll(api: Api, names: list[str], checksum: str, log: Callable[[str], None] = print) -> list[str]:
    """Set the settings checksum on each existing Deployment in ``names``; return the ones patched (rolled).

    A Deployment that does not exist is skipped with a log line (a chart with a subchart switched off);
    any other refusal raises :class:`RolloutError` naming the Deployment and the namespace.
    """
    patched = []
    for name in names:
        where = f"Deployment {api.namespace}/{name}"
        status, body = api.get(name)
        if status == 404:
            log(f"{where}: not found, skipped (its subchart is off?)")
            continue
        if status != 200:
            raise RolloutError(f"{where}: reading it failed with HTTP {status}: {body.get('message', body)}")
        current = body["spec"]["template"]["metadata"].get("annotations", {}).get(ANNOTATION)
        if current == checksum:
            log(f"{where}: settings unchanged ({checksum[:12]}), not restarted")
            continue
        patch = {"spec": {"template": {"metadata": {"annotations": {ANNOTATION: checksum}}}}}
        status, body = api.patch(name, patch)
        if status != 200:
            raise RolloutError(
                f"{where}: patching {ANNOTATION} failed with HTTP {status}: {body.get('message', body)}"
            )
        log(f"{where}: settings changed ({current or 'none'} -> {checksum[:12]}), rolling it")
        patched.append(name)
    return patched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checksum", required=True, help="sha256 of the rendered settings.yaml")
    parser.add_argument("deployments", nargs="+", help="names of Deployments in the pod's namespace")
    args = parser.parse_args(argv)
    try:
        roll(in_cluster_api(), args.deployments, args.checksum)
    except RolloutError as error:
        print(f"settings rollout: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
