"""The hub image starts JupyterHub with hub_config and what the chart renders for it (the jupyterhub_config.d
snippet and settings.yaml of its ConfigMap, mounted where the chart mounts them; the environment variables the
hub's pod gets), read-only root, as uid 1000, its database on a volume; it answers /hub/health through a real
configurable-http-proxy.

Zero to JupyterHub's own jupyterhub_config.py (a subchart file, not downloadable here) is stood in for by the few
lines that matter on one machine: where the hub and the proxy listen, the database on its volume, and running
every jupyterhub_config.d file as z2jh does. The issuer's discovery document is served locally (no network here);
the issuer in the rendered settings is the only value changed.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from af.tools.check.startup import OFFLINE_KUBECONFIG, hub_job
from af.tools.check.wiring import SETTINGS_DIR
from tests.servers.common import free_port, wait_for_port

from .containers import REPO, home_volume, image, remove, run_args

CONFIG_DIR = "/usr/local/etc/jupyterhub"
Z2JH_STAND_IN = """
import glob, os
c.JupyterHub.bind_url = os.environ["TEST_PUBLIC_URL"]
c.JupyterHub.hub_bind_url = os.environ["TEST_HUB_URL"]
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = os.environ["TEST_PROXY_API_URL"]
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
for path in sorted(glob.glob("/usr/local/etc/jupyterhub/jupyterhub_config.d/*.py")):
    exec(compile(open(path).read(), path, "exec"), {"c": c, "__file__": path})
"""


@pytest.fixture
def issuer():
    """An OIDC discovery document on 127.0.0.1 (what hub_config reads at start-up)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    document = json.dumps(
        {"issuer": url, **{f"{k}_endpoint": url + k for k in ("authorization", "token", "userinfo")}}
    ).encode()

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path.endswith("/openid-configuration") else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

    server.RequestHandlerClass = Discovery
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield url
    server.shutdown()


def test_hub_image_starts_jupyterhub_with_the_charts_configuration(rendered, issuer, tmp_path):
    job = hub_job(rendered.merged, rendered.documents(), "defaults", tmp_path)
    config_map = next(d for d in rendered.documents() if "analysis_facility.py" in (d.get("data") or {}))
    settings = yaml.safe_load(config_map["data"]["settings.yaml"])
    settings["auth"]["issuer"] = issuer
    files = {
        f"{CONFIG_DIR}/jupyterhub_config.py": Z2JH_STAND_IN,
        f"{CONFIG_DIR}/jupyterhub_config.d/analysis_facility.py": config_map["data"]["analysis_facility.py"],
        f"{SETTINGS_DIR}/settings.yaml": yaml.safe_dump(settings),
        "/etc/kubeconfig": OFFLINE_KUBECONFIG,
    }
    volumes = []
    for target, text in files.items():
        source = tmp_path / "files" / Path(target).name
        source.parent.mkdir(exist_ok=True)
        source.write_text(text)
        volumes.append(f"{source}:{target}:ro")
    volumes.append(f"{home_volume(tmp_path / 'hub-db')}:/srv/jupyterhub:rw")
    public, hub, api = free_port(), free_port(), free_port()
    env = {
        **{name: value for name, value in job.env.items() if name != "KUBECONFIG"},
        "KUBECONFIG": "/etc/kubeconfig",
        "TEST_PUBLIC_URL": f"http://127.0.0.1:{public}",
        "TEST_HUB_URL": f"http://127.0.0.1:{hub}",
        "TEST_PROXY_API_URL": f"http://127.0.0.1:{api}",
    }
    proxy_log = tmp_path / "proxy.log"
    with proxy_log.open("w") as out:
        proxy = subprocess.Popen(
            [
                str(REPO / "node_modules" / ".bin" / "configurable-http-proxy"),
                *(
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(public),
                    "--api-ip",
                    "127.0.0.1",
                    "--api-port",
                    str(api),
                ),
            ],
            env={"PATH": "/usr/bin:/bin", "CONFIGPROXY_AUTH_TOKEN": env["CONFIGPROXY_AUTH_TOKEN"]},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    container = f"af-test-hub-{uuid.uuid4().hex[:8]}"
    try:
        wait_for_port(api, proxy, log=proxy_log)
        # the host's network: the proxy and the discovery document listen on its loopback
        args = run_args(
            image("hub"),
            home=home_volume(tmp_path / "home"),
            network="host",
            env=env,
            volumes=volumes,
            container=container,
        )
        args.remove("--rm")  # kept after an exit, for its log
        subprocess.run([*args[:2], "--detach", *args[2:]], check=True, capture_output=True)
        health = _wait_for_health(f"http://127.0.0.1:{public}/hub/health", container)
        assert health.status_code == 200
        assert requests.get(f"http://127.0.0.1:{hub}/hub/health", timeout=5).status_code == 200
        login = requests.get(f"http://127.0.0.1:{public}/hub/oauth_login", allow_redirects=False, timeout=5)
        assert login.status_code == 302 and login.headers["Location"].startswith(issuer + "authorization")
        whoami = subprocess.run(["podman", "exec", container, "id", "-u"], capture_output=True, text=True)
        assert whoami.stdout.strip() == "1000"
    finally:
        remove(container)
        proxy.terminate()
        proxy.wait(10)


def _wait_for_health(url: str, container: str, timeout: float = 90) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.ConnectionError:
            pass
        if subprocess.run(["podman", "container", "exists", container]).returncode != 0:
            break
        time.sleep(1)
    logs = subprocess.run(["podman", "logs", container], capture_output=True, text=True)
    pytest.fail(f"{url} did not answer 200 within {timeout} s; the hub's log:\n{logs.stderr[-4000:]}")
