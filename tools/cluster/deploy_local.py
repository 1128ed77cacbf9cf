"""The whole chart (our objects, Zero to JupyterHub and dask-gateway) on the cluster of `make cluster`, with the
images of `make images` and a development OpenID provider standing in for ATLAS IAM: `make deploy-local`.

    python tools/cluster/deploy_local.py up [--subcharts DIR] [-f values.yaml]   # install or upgrade
    python tools/cluster/deploy_local.py down                                    # uninstall, stop the provider

The subcharts come from `helm dependency update` where the network allows, or from the folder `--subcharts` (or
AF_SUBCHARTS) names, holding `jupyterhub/` (Zero to JupyterHub 4.4.0) and `dask-gateway/` (2026.3.0), unpacked
or as `<name>-<version>.tgz` (what `helm pull` writes). Without either, `up` says so and exits 2.

What differs from a site's deployment, and why (charts/analysis-facility/examples/local-cluster.yaml holds the
values):
- IAM is the development provider of `make up`, run in the node's network namespace on the node's address. Its
  issuer is ``http://iam.facility.test:15557``: pods resolve that name to the node (the hub's hostAliases), the
  host's browser to 127.0.0.1, where the port is forwarded; so the issuer is the same for both.
- The public proxy is forwarded to the host's 127.0.0.1:18080 (there is no load balancer).
- Images the registries would give are built here: configurable-http-proxy (`tools/images/build.py proxy`),
  traefik (tools/cluster/build.sh); dask-gateway's controller runs our hub image, which carries the same
  dask-gateway-server release. Image pullers and the user scheduler are off (nothing to pull, one node).
- The example PHYSLITE files are a read-only hostPath volume of users' servers and dask workers.
Accounts of the provider (random passwords, build/cluster/deploy-local/accounts.json, mode 600): alice (atlas),
admin (atlas, atlas/af-admins), outsider (cms).

Example:
    $ make cluster && make images && AF_SUBCHARTS=~/subcharts make deploy-local
    deploy-local: http://127.0.0.1:18080 (IAM http://iam.facility.test:15557; accounts in .../accounts.json)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart as facility_chart  # tools/cluster is a script folder, not a package

REPO = facility_chart.REPO
CHART = REPO / "charts" / "analysis-facility"
LOCAL_VALUES = CHART / "examples" / "local-cluster.yaml"
STATE = REPO / "build" / "cluster" / "deploy-local"
NAMESPACE = "facility"
RELEASE = "analysis-facility"
NETNS = os.environ.get("CLUSTER_NETNS", "physlite-cluster")
NODE_IP = "10.201.0.1"  # tools/cluster/lib.sh NODE_IP
ISSUER_HOST = "iam.facility.test"
OIDC_PORT = 15557
PUBLIC_PORT = 18080
CLIENT_ID = "analysis-facility"
DATA_MOUNT = "/srv/physlite-examples"
DATA_PV = "facility-physlite-examples"
ACCOUNTS = {"alice": ["atlas"], "admin": ["atlas", "atlas/af-admins"], "outsider": ["cms"]}
SUBCHART_VERSIONS = {"jupyterhub": "4.4.0", "dask-gateway": "2026.3.0"}
CLUSTER_BIN = REPO / "build" / "cluster"  # kubectl; nsforward is next to it in the build cache


class DeployError(RuntimeError):
    """What stops the deployment, naming the file, folder or setting at fault."""


def issuer() -> str:
    """The development provider's issuer URL, the same inside the cluster and on the host."""
    return f"http://{ISSUER_HOST}:{OIDC_PORT}"


def public_url() -> str:
    """The public proxy as the host's browser reaches it."""
    return f"http://127.0.0.1:{PUBLIC_PORT}"


def subcharts_folder(given: str | None) -> Path | None:
    """The folder holding the subcharts (argument, else AF_SUBCHARTS), checked; None when neither is set.

    Example:
        >>> subcharts_folder(None) if "AF_SUBCHARTS" not in os.environ else None
    """
    name = given or os.environ.get("AF_SUBCHARTS")
    if not name:
        return None
    folder = Path(name).expanduser()
    for chart_name, version in SUBCHART_VERSIONS.items():
        unpacked = folder / chart_name / "Chart.yaml"
        packed = folder / f"{chart_name}-{version}.tgz"
        if packed.is_file():
            continue
        if not unpacked.is_file():
            raise DeployError(f"{folder}: neither {chart_name}/Chart.yaml nor {packed.name} (AF_SUBCHARTS)")
        found = yaml.safe_load(unpacked.read_text()).get("version")
        if found != version:
            raise DeployError(f"{unpacked}: version {found}, the chart requires {chart_name} {version}")
    return folder


def subchart_file(subcharts: Path, chart_name: str, member: str) -> str | None:
    """The text of `member` (a path inside the chart) of subchart `chart_name` in the folder `subcharts_folder`
    returned, from its unpacked folder or its .tgz; None when that chart has no such file.

    Example:
        >>> subchart_file(Path("/nonexistent"), "dask-gateway", "crds/daskclusters.yaml") is None
        True
    """
    unpacked = subcharts / chart_name / member
    if unpacked.is_file():
        return unpacked.read_text()
    packed = subcharts / f"{chart_name}-{SUBCHART_VERSIONS[chart_name]}.tgz"
    if not packed.is_file():
        return None
    with tarfile.open(packed) as archive:
        try:
            extracted = archive.extractfile(f"{chart_name}/{member}")
        except KeyError:
            return None
        return extracted.read().decode() if extracted else None


@contextlib.contextmanager
def whole_chart(subcharts: Path | None) -> Iterator[Path]:
    """A copy of the chart with its subcharts in charts/: from `subcharts`, else `helm dependency update`."""
    with tempfile.TemporaryDirectory(prefix="af-whole-chart-") as tmp:
        copy = Path(tmp) / CHART.name
        shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("charts"))
        (copy / "charts").mkdir()
        if subcharts is None:
            try:
                helm_python.dependency_update(copy)
            except helm_python.HelmError as err:
                raise DeployError(
                    "the subcharts (jupyterhub 4.4.0, dask-gateway 2026.3.0) cannot be downloaded here "
                    f"({str(err).splitlines()[0][:200]}); set AF_SUBCHARTS to a folder holding them"
                ) from err
        else:
            for chart_name, version in SUBCHART_VERSIONS.items():
                packed = subcharts / f"{chart_name}-{version}.tgz"
                if packed.is_file():
                    with tarfile.open(packed) as archive:
                        archive.extractall(copy / "charts", filter="data")
                else:
                    shutil.copytree(subcharts / chart_name, copy / "charts" / chart_name)
        yield copy


def local_values() -> dict[str, Any]:
    """The values of examples/local-cluster.yaml with the addresses of this machine filled in."""
    values = yaml.safe_load(LOCAL_VALUES.read_text())
    settings = values.setdefault("settings", {})
    settings.setdefault("hub", {})["public_url"] = public_url()
    settings.setdefault("auth", {})["issuer"] = issuer()
    return values


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, mappings merged key by key (as helm merges values files).

    Example:
        >>> merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
        {'a': {'b': 1, 'c': 3}}
    """
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Daemons:
    """The provider and the forwards: processes that outlive `up`, with pid files in build/cluster/deploy-local."""

    def __init__(self, folder: Path = STATE) -> None:
        self.folder = folder
        (folder / "pids").mkdir(parents=True, exist_ok=True)
        (folder / "logs").mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> None:
        """Start `command` in a session of its own unless the one of that name runs."""
        if self.running(name):
            return
        log = (self.folder / "logs" / f"{name}.log").open("w")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        (self.folder / "pids" / name).write_text(str(process.pid))

    def running(self, name: str) -> bool:
        pid_file = self.folder / "pids" / name
        if not pid_file.is_file():
            return False
        try:
            os.kill(int(pid_file.read_text()), 0)
        except (ProcessLookupError, ValueError):
            return False
        return True

    def stop(self, name: str) -> None:
        """Stop the process of that name (and its session), if it runs."""
        pid_file = self.folder / "pids" / name
        if pid_file.is_file():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            pid_file.unlink()

    def stop_all(self) -> None:
        for pid_file in (self.folder / "pids").iterdir():
            self.stop(pid_file.name)


def nsforward() -> Path:
    """The nsforward program of the cluster's build (next to the kubectl up.sh links)."""
    return (CLUSTER_BIN / "kubectl").resolve().parent / "nsforward"


def forward(host_port: int, inside: str) -> list[str]:
    """The command forwarding the host's 127.0.0.1:`host_port` to `inside` in the node's network namespace."""
    return [
        str(nsforward()),
        "-listen",
        f"127.0.0.1:{host_port}",
        "-netns",
        f"/run/netns/{NETNS}",
        "-to",
        inside,
    ]


def accounts() -> dict[str, str]:
    """The provider's accounts (name -> password), made once and kept in accounts.json (mode 600)."""
    path = STATE / "accounts.json"
    if path.is_file():
        return json.loads(path.read_text())
    made = {name: secrets.token_urlsafe(12) for name in ACCOUNTS}
    STATE.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(made, indent=1))
    return made


def start_provider(daemons: Daemons, client_secret: str) -> None:
    """The development provider on the node's address in its network namespace, forwarded to the host."""
    config = STATE / "oidc.json"
    config.touch(mode=0o600)
    config.write_text(
        json.dumps(
            {
                "issuer": issuer(),
                "host": NODE_IP,
                "port": OIDC_PORT,
                "keys_file": str(STATE / "oidc-keys.json"),
                "node_modules": str(REPO / "node_modules"),
                "clients": [
                    {
                        "client_id": CLIENT_ID,
                        "client_secret": client_secret,
                        "redirect_uris": [f"{public_url()}/hub/oauth_callback"],
                        "post_logout_redirect_uris": [f"{public_url()}/hub/login"],
                    }
                ],
                "accounts": {
                    name: {"password": password, "groups": ACCOUNTS[name]}
                    for name, password in accounts().items()
                },
            }
        )
    )
    provider = REPO / "src" / "af" / "tools" / "local" / "oidc_provider" / "provider.mjs"
    daemons.start("oidc", ["ip", "netns", "exec", NETNS, "node", str(provider), str(config)])
    daemons.start("oidc-forward", forward(OIDC_PORT, f"{NODE_IP}:{OIDC_PORT}"))
    wait_http(
        f"http://127.0.0.1:{OIDC_PORT}/.well-known/openid-configuration", "the development provider", daemons
    )


def wait_http(url: str, what: str, daemons: Daemons, seconds: float = 60) -> None:
    """Wait until `url` answers 2xx/3xx; DeployError naming `what` and the provider's log otherwise."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(["curl", "-fsS", "-o", "/dev/null", url], capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in (daemons.folder / "logs").glob("*.log"))
    raise DeployError(f"{what} does not answer at {url} after {seconds:.0f} s:\n{logs}")


def data_volume(facility: facility_chart.Facility, data_dir: Path) -> None:
    """The example files as a read-only PersistentVolume (hostPath: the node is this machine) and its claim."""
    if not data_dir.is_dir():
        raise DeployError(f"{data_dir}: no such folder (the example PHYSLITE files; --data)")
    manifest = f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {DATA_PV}}}
spec:
  capacity: {{storage: 10Gi}}
  accessModes: [ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {{namespace: {facility.namespace}, name: physlite-examples}}
  hostPath: {{path: {data_dir}, type: Directory}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: physlite-examples, namespace: {facility.namespace}}}
spec:
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: {DATA_PV}
  resources: {{requests: {{storage: 10Gi}}}}
"""
    facility.kubectl("apply", "-f", "-", stdin=manifest)


def images() -> list[str]:
    """The images of `make images` and `tools/images/build.py proxy` the local values name, for
    tools/cluster/load-images.sh (traefik comes with the cluster's own build, loaded by up.sh)."""
    values = merge(helm_python.Chart.load(CHART).values, yaml.safe_load(LOCAL_VALUES.read_text()))
    named = [
        values["jupyterhub"]["hub"]["image"],
        values["jupyterhub"]["singleuser"]["image"],
        values["jupyterhub"]["proxy"]["chp"]["image"],
    ]
    return sorted({f"{image['name']}:{image['tag']}" for image in named})


def up(subcharts: Path | None, extra_values: Mapping[str, Any], data_dir: Path, timeout: int = 600) -> dict:
    """Install or upgrade the whole chart; the release summary."""
    facility = facility_chart.Facility(namespace=NAMESPACE)
    facility.prepare(
        pod_security=helm_python.Chart.load(CHART).values["podSecurity"]["enforce"], z2jh_secret=False
    )
    loaded = subprocess.run(
        [str(REPO / "tools" / "cluster" / "load-images.sh"), *images()], capture_output=True, text=True
    )
    if loaded.returncode != 0 or "skipped" in loaded.stdout:
        raise DeployError(
            f"images not on the node (make images; tools/images/build.py proxy):\n{loaded.stdout}"
        )
    daemons = Daemons()
    hub_env = facility.hub_env_secret()
    start_provider(daemons, hub_env["AF_OIDC_CLIENT_SECRET"])
    data_volume(facility, data_dir)
    values = merge(local_values(), extra_values)
    with whole_chart(subcharts) as chart_dir:
        release = facility.deploy(values, timeout=timeout, chart_dir=chart_dir)
    proxy_ip = facility.kubectl("get", "service", "proxy-public", "-o", "jsonpath={.spec.clusterIP}").strip()
    daemons.stop("public-forward")
    daemons.start("public-forward", forward(PUBLIC_PORT, f"{proxy_ip}:80"))
    wait_http(f"{public_url()}/hub/health", "the hub through the public proxy", daemons, seconds=120)
    return release


def down() -> None:
    """Uninstall the release, remove its namespace and the data volume, stop the provider and the forwards."""
    if facility_chart.KUBECONFIG.exists():
        facility = facility_chart.Facility(namespace=NAMESPACE)
        with contextlib.suppress(helm_python.HelmError):
            facility.uninstall()
        facility_chart.kubectl(
            facility_chart.KUBECTL,
            "delete",
            "namespace",
            NAMESPACE,
            "--ignore-not-found",
            check=False,
            timeout=300,
        )
        facility_chart.kubectl(
            facility_chart.KUBECTL, "delete", "pv", DATA_PV, "--ignore-not-found", check=False
        )
    Daemons().stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/cluster/deploy_local.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument(
        "--subcharts", help="folder with jupyterhub/ and dask-gateway/ (default: AF_SUBCHARTS)"
    )
    parser.add_argument("-f", "--values", type=Path, help="a values file on top of the local values")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("PHYSLITE_TEST_DATA", REPO.parent / "shared" / "data")),
        help="the folder of example PHYSLITE files (default: PHYSLITE_TEST_DATA or ../shared/data)",
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "down":
            down()
            print("deploy-local: removed")
            return 0
        extra = yaml.safe_load(args.values.read_text()) if args.values else {}
        if not isinstance(extra, dict):
            raise DeployError(f"{args.values}: values must be a mapping")
        release = up(subcharts_folder(args.subcharts), extra, args.data.resolve())
    except DeployError as err:
        print(f"deploy-local: {err}", file=sys.stderr)
        return 2
    except helm_python.HelmError as err:
        print(f"deploy-local: helm install/upgrade of {RELEASE} failed: {err}", file=sys.stderr)
        return 1
    print(
        f"deploy-local: release {RELEASE} revision {release['revision']} {release['status']} in namespace "
        f"{NAMESPACE}: {public_url()} (IAM {issuer()}; accounts in {STATE / 'accounts.json'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
