"""Version skew between the images, the lock and the chart (coffea-casa#489: hub and image disagreed).

The premise: our images are built from this repository's ``uv.lock`` and tagged with the project version
(pyproject.toml = Chart.yaml ``appVersion``). So

- every reference to our hub or notebook image in any values file must carry that tag (another tag is
  another lock: a different JupyterHub, dask or distributed);
- the dask workers (``dask-gateway.gateway.backend.image``) and every profile run the notebook image;
- the Dockerfiles install from the lock only (``uv sync --locked``, no pip), on pinned base tags;
- the JupyterHub major version agrees between the hub image, the notebook image and the hub the chart runs
  (our hub image; a z2jh default hub image would bring the z2jh release's JupyterHub);
- dask and distributed agree in the lock; the gateway controller's image matches dask-gateway-server.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import helm_python

from af.tools.check.chart import standalone_copy, values_files
from af.tools.check.findings import Finding
from af.tools.check.repo import Repo
from af.tools.check.yamlfile import YamlError, load_one

# JupyterHub major version of the hub image each Zero to JupyterHub release line ships (its Chart.yaml
# appVersion); the hub configuration of the chart is written and tested against that JupyterHub.
Z2JH_JUPYTERHUB_MAJOR = {"4": 5, "3": 4}
Z2JH_HUB_IMAGE = "quay.io/jupyterhub/k8s-hub"
GATEWAY_SERVER_IMAGE = "ghcr.io/dask/dask-gateway-server"
# the prefix of the labels tools/images/build.py writes (lock hash, base)
IMAGE_LABEL = "org.physlite-facility"

HUB_IMAGE_KEYS = (
    ("jupyterhub", "hub", "image"),
    ("dask-gateway", "gateway", "image"),
    ("healthCheck", "image"),
    ("dashboardGuard", "image"),
)
NOTEBOOK_IMAGE_KEYS = (
    ("jupyterhub", "singleuser", "image"),
    ("dask-gateway", "gateway", "backend", "image"),
)


def lock_versions(lock: Path) -> dict[str, str]:
    """Package name -> version from uv.lock.

    Example:
        >>> lock_versions(Path("uv.lock"))["jupyterhub"]  # doctest: +SKIP
        '6.1.1'
    """
    data = tomllib.loads(lock.read_text())
    return {p["name"]: p.get("version", "") for p in data.get("package", [])}


# the project's base image (tools/images/build.py base): Debian's Python and uv from PyPI, named in its tag
BASE_TAG = re.compile(r":[\w.-]*python(?P<python>\d+\.\d+)-uv(?P<uv>[\w.]+)$")


def _expand(text: str, args: Mapping[str, str]) -> str:
    """``${NAME}`` / ``$NAME`` replaced by the Dockerfile ARG's default (left as is when there is none)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _major(version: str) -> int:
    return int(version.split(".", 1)[0])


# build-time options of RUN (cache and secret mounts, network): not part of the command
RUN_OPTIONS = re.compile(r"^RUN\s+(?:--[\w-]+=\S+\s+)+", re.I)


def dockerfile_lines(path: Path) -> list[tuple[int, str]]:
    """Logical lines (continuations joined) with their first line number; comments and RUN's options dropped."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if not buffer:
            start = number
        buffer += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            out.append((start, RUN_OPTIONS.sub("RUN ", buffer.strip())))
            buffer = ""
    return out


def check_dockerfile(repo: Repo, path: Path, groups: set[str], uv_version: str) -> tuple[list[Finding], dict]:
    """One Dockerfile: pinned bases, installs only from the lock; returns what it installs."""
    rel = repo.rel(path)
    findings: list[Finding] = []
    info: dict[str, Any] = {"python": None, "groups": set(), "warmup": False, "generic_cpu": False}
    copies_lock = False
    args: dict[str, str] = {}
    for number, line in dockerfile_lines(path):
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip("\"'")
        if word == "FROM":
            image = _expand(rest.split()[0], args)
            base = BASE_TAG.search(image)
            if base:
                info["python"] = base.group("python")
                info["base"] = image
                if base.group("uv") != uv_version:
                    findings.append(
                        Finding(
                            rel,
                            f"line {number}: FROM",
                            f"{image}: uv {base.group('uv')}, the Makefile bootstraps uv {uv_version}",
                        )
                    )
            if image.lower() == "scratch":
                continue
            name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
            if not tag or tag == "latest":
                findings.append(
                    Finding(rel, f"line {number}: FROM", f"{image}: base image not pinned to a tag")
                )
            elif name.endswith("astral-sh/uv") and tag != uv_version:
                findings.append(
                    Finding(rel, f"line {number}: FROM", f"uv {tag}, the Makefile bootstraps uv {uv_version}")
                )
            elif name == "python" or name.endswith("/python"):
                info["python"] = re.match(r"(\d+\.\d+)", tag).group(1) if re.match(r"\d+\.\d+", tag) else None
        elif word == "COPY" and "uv.lock" in rest.split():
            copies_lock = True
        elif word == "ENV" and re.search(r"\bNUMBA_CPU_NAME=generic\b", rest):
            info["generic_cpu"] = True
        elif word == "RUN":
            if re.search(
                r"\bpip3? install\b|\buv pip install\b|\buv add\b|\bconda install\b|\bmamba install\b", rest
            ):
                findings.append(
                    Finding(
                        rel,
                        f"line {number}: RUN",
                        "installs packages outside the lock (use uv sync --locked)",
                    )
                )
            for sync in re.finditer(r"\buv sync\b([^&;|]*)", rest):
                args = sync.group(1)
                if "--locked" not in args and "--frozen" not in args:
                    findings.append(
                        Finding(rel, f"line {number}: RUN", "uv sync without --locked: may re-resolve")
                    )
                for group in re.findall(r"--group[ =]([\w-]+)", args):
                    if group not in groups:
                        findings.append(
                            Finding(
                                rel,
                                f"line {number}: RUN",
                                f"dependency group {group!r} not in pyproject.toml",
                            )
                        )
                    info["groups"].add(group)
            if "physlite.decode.warmup" in rest:
                info["warmup"] = True
    if not copies_lock:
        findings.append(Finding(rel, "COPY", "does not copy uv.lock: the image is not built from the lock"))
    return findings, info


def built_image_labels(image: str) -> dict[str, str] | None:
    """The labels of ``image`` as built on this machine (podman), or None when podman or the image is absent.

    Example:
        >>> built_image_labels("ghcr.io/physlite-facility/hub:0.1.0")["org.opencontainers.image.version"]  # doctest: +SKIP
        '0.1.0'
    """
    podman = shutil.which("podman")
    if not podman:
        return None
    done = subprocess.run(
        [podman, "image", "inspect", "--format", "{{json .Labels}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return (json.loads(done.stdout) or {}) if done.returncode == 0 else None


def check_built_image(image: str, lock: Path, base: str | None) -> list[Finding]:
    """A locally built image under the chart's tag must come from this version, this lock and the Dockerfile's
    base (labels written by tools/images/build.py); nothing to check when it was not built here."""
    labels = built_image_labels(image)
    if labels is None:
        return []
    where = f"image {image}"
    rebuild = "rebuild it (make images)"
    findings = []
    tag_version = image.rpartition(":")[2]
    built_version = labels.get("org.opencontainers.image.version")
    if built_version != tag_version:
        findings.append(
            Finding(where, "version label", f"{built_version!r} under tag {tag_version!r}: {rebuild}")
        )
    lock_hash = hashlib.sha256(lock.read_bytes()).hexdigest()
    built_lock = labels.get(f"{IMAGE_LABEL}.uv-lock.sha256")
    if built_lock != lock_hash:
        findings.append(
            Finding(where, "uv-lock label", f"built from another uv.lock ({str(built_lock)[:12]}): {rebuild}")
        )
    built_base = labels.get(f"{IMAGE_LABEL}.base")
    if base and built_base != base:
        findings.append(
            Finding(where, "base label", f"built on {built_base}, the Dockerfile names {base}: {rebuild}")
        )
    return findings


def check_skew(repo: Repo) -> list[Finding]:
    """All version-skew rules (see the module docstring).

    Example:
        >>> [f for f in check_skew(Repo.discover()) if not f.warning]  # doctest: +SKIP
        []
    """
    findings: list[Finding] = []
    pyproject = tomllib.loads((repo.root / "pyproject.toml").read_text())
    version = pyproject["project"]["version"]
    groups = set(pyproject.get("dependency-groups", {}))
    lock = lock_versions(repo.root / "uv.lock")
    chart_yaml = load_one(repo.chart / "Chart.yaml")
    chart_rel = repo.rel(repo.chart / "Chart.yaml")
    if str(chart_yaml.get("appVersion")) != version:
        findings.append(
            Finding(
                chart_rel,
                "appVersion",
                f"{chart_yaml.get('appVersion')!r}, pyproject.toml version is {version!r}",
            )
        )
    if lock.get("dask") != lock.get("distributed"):
        findings.append(
            Finding("uv.lock", "dask", f"dask {lock.get('dask')} but distributed {lock.get('distributed')}")
        )
    makefile = (repo.root / "Makefile").read_text()
    uv_match = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.M)
    uv_version = uv_match.group(1) if uv_match else ""

    images = {}
    for kind in ("hub", "notebook"):
        path = repo.images / kind / "Dockerfile"
        if not path.is_file():
            findings.append(Finding(repo.rel(path), "", "missing"))
            continue
        more, info = check_dockerfile(repo, path, groups, uv_version)
        findings += more
        images[kind] = info
        requirements = [r for g in info["groups"] for r in pyproject.get("dependency-groups", {}).get(g, [])]
        if not any(re.match(r"jupyterhub\b(?![-_])", str(r)) for r in requirements):
            findings.append(
                Finding(
                    repo.rel(path), "uv sync", f"groups {sorted(info['groups'])} do not install jupyterhub"
                )
            )
    notebook = images.get("notebook", {})
    nb_rel = repo.rel(repo.images / "notebook" / "Dockerfile")
    if notebook and not notebook["warmup"]:
        findings.append(
            Finding(nb_rel, "RUN", "does not run python -m physlite.decode.warmup (kernels at build)")
        )
    if notebook and not notebook["generic_cpu"]:
        findings.append(
            Finding(nb_rel, "ENV", "NUMBA_CPU_NAME=generic missing: kernels would be host-specific")
        )
    pythons = {k: i["python"] for k, i in images.items()}
    if len(set(pythons.values())) > 1:
        findings.append(Finding("images/*/Dockerfile", "FROM", f"different Python versions: {pythons}"))

    jupyterhub = lock.get("jupyterhub")
    if not jupyterhub:
        return [
            *findings,
            Finding("uv.lock", "jupyterhub", "not locked: the images would have no JupyterHub"),
        ]
    z2jh = next((d for d in chart_yaml.get("dependencies") or [] if d.get("name") == "jupyterhub"), {})
    z2jh_major = Z2JH_JUPYTERHUB_MAJOR.get(str(z2jh.get("version", "")).split(".", 1)[0])
    if z2jh_major is not None and z2jh_major != _major(jupyterhub):
        findings.append(
            Finding(
                chart_rel,
                "dependencies.jupyterhub",
                f"z2jh {z2jh.get('version')} was released for JupyterHub {z2jh_major}.x; our hub image runs "
                f"JupyterHub {jupyterhub} (uv.lock) under its hub configuration: verify on a staging cluster",
                warning=True,
            )
        )

    defaults = load_one(repo.chart / "values.yaml")
    hub_name = _get(defaults, ("jupyterhub", "hub", "image", "name"))
    notebook_name = _get(defaults, ("jupyterhub", "singleuser", "image", "name"))
    for kind, name in (("hub", hub_name), ("notebook", notebook_name)):
        if kind in images:
            findings += check_built_image(
                f"{name}:{version}", repo.root / "uv.lock", images[kind].get("base")
            )
    with standalone_copy(repo) as chart_dir:
        chart = helm_python.Chart.load(chart_dir)
        for path in [repo.chart / "values.yaml", *values_files(repo)]:
            try:
                user = {} if path == repo.chart / "values.yaml" else load_one(path)
            except YamlError as exc:
                findings.append(Finding(repo.rel(path), "", str(exc)))
                continue
            merged = chart.merge_values(user)
            findings += _check_values_images(
                repo.rel(path), merged, version, hub_name, notebook_name, lock, z2jh_major
            )
    return findings


def _check_values_images(
    rel: str,
    values: Mapping[str, Any],
    version: str,
    hub_name: str,
    notebook_name: str,
    lock: Mapping[str, str],
    z2jh_major: int | None,
) -> list[Finding]:
    findings = []
    jupyterhub = lock["jupyterhub"]
    for keys, ours in ((HUB_IMAGE_KEYS, hub_name), (NOTEBOOK_IMAGE_KEYS, notebook_name)):
        for path in keys:
            image = _get(values, path)
            if not isinstance(image, Mapping):
                continue
            key = ".".join(path)
            name, tag = image.get("name"), str(image.get("tag"))
            if path == ("jupyterhub", "hub", "image") and name == Z2JH_HUB_IMAGE:
                if z2jh_major is not None and z2jh_major != _major(jupyterhub):
                    findings.append(
                        Finding(
                            rel,
                            key,
                            f"{name}:{tag} runs JupyterHub {z2jh_major}.x, the notebook image JupyterHub "
                            f"{jupyterhub} (uv.lock): the hub and user servers would disagree",
                        )
                    )
                continue
            if name != ours:
                findings.append(
                    Finding(
                        rel, f"{key}.name", f"{name!r} is not the facility image {ours!r}: versions unknown"
                    )
                )
            elif tag != version:
                findings.append(
                    Finding(
                        rel,
                        f"{key}.tag",
                        f"{tag!r} but this lock is version {version!r}: the image would carry other versions "
                        f"(JupyterHub {jupyterhub}, dask {lock.get('dask')}, distributed {lock.get('distributed')})",
                    )
                )
    for i, profile in enumerate(_get(values, ("settings", "profiles")) or []):
        image = str(profile.get("image") or "")
        if image and image != f"{notebook_name}:{version}":
            findings.append(
                Finding(
                    rel, f"settings.profiles[{i}].image", f"{image!r}, expected {notebook_name}:{version}"
                )
            )
    singleuser = _get(values, ("jupyterhub", "singleuser", "image")) or {}
    workers = _get(values, ("dask-gateway", "gateway", "backend", "image")) or {}
    if (singleuser.get("name"), str(singleuser.get("tag"))) != (workers.get("name"), str(workers.get("tag"))):
        findings.append(
            Finding(
                rel,
                "dask-gateway.gateway.backend.image",
                f"workers run {workers.get('name')}:{workers.get('tag')}, notebooks "
                f"{singleuser.get('name')}:{singleuser.get('tag')}: dask/distributed must agree",
            )
        )
    controller = _get(values, ("dask-gateway", "controller", "image")) or {}
    server = lock.get("dask-gateway-server")
    if controller.get("name") == GATEWAY_SERVER_IMAGE and str(controller.get("tag")) != server:
        findings.append(
            Finding(
                rel, "dask-gateway.controller.image.tag", f"{controller.get('tag')!r}, uv.lock has {server!r}"
            )
        )
    return findings
