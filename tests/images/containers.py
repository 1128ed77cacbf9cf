"""Run the facility's images as a cluster runs them: podman with the project's settings (images/containers.conf),
as uid 1000, the root filesystem read-only but for the home volume and a /tmp tmpfs, no capabilities, no
privilege escalation, and no network unless a test says which.

Example:
    >>> run(notebook_image(), ["python", "-c", "print(1)"], home=tmp_path)  # doctest: +SKIP
    CompletedProcess(args=[...], returncode=0, stdout='1\\n', stderr='')
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "images" / "containers.conf"
HOME = "/home/jovyan"
# where a cluster mounts the example data (read-only) and names it with AF_EXAMPLE_DATA
DATA = "/srv/example-data"
os.environ.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))


def image(kind: str) -> str:
    """The image the chart's values name for ``kind`` (hub or notebook) at the project version; fails the test
    with the command that builds it when it was not built."""
    values = yaml.safe_load((REPO / "charts" / "analysis-facility" / "values.yaml").read_text())
    key = {"hub": "hub", "notebook": "singleuser"}[kind]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    name = f"{values['jupyterhub'][key]['image']['name']}:{version}"
    if subprocess.run(["podman", "image", "exists", name], check=False).returncode != 0:
        pytest.fail(f"image {name} is not built: run `make images`", pytrace=False)
    return name


def home_volume(path: Path) -> Path:
    """A folder owned by uid 1000, mounted as the user's home (a cluster's persistent volume)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 1000, 1000)
    return path


def run_args(
    name: str,
    *,
    home: Path,
    network: str = "none",
    env: Mapping[str, str] | None = None,
    volumes: Sequence[str] = (),
    data: Path | None = None,
    container: str | None = None,
) -> list[str]:
    """``podman run`` arguments up to the image name: the restrictions of a user pod on Kubernetes.
    ``data`` is mounted read-only at DATA and named by AF_EXAMPLE_DATA."""
    args = [
        "podman",
        "run",
        "--rm",
        "--user=1000:1000",
        "--read-only",
        "--tmpfs=/tmp:rw,mode=1777,size=1g",
        f"--volume={home}:{HOME}:rw",
        f"--network={network}",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--env=HOME={HOME}",
    ]
    if container:
        args.append(f"--name={container}")
    if data is not None:
        args += [f"--volume={data}:{DATA}:ro", f"--env=AF_EXAMPLE_DATA={DATA}"]
    args += [f"--volume={v}" for v in volumes]
    args += [f"--env={k}={v}" for k, v in (env or {}).items()]
    return [*args, name]


def run(
    name: str, command: Sequence[str], *, timeout: float = 300, **options
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a container of ``name`` (options as in run_args); fail the test with its output when it
    exits non-zero."""
    done = subprocess.run(
        [*run_args(name, **options), *command], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)[:200]} in {name} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def remove(container: str) -> None:
    """Remove a container started by a test, whatever its state."""
    subprocess.run(["podman", "rm", "--force", "--time=2", container], capture_output=True, check=False)
