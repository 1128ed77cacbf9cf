"""Where things are in a checkout of this repository (the current tree, or another revision for `diff`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CHART = "charts/analysis-facility"
KUBE_VERSION = "1.33.0"
# manifests are validated against the oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the
# newest that kubernetes-validate knows
KUBE_VERSIONS = ("1.30.0", "1.37.0")


@dataclass(frozen=True)
class Repo:
    """A checkout: ``root`` holds charts/, flux/, images/, uv.lock and .sops.yaml.

    ``schemas`` is the directory of the upstream subcharts' values schemas (``../shared/schemas`` by default,
    or ``$AF_SUBCHART_SCHEMAS``).

    Example:
        >>> Repo.discover().chart.name
        'analysis-facility'
    """

    root: Path
    schemas: Path

    @classmethod
    def discover(cls, root: Path | None = None) -> Repo:
        """The checkout containing ``root`` (default: the current directory)."""
        here = (root or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / CHART / "Chart.yaml").is_file():
                return cls.at(candidate)
        raise FileNotFoundError(f"{here}: not inside a checkout with {CHART}/Chart.yaml")

    @classmethod
    def at(cls, root: Path, schemas: Path | None = None) -> Repo:
        """The checkout at exactly ``root``."""
        root = root.resolve()
        env = os.environ.get("AF_SUBCHART_SCHEMAS")
        default = Path(env) if env else root.parent / "shared" / "schemas"
        if not default.is_dir():
            # a git worktree under build/ (make diff) still uses the main checkout's shared/ directory
            default = Path.cwd().resolve().parent / "shared" / "schemas"
        return cls(root=root, schemas=(schemas or default).resolve())

    @property
    def chart(self) -> Path:
        return self.root / CHART

    @property
    def flux(self) -> Path:
        return self.root / "flux"

    @property
    def images(self) -> Path:
        return self.root / "images"

    def rel(self, path: Path) -> str:
        """``path`` relative to the checkout, for messages."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)
