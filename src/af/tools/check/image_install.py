"""The images' install steps, run on this machine (the images themselves cannot be built: no registry).

For each ``images/<kind>/Dockerfile`` the final ``uv sync`` (the one that installs the project) is run with the
same flags into ``build/image-envs/<kind>`` from this checkout's lock, and the ``python ...`` commands chained
to it in the same ``RUN`` (import checks, the kernel warm-up) run in that environment with the Dockerfile's
``ENV`` settings (``NUMBA_CPU_NAME=generic``; cache paths moved under build/). The ``RUN`` steps after a ``USER``
other than root that run ``python`` then run as that uid (as root, through ``setpriv``), so the kernels warmed up
as root must load for the user from the root-owned cache. This proves that the groups exist, the lock installs,
the hub's imports work and the kernels compile for a generic CPU into the image's cache and load for the user.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from af.tools.check.findings import Finding
from af.tools.check.repo import Repo
from af.tools.check.skew import dockerfile_lines
from af.tools.check.tools import ToolMissing, tool


def _uv(repo: Repo) -> str:
    """The uv that `make venv` bootstrapped: in the checked checkout, else in the current one (a scratch copy
    under test has no build/), else the one on PATH."""
    for root in (repo.root, Path.cwd()):
        bootstrap = root / "build" / "bootstrap" / "bin" / "uv"
        if bootstrap.is_file():
            return str(bootstrap)
    return tool("uv")


def _env_settings(lines: list[tuple[int, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for _, line in lines:
        if line.upper().startswith("ENV "):
            for token in shlex.split(line[4:]):
                if "=" in token:
                    key, value = token.split("=", 1)
                    env[key] = value
    return env


WARMUP = "physlite.decode.warmup"


def user_steps(lines: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """``(line, uid, command)`` of each ``RUN`` that runs ``python`` after a ``USER`` other than root."""
    user, steps = "root", []
    for number, line in lines:
        word, _, rest = line.partition(" ")
        if word.upper() == "USER":
            user = rest.strip().split(":")[0]
        elif word.upper() == "RUN" and user not in ("root", "0") and re.search(r"\bpython3?\b", rest):
            steps.append((number, user, rest.strip()))
    return steps


def check_kernels_checked_as_user(rel: str, lines: list[tuple[int, str]]) -> list[Finding]:
    """A Dockerfile that warms the kernels up (as root) must load them as its user with ``warmup --check``."""
    warmed = [n for n, line in lines if line.upper().startswith("RUN ") and WARMUP in line]
    checked = (
        [n for n, _, cmd in user_steps(lines) if f"{WARMUP} --check" in cmd and n > warmed[0]]
        if warmed
        else []
    )
    if warmed and not checked:
        return [
            Finding(
                rel,
                f"line {warmed[0]}",
                f"the kernels warmed up here are never loaded as the image's user: add `USER 1000` and "
                f"`RUN ... python -m {WARMUP} --check` after it (numba silently compiles them again in every pod "
                "when the user cannot load them)",
            )
        ]
    return []


PYTHON_PART = re.compile(r"^(?:\w+=\S*\s+)*python3?\b")


def _run_user_step(rel: str, number: int, uid: str, command: str, env: dict[str, str]) -> list[Finding]:
    """Run the ``python`` parts of one of the image's user steps as ``uid`` (leading ``VAR=value`` settings kept,
    HOME a fresh folder of that user's); a failure is a finding."""
    where = f"line {number}: {command}"
    if os.geteuid() != 0:
        return [Finding(rel, where, f"not run: running it as uid {uid} needs root here", warning=True)]
    if not uid.isdigit():
        return [
            Finding(rel, where, f"USER {uid}: give the uid as a number (Kubernetes' runAsNonRoot needs it)")
        ]
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    python = str(Path(env["PATH"].split(":")[0]) / "python")
    for part in (p.strip() for p in command.split("&&")):
        if not PYTHON_PART.match(part):
            continue
        argv = shlex.split(part)
        settings = {}
        while re.match(r"\w+=", argv[0]):
            key, value = argv.pop(0).split("=", 1)
            settings[key] = value
        with tempfile.TemporaryDirectory(prefix="image-user-") as home:
            os.chown(home, int(uid), int(uid))
            done = subprocess.run(
                [*setpriv, python, *argv[1:]],
                cwd=home,
                env={**env, **settings, "HOME": home},
                capture_output=True,
                text=True,
                check=False,
            )
        if done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip() or "(no output)")[-600:]
            return [Finding(rel, where, f"fails as uid {uid}: {output}")]
    return []


def check_image_install(repo: Repo, kind: str) -> list[Finding]:
    """Run the install steps of ``images/<kind>/Dockerfile`` on the host; findings name the Dockerfile line."""
    path = repo.images / kind / "Dockerfile"
    rel = repo.rel(path)
    lines = dockerfile_lines(path)
    runs = [(n, line[4:]) for n, line in lines if line.upper().startswith("RUN ")]
    install = [(n, cmd) for n, cmd in runs if "uv sync" in cmd and "--no-install-project" not in cmd]
    if not install:
        return [Finding(rel, "RUN", "no `uv sync` that installs the project")]
    number, command = install[-1]
    parts = [p.strip() for p in command.split("&&")]
    sync = next(p for p in parts if p.startswith("uv sync"))
    target = repo.root / "build" / "image-envs" / kind
    docker_env = _env_settings(lines)
    cache = target / "numba-cache"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(target / "venv"),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    try:
        uv = _uv(repo)
    except ToolMissing as exc:
        return [Finding(rel, f"line {number}", str(exc))]
    # uv keys a local project's build on pyproject.toml only: rebuild it so that this checkout's code is checked
    project = tomllib.loads((repo.root / "pyproject.toml").read_text())["project"]["name"]
    done = subprocess.run(
        [uv, *shlex.split(sync)[1:], "--reinstall-package", project, "--quiet"],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return [Finding(rel, f"line {number}: {sync}", f"fails with this lock: {done.stderr.strip()[-400:]}")]
    run_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "VIRTUAL_ENV"))},
        **{k: v for k, v in docker_env.items() if k.startswith(("NUMBA_", "PYTHON"))},
        "PATH": f"{target / 'venv' / 'bin'}:{os.environ.get('PATH', '')}",
    }
    if "NUMBA_CACHE_DIR" in run_env:
        # start empty, so that the kernels found afterwards are the ones this warm-up compiled
        shutil.rmtree(cache, ignore_errors=True)
        run_env["NUMBA_CACHE_DIR"] = str(cache)
    findings = check_kernels_checked_as_user(rel, lines)
    for part in parts:
        if not re.match(r"python3?\b", part):
            continue
        argv = shlex.split(part)
        argv[0] = str(target / "venv" / "bin" / "python")
        done = subprocess.run(argv, cwd=repo.root, env=run_env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            findings.append(
                Finding(rel, f"line {number}: {part}", f"fails in the installed environment: {last}")
            )
        elif (
            "physlite.decode.warmup" in part
            and "NUMBA_CACHE_DIR" in run_env
            and not any(Path(cache).rglob("*.nbi"))
        ):
            findings.append(
                Finding(rel, f"line {number}: {part}", f"no compiled kernels in NUMBA_CACHE_DIR {cache}")
            )
    if findings:
        return findings
    for step, uid, user_command in user_steps(lines):
        findings += _run_user_step(rel, step, uid, user_command, run_env)
    return findings


def check_images_install(repo: Repo) -> list[Finding]:
    """Both images' install steps.

    Example:
        >>> check_images_install(Repo.discover())  # doctest: +SKIP
        []
    """
    return [f for kind in ("hub", "notebook") for f in check_image_install(repo, kind)]
