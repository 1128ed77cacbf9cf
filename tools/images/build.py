"""Build the facility's images with podman (Debian's podman/buildah), as `make images` does.

    python tools/images/build.py base               # the Debian bookworm base, made with mmdebstrap
    python tools/images/build.py hub notebook       # the images the chart's values name
    python tools/images/build.py proxy              # configurable-http-proxy, for clusters without quay.io

The base: ``images/*/Dockerfile`` start ``FROM ${BASE}`` with ``ARG BASE=<the project's base image>``, a Debian
bookworm minbase with Debian's python3.11, ca-certificates and uv from PyPI. Elsewhere docker pulls it; here no
registry is reachable, so `base` makes it with the same recipe (mmdebstrap from the host's Debian mirrors, the uv
binary of the Makefile's pinned uv) and records in a label, and prints, that this copy was built here.

Builds: ``--network host`` (podman's default bridge would add iptables chains and turn on ip_forward), the host's
CA bundle as the build secret ``ca-bundle`` when Debian's local CA folder holds extra certificates (never a
layer), uv's cache as a cache mount (in the Dockerfiles), labels with the project version and the lock's hash
(read by the version-skew check). Image sizes and build times go to build/bench/images.json.

Example:
    $ CONTAINERS_CONF=images/containers.conf python tools/images/build.py hub
    hub: ghcr.io/physlite-facility/hub:0.1.0 built in 212.4 s, 1.02 GB
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "build" / "bench" / "images.json"
LABEL = "org.physlite-facility"
# Debian's local CA folder (update-ca-certificates adds what it holds to the bundle)
LOCAL_CA = Path("/usr/local/share/ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
# git: JupyterLab's git extension and users' terminals need the git command (tutorial 1 clones with it).
BASE_PACKAGES = ("python3.11", "ca-certificates", "netbase", "tzdata", "git")
KINDS = ("hub", "notebook")
PROXY = REPO / "images" / "proxy"
# Debian 13: configurable-http-proxy 5 needs node >= 20, bookworm has 18
PROXY_SUITE = ("trixie", "http://deb.debian.org/debian")


class BuildError(RuntimeError):
    """A build step failed; the message names the command or file at fault."""


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, echoing it; raise BuildError naming it when it fails."""
    print("+", " ".join(command), flush=True)
    done = subprocess.run(command, check=False, **kwargs)
    if done.returncode != 0:
        raise BuildError(
            f"{command[0]} {command[1] if len(command) > 1 else ''} failed (exit {done.returncode})"
        )
    return done


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def lock_sha256() -> str:
    return hashlib.sha256((REPO / "uv.lock").read_bytes()).hexdigest()


def dockerfile(kind: str) -> Path:
    return REPO / "images" / kind / "Dockerfile"


def arg_default(path: Path, name: str) -> str:
    """The default of ``ARG <name>=...`` in a Dockerfile; BuildError naming the file when there is none."""
    match = re.search(rf"^ARG\s+{name}=(\S+)", path.read_text(), re.M)
    if not match:
        raise BuildError(f"{path.relative_to(REPO)}: no 'ARG {name}=<default>'")
    return match.group(1).strip("\"'")


def base_image() -> str:
    """The base every Dockerfile names (they must agree)."""
    bases = {kind: arg_default(dockerfile(kind), "BASE") for kind in KINDS}
    if len(set(bases.values())) != 1:
        raise BuildError(f"images/*/Dockerfile name different bases: {bases}")
    return bases[KINDS[0]]


def image_name(kind: str) -> str:
    """``<name>:<version>`` as the chart's values name the image (jupyterhub.{hub,singleuser}.image)."""
    values = (REPO / "charts" / "analysis-facility" / "values.yaml").read_text()
    key = {"hub": "hub", "notebook": "singleuser"}[kind]
    match = re.search(rf"^  {key}:\n    image:\n      name: (\S+)", values, re.M)
    if not match:
        raise BuildError(f"charts/analysis-facility/values.yaml: no jupyterhub.{key}.image.name")
    return f"{match.group(1)}:{project_version()}"


def exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


def image_id(image: str) -> str | None:
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else None


def size_bytes(image: str) -> int:
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def labels(image: str) -> dict[str, str]:
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Labels}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout) or {}


def record(name: str, entry: dict) -> None:
    """Keep the newest figures per image and the last runs (cold and warm builds) in build/bench/images.json."""
    BENCH.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(BENCH.read_text()) if BENCH.is_file() else {}
    previous = data.get(name, {})
    runs = [*previous.get("runs", []), {k: entry[k] for k in ("seconds", "when", "size_bytes")}][-10:]
    data[name] = {**entry, "runs": runs}
    BENCH.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def uv_binary() -> Path:
    """The uv `make venv` installed from PyPI at the Makefile's UV_VERSION."""
    version = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
    uv = REPO / "build" / "bootstrap" / "bin" / "uv"
    if not uv.is_file():
        raise BuildError(f"{uv}: missing (make venv installs uv {version} from PyPI)")
    reported = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    if reported != version:
        raise BuildError(f"{uv} is uv {reported}, the Makefile pins {version}")
    return uv


def build_base() -> str:
    """Make the base with mmdebstrap and import it under the name the Dockerfiles use; return a note saying it
    was built here (not pulled)."""
    image = base_image()
    uv = uv_binary()
    uv_tag = re.search(r"-uv([\w.]+)$", image)
    if not uv_tag or uv_tag.group(1) != subprocess.check_output([uv, "--version"], text=True).split()[1]:
        raise BuildError(f"base {image}: its tag must end in -uv<the Makefile's UV_VERSION>")
    if not HOST_SOURCES.is_file():
        raise BuildError(f"{HOST_SOURCES}: missing (the Debian mirrors mmdebstrap uses)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="af-base-") as tmp:
        tarball = Path(tmp) / "base.tar"
        run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--mode=root",
                "--quiet",
                f"--include={','.join(BASE_PACKAGES)}",
                # documentation and translations are not needed in a server image
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                f"--customize-hook=copy-in {uv} /usr/local/bin",
                '--customize-hook=chroot "$1" dpkg-query -W -f \'${Package}=${Version}\\n\' > "$1"/etc/af-base-packages',
                "bookworm",
                str(tarball),
                str(HOST_SOURCES),
            ]
        )
        python = subprocess.check_output(["tar", "-xOf", str(tarball), "./etc/af-base-packages"], text=True)
        python_version = re.search(r"^python3\.11=(\S+)", python, re.M).group(1)
        built = time.strftime("%Y-%m-%d")
        note = (
            f"{image} built on this machine by tools/images/build.py base (mmdebstrap bookworm from "
            f"deb.debian.org on {built}, python3.11 {python_version}); the registry copy was not pulled"
        )
        args = [
            "--change=ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change=ENV LANG=C.UTF-8",
            '--change=CMD ["/bin/bash"]',
            f"--change=LABEL {LABEL}.base={image}",
            f"--change=LABEL {LABEL}.base.python={python_version}",
            f'--change=LABEL {LABEL}.base.origin="{note}"',
        ]
        run(["podman", "import", "--quiet", *args, str(tarball), image], stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    record("base", entry(image, seconds))
    print(f"base: {note}", flush=True)
    return note


def proxy_image() -> str:
    """``<name>:<version>`` of the proxy image: configurable-http-proxy at the version images/proxy pins.

    Example:
        >>> proxy_image()
        'ghcr.io/physlite-facility/configurable-http-proxy:5.2.0'
    """
    version = json.loads((PROXY / "package.json").read_text())["dependencies"]["configurable-http-proxy"]
    return f"ghcr.io/physlite-facility/configurable-http-proxy:{version}"


def build_proxy() -> dict:
    """The proxy image: Debian's nodejs (trixie minbase) and configurable-http-proxy from images/proxy's npm lock,
    run as nobody. Zero to JupyterHub's proxy Deployment runs `configurable-http-proxy` from PATH; the upstream
    image (quay.io) cannot be pulled here, so the local cluster runs this one."""
    image = proxy_image()
    suite, mirror = PROXY_SUITE
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="af-proxy-") as tmp:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PROXY / name, tmp)
        run(["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=tmp)
        tarball = Path(tmp) / "proxy.tar"
        chp = "/opt/chp/node_modules/configurable-http-proxy/bin/configurable-http-proxy"
        run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--mode=root",
                "--quiet",
                "--include=nodejs,ca-certificates",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                '--customize-hook=mkdir -p "$1/opt/chp"',
                f"--customize-hook=copy-in {tmp}/node_modules /opt/chp",
                f'--customize-hook=ln -s {chp} "$1/usr/local/bin/configurable-http-proxy"',
                suite,
                str(tarball),
                f"deb {mirror} {suite} main",
            ]
        )
        args = [
            "--change=ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change=USER 65534",
            '--change=ENTRYPOINT ["configurable-http-proxy"]',
            f"--change=LABEL org.opencontainers.image.version={image.rsplit(':', 1)[1]}",
            f'--change=LABEL {LABEL}.origin="built on this machine by tools/images/build.py proxy"',
        ]
        run(["podman", "import", "--quiet", *args, str(tarball), image], stdout=subprocess.DEVNULL)
    figures = entry(image, time.perf_counter() - started)
    record("proxy", figures)
    print(f"proxy: {image} built in {figures['seconds']} s, {figures['size_gb']} GB", flush=True)
    return figures


def entry(image: str, seconds: float) -> dict:
    size = size_bytes(image)
    return {
        "image": image,
        "seconds": round(seconds, 1),
        "size_bytes": size,
        "size_gb": round(size / 1e9, 3),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def ca_secret() -> list[str]:
    """``--secret`` with the host's CA bundle when Debian's local CA folder adds certificates to it."""
    if any(LOCAL_CA.rglob("*.crt")) and HOST_CA_BUNDLE.is_file():
        return ["--secret", f"id=ca-bundle,src={HOST_CA_BUNDLE}"]
    return []


def git_revision() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def build(kind: str) -> dict:
    """Build ``images/<kind>/Dockerfile`` under the chart's name and the project version."""
    base = base_image()
    if not exists(base):
        build_base()
    image = image_name(kind)
    path = dockerfile(kind)
    previous = image_id(image)
    started = time.perf_counter()
    run(
        [
            "podman",
            "build",
            "--network",
            "host",
            "--layers",
            "--file",
            str(path),
            "--ignorefile",
            str(path.with_name("Dockerfile.dockerignore")),
            *ca_secret(),
            "--label",
            f"org.opencontainers.image.version={project_version()}",
            "--label",
            f"org.opencontainers.image.revision={git_revision()}",
            "--label",
            f"{LABEL}.uv-lock.sha256={lock_sha256()}",
            "--tag",
            image,
            str(REPO),
        ]
    )
    figures = entry(image, time.perf_counter() - started)
    if previous and previous != image_id(image):
        # the image this tag named before: nothing else refers to it (no other tag); a container may still use it
        subprocess.run(["podman", "rmi", previous], capture_output=True, check=False)
    record(kind, figures)
    origin = labels(image).get(f"{LABEL}.base.origin")
    print(f"{kind}: {image} built in {figures['seconds']} s, {figures['size_gb']} GB", flush=True)
    if origin:
        print(f"{kind}: base approximated here: {origin}", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="+", choices=("base", "proxy", *KINDS))
    args = parser.parse_args(argv)
    if not shutil.which("podman"):
        print("podman is missing: make sysdeps installs it", file=sys.stderr)
        return 2
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "images" / "containers.conf"))
    try:
        for what in args.what:
            if what == "base":
                build_base()
            elif what == "proxy":
                build_proxy()
            else:
                build(what)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
