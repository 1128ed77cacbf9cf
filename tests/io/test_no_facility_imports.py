"""physlite imports nothing from the facility: the package and every submodule import where `af` and
`hub_config` cannot be imported (as in a dask worker or a user's own environment)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import physlite

IMPORT_ALL = r"""
import importlib, json, pkgutil, sys

class NoFacility:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("af", "hub_config"):
            raise ImportError(f"physlite must not import {name}")
        return None

sys.meta_path.insert(0, NoFacility())
import physlite

imported = ["physlite"]
for module in pkgutil.walk_packages(physlite.__path__, "physlite."):
    importlib.import_module(module.name)
    imported.append(module.name)
facility = sorted(name for name in sys.modules if name.split(".")[0] in ("af", "hub_config"))
print(json.dumps({"imported": imported, "facility": facility}))
"""


def test_physlite_and_every_submodule_import_without_the_facility():
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["facility"] == []
    expected = {
        "physlite.reader.catalogue",
        "physlite.io.credentials",
        "physlite.io.rucio",
        "physlite.events.coffea",
    }
    assert expected <= set(result["imported"])


def test_the_guard_would_catch_a_facility_import():
    probe = IMPORT_ALL.replace(
        "import physlite\n", "import physlite\nimport af.user_server.access_token\n", 1
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "physlite must not import af" in done.stderr


def test_no_physlite_module_imports_the_facility_even_inside_a_function():
    """The import above only runs module-level imports; a deferred one (inside a function) is found here."""
    found = []
    for path in Path(physlite.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("af", "hub_config")
            ]
    assert found == []
