"""Every module the code run in an image imports is installed by that image's dependency groups, from the lock.

The notebook image runs the tutorials (notebooks/*.ipynb), the health check's smoke notebook, the user's server
extensions (src/af/user_server) and, as the dask scheduler and workers, physlite (src/physlite); the hub image runs
hub_config, the gateway (src/af/gateway) and the health check (src/af/tools/health.py). For each image the
distributions its final ``uv sync`` installs are taken from uv.lock (the project's dependencies, the groups the
Dockerfile names, their dependencies and extras, markers evaluated for this interpreter); the import names each
distribution provides come from its RECORD in this checkout's .venv (`make venv` installs every group). An import
that is neither the standard library, the project itself nor provided by one of those distributions is a finding
naming the Dockerfile, the module and the file (and line or cell) importing it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import itertools
import json
import shlex
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker, default_environment
from packaging.utils import canonicalize_name

from af.tools.check.findings import Finding
from af.tools.check.repo import Repo
from af.tools.check.skew import dockerfile_lines

# what runs in each image; globs relative to the checkout
IMAGE_CODE: dict[str, tuple[str, ...]] = {
    "notebook": (
        "notebooks/*.ipynb",
        "src/af/tools/health_smoke.ipynb",
        "src/physlite/**/*.py",
        "src/af/user_server/**/*.py",
    ),
    "hub": ("hub_config/**/*.py", "src/af/gateway/**/*.py", "src/af/tools/health.py"),
}
# code in those folders that never runs in the image (and imports what the image does not install)
LOCAL_ONLY = {
    "hub_config/container_spawner.py": "the local facility's container spawner (group local-containers)",
}


@dataclass(frozen=True)
class Import:
    """A top-level module name imported at ``where`` (file and line, or notebook cell and line)."""

    module: str
    where: str


def _imports_in(tree: ast.AST, where: str) -> Iterator[Import]:
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield Import(name.split(".")[0], f"{where}:{node.lineno}")


def _python_source(cell: str) -> str:
    """A notebook cell without IPython's magics and shell escapes (blank lines keep the line numbers)."""
    if cell.lstrip().startswith("%%"):
        return ""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.splitlines())


def file_imports(path: Path, rel: str) -> list[Import]:
    """Every import of a Python file or of a notebook's code cells; a file that does not parse raises ValueError.

    Example:
        >>> file_imports(Path("notebooks/06_coffea.ipynb"), "notebooks/06_coffea.ipynb")[0]  # doctest: +SKIP
        Import(module='coffea', where='notebooks/06_coffea.ipynb cell 2:1')
    """
    try:
        if path.suffix != ".ipynb":
            return list(_imports_in(ast.parse(path.read_text(), str(path)), rel))
        cells = [c for c in json.loads(path.read_text())["cells"] if c.get("cell_type") == "code"]
        found = []
        for number, cell in enumerate(cells, 1):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            found += _imports_in(ast.parse(_python_source(source)), f"{rel} cell {number}")
        return found
    except (SyntaxError, json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"{rel}: cannot read its imports: {exc}") from exc


def image_groups(dockerfile: Path) -> tuple[int, str, list[str]] | None:
    """(line, command, groups) of the ``uv sync`` that installs the project, None when there is none."""
    found = None
    for number, line in dockerfile_lines(dockerfile):
        if not line.upper().startswith("RUN "):
            continue
        for part in line[4:].split("&&"):
            words = shlex.split(part.strip())
            if words[:2] == ["uv", "sync"] and "--no-install-project" not in words:
                groups = [w.split("=", 1)[1] for w in words if w.startswith("--group=")]
                groups += [b for a, b in itertools.pairwise(words) if a == "--group"]
                found = (number, part.strip(), groups)
    return found


class Lock:
    """uv.lock's packages and the project's dependencies and groups."""

    def __init__(self, path: Path, project: str) -> None:
        data = tomllib.loads(path.read_text())
        self.packages: dict[str, list[dict]] = {}
        for package in data.get("package", []):
            self.packages.setdefault(canonicalize_name(package["name"]), []).append(package)
        try:
            self.project = self.packages[canonicalize_name(project)][0]
        except KeyError:
            raise ValueError(f"{path}: no package {project!r} (the project): run `uv lock`") from None
        self.groups = set(self.project.get("dev-dependencies", {}))

    def _package(self, dep: dict) -> dict | None:
        candidates = self.packages.get(canonicalize_name(dep["name"]), [])
        if "version" in dep:
            candidates = [p for p in candidates if p.get("version") == dep["version"]]
        return candidates[0] if candidates else None

    def closure(self, groups: list[str]) -> set[str]:
        """Names of every distribution the project with ``groups`` installs here (markers for this Python)."""
        environment = {**default_environment(), "extra": ""}
        todo = [*self.project.get("dependencies", [])]
        for group in groups:
            todo += self.project.get("dev-dependencies", {}).get(group, [])
        seen: set[tuple[str, str, str]] = set()  # (name, version, extra or "")
        names: set[str] = set()
        while todo:
            dep = todo.pop()
            if "marker" in dep and not Marker(dep["marker"]).evaluate(environment):
                continue
            package = self._package(dep)
            if package is None:
                continue
            name = canonicalize_name(package["name"])
            for extra in ["", *dep.get("extra", [])]:
                if (name, package.get("version", ""), extra) in seen:
                    continue
                seen.add((name, package.get("version", ""), extra))
                names.add(name)
                more = package.get("optional-dependencies", {}).get(extra, []) if extra else None
                todo += package.get("dependencies", []) if more is None else more
        return names


def import_names(distribution: str) -> set[str]:
    """The top-level modules an installed distribution provides, from its RECORD (top_level.txt without one).

    Example:
        >>> sorted(import_names("pyyaml"))  # doctest: +SKIP
        ['_yaml', 'yaml']
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return set()
    names: set[str] = set()
    for file in dist.files or []:
        first = file.parts[0]
        if (
            first.startswith("..")
            or first.endswith((".dist-info", ".data", ".pth"))
            or first == "__pycache__"
        ):
            continue
        if len(file.parts) > 1:
            names.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            names.add(first.split(".")[0])
    if not names:
        names = set((dist.read_text("top_level.txt") or "").split())
    return names


def project_modules(pyproject: Path) -> set[str]:
    """The project's own top-level packages (hatch's wheel packages)."""
    data = tomllib.loads(pyproject.read_text())
    packages = data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
    return {Path(p).name for p in packages.get("packages", [])}


def _providers(lock: Lock) -> dict[str, set[str]]:
    """Import name -> the locked distributions (of any group) that provide it, for the hint in a finding."""
    providers: dict[str, set[str]] = {}
    for name in lock.closure(sorted(lock.groups)):
        for module in import_names(name):
            providers.setdefault(module, set()).add(name)
    return providers


def _group_hint(lock: Lock, module: str, providers: dict[str, set[str]]) -> str:
    distributions = providers.get(module)
    if not distributions:
        return "no locked distribution provides it"
    groups = [g for g in sorted(lock.groups) if distributions & lock.closure([g])]
    where = f"dependency group(s) {', '.join(groups)}" if groups else "the lock"
    return f"{', '.join(sorted(distributions))} from {where} provide(s) it"


def check_image_imports(repo: Repo, kind: str) -> list[Finding]:
    """Imports of the code that runs in ``images/<kind>`` against the distributions its groups install."""
    dockerfile = repo.images / kind / "Dockerfile"
    rel = repo.rel(dockerfile)
    sync = image_groups(dockerfile)
    if sync is None:
        return [Finding(rel, "RUN", "no `uv sync` that installs the project")]
    number, command, groups = sync
    lock = Lock(
        repo.root / "uv.lock", tomllib.loads((repo.root / "pyproject.toml").read_text())["project"]["name"]
    )
    unknown = [g for g in groups if g not in lock.groups]
    if unknown:
        return [Finding(rel, f"line {number}: {command}", f"groups {unknown} are not in uv.lock")]
    provided = set(sys.stdlib_module_names) | {"__future__"} | project_modules(repo.root / "pyproject.toml")
    for name in lock.closure(groups):
        provided |= import_names(name)
    findings: list[Finding] = []
    missing: dict[str, list[str]] = {}
    files = sorted({p for pattern in IMAGE_CODE[kind] for p in repo.root.glob(pattern) if p.is_file()})
    if not files:
        return [Finding(rel, "", f"none of {', '.join(IMAGE_CODE[kind])} found under {repo.root}")]
    for path in files:
        file_rel = repo.rel(path)
        if file_rel in LOCAL_ONLY or "__pycache__" in path.parts:
            continue
        try:
            imports = file_imports(path, file_rel)
        except ValueError as exc:
            findings.append(Finding(file_rel, "", str(exc)))
            continue
        for found in imports:
            if found.module not in provided:
                missing.setdefault(found.module, []).append(found.where)
    providers = _providers(lock) if missing else {}
    for module, where in sorted(missing.items()):
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        findings.append(
            Finding(
                rel,
                f"line {number}: {' '.join(f'--group {g}' for g in groups) or 'no groups'}",
                f"module {module!r} imported by {shown} is not installed in the {kind} image "
                f"({_group_hint(lock, module, providers)})",
            )
        )
    return findings


def check_images_imports(repo: Repo) -> list[Finding]:
    """Both images: what their code imports is what their dependency groups install.

    Example:
        >>> check_images_imports(Repo.discover())  # doctest: +SKIP
        []
    """
    return [f for kind in IMAGE_CODE for f in check_image_imports(repo, kind)]
