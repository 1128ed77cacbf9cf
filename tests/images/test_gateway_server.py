"""The dask-gateway server starts from the hub image (uid 1000, read-only root, no network) with the gateway
configuration of the chart: the values' ``gateway.extraConfig`` after what the dask-gateway chart's own config file
sets before it (the Kubernetes backend, hub authentication, ``get_property`` over the ``gateway`` values), and the
environment ``gateway.env`` gives (the rendered settings ConfigMap).

No Kubernetes API exists here: the server is expected to load the facility's authenticator and backend, start its
cluster informer and keep retrying the API named by its kubeconfig, and to fail on nothing else.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from af.tools.check.startup import GATEWAY_CHART_PRELUDE, GATEWAY_VALUES_ENV, OFFLINE_KUBECONFIG, gateway_job

from .containers import home_volume, image, remove, run_args

# the chart's own configuration, then what its deployment sets (traefik manages the proxy, the instance is named
# after the release: fullnameOverride dask-gateway)
CHART_PRELUDE = (
    GATEWAY_CHART_PRELUDE
    + """
c.Proxy.externally_managed = True
c.KubeBackend.gateway_instance = "dask-gateway"
"""
)
EXPECTED = (
    "Authenticator: 'af.gateway.server_config.FacilityHubAuthenticator'",
    "Backend: 'af.gateway.limits.LimitedKubeBackend'",
    # the informer of the Kubernetes backend started, and retries the API of the kubeconfig
    "Error in cluster informer, retrying",
)


def test_gateway_server_starts_from_the_hub_image_with_the_charts_config(rendered, tmp_path):
    job = gateway_job(rendered.merged, rendered.documents(), "defaults")
    config = tmp_path / "dask_gateway_config.py"
    config.write_text(CHART_PRELUDE + "\n".join(job.payload["extra_config"].values()))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(OFFLINE_KUBECONFIG)
    env = {
        **job.env,
        GATEWAY_VALUES_ENV: json.dumps(job.payload["gateway"]),
        "KUBECONFIG": "/etc/kubeconfig",
    }
    container = f"af-test-gateway-{uuid.uuid4().hex[:8]}"
    args = run_args(
        image("hub"),
        home=home_volume(tmp_path / "home"),
        env=env,
        volumes=[f"{config}:/etc/dask-gateway/dask_gateway_config.py:ro", f"{kubeconfig}:/etc/kubeconfig:ro"],
        container=container,
    )
    args.remove("--rm")  # kept after an exit, for its log
    command = ["dask-gateway-server", "--config", "/etc/dask-gateway/dask_gateway_config.py"]
    try:
        subprocess.run([*args[:2], "--detach", *args[2:], *command], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = subprocess.run(["podman", "logs", container], capture_output=True, text=True).stderr
            if all(line in log for line in EXPECTED) and "Cannot connect to host 127.0.0.1:9" in log:
                break
            if "Stopped successfully" in log or "exited" in log:
                pytest.fail(f"the gateway server exited; its log:\n{log[-4000:]}")
            time.sleep(1)
        else:
            pytest.fail(f"the gateway server did not reach the Kubernetes API; its log:\n{log[:3000]}")
        time.sleep(3)
        state = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Running}}", container], capture_output=True, text=True
        )
        log = subprocess.run(["podman", "logs", container], capture_output=True, text=True).stderr
    finally:
        remove(container)
    assert state.stdout.strip() == "true", f"the gateway server exited:\n{log[-4000:]}"
    errors = [
        line
        for line in log.splitlines()
        if "Error" in line and not line.lstrip().startswith(("File", "raise"))
    ]
    unexpected = [e for e in errors if "informer" not in e and "127.0.0.1" not in e and "Connect" not in e]
    assert unexpected == [], "\n".join(unexpected[:10])
