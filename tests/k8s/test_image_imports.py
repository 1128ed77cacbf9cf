"""A dependency group dropped from an image fails `make check` (image-imports) naming the Dockerfile, the module and
the tutorial or file that imports it; the images as committed install everything their code imports."""

from __future__ import annotations

import json
import shutil

import pytest

from af.tools.check.image_imports import check_image_imports, file_imports
from af.tools.check.image_install import check_kernels_checked_as_user
from af.tools.check.skew import dockerfile_lines
from tests.k8s.conftest import ROOT, edit, errors

NOTEBOOK = "images/notebook/Dockerfile"
HUB = "images/hub/Dockerfile"
NOTEBOOK_GROUPS = "--no-default-groups --group facility --group events --group remote"
HUB_GROUPS = "--no-editable --no-default-groups --group facility --group hub-k8s"


@pytest.fixture
def code(scratch):
    """The scratch checkout with the code the images run (the check reads what it imports)."""
    for name in ("notebooks", "src", "hub_config"):
        shutil.copytree(ROOT / name, scratch.root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return scratch


def _messages(findings) -> list[str]:
    return [str(f) for f in errors(findings)]


def _drop(path, old: str, new: str) -> None:
    """Edit both `uv sync` lines of a Dockerfile (dependencies layer and project layer)."""
    text = path.read_text()
    assert text.count(old) == 2, f"{path}: expected two {old!r}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("kind", ["notebook", "hub"])
def test_the_images_install_what_their_code_imports(real_repo, kind) -> None:
    assert _messages(check_image_imports(real_repo, kind)) == []


def test_notebook_image_without_the_events_group_misses_coffea_for_tutorial_6(code) -> None:
    _drop(code.root / NOTEBOOK, NOTEBOOK_GROUPS, NOTEBOOK_GROUPS.replace(" --group events", ""))
    messages = _messages(check_image_imports(code, "notebook"))
    coffea = [m for m in messages if "module 'coffea'" in m]
    assert len(coffea) == 1, messages
    assert coffea[0].startswith(f"{NOTEBOOK}: line ")
    assert "notebooks/06_coffea.ipynb cell " in coffea[0]
    assert "coffea from dependency group(s) events" in coffea[0]


def test_notebook_image_without_the_remote_group_misses_the_rucio_and_xrootd_clients(code) -> None:
    _drop(code.root / NOTEBOOK, NOTEBOOK_GROUPS, NOTEBOOK_GROUPS.replace(" --group remote", ""))
    messages = _messages(check_image_imports(code, "notebook"))
    assert any(
        m.startswith(NOTEBOOK) and "module 'rucio'" in m and "src/physlite/io/rucio.py:" in m
        for m in messages
    ), messages
    assert any("module 'XRootD'" in m and "src/physlite/io/xrootd.py:" in m for m in messages), messages


def test_hub_image_without_the_facility_group_misses_jupyterhub_for_hub_config(code) -> None:
    _drop(code.root / HUB, HUB_GROUPS.replace("--no-editable ", ""), "--no-default-groups --group hub-k8s")
    messages = _messages(check_image_imports(code, "hub"))
    assert any(
        m.startswith(HUB) and "module 'oauthenticator'" in m and "hub_config/" in m for m in messages
    ), messages


def test_an_import_in_a_new_tutorial_is_checked(code) -> None:
    notebook = {
        "cells": [{"cell_type": "code", "source": ["%matplotlib inline\n", "import pytest\n"]}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (code.root / "notebooks" / "07_new.ipynb").write_text(json.dumps(notebook))
    messages = _messages(check_image_imports(code, "notebook"))
    assert any(
        "module 'pytest' imported by notebooks/07_new.ipynb cell 1:2" in m
        and "from dependency group(s) dev" in m
        for m in messages
    ), messages


def test_imports_only_for_type_checking_are_not_required(tmp_path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pytest\nimport yaml\n")
    assert [i.module for i in file_imports(source, "m.py")] == ["typing", "yaml"]


def test_the_kernels_must_be_checked_as_the_images_user(scratch) -> None:
    path = scratch.root / NOTEBOOK
    rel = NOTEBOOK
    assert check_kernels_checked_as_user(rel, dockerfile_lines(path)) == []
    edit(path, "python -m physlite.decode.warmup --check", "true")
    messages = [str(f) for f in check_kernels_checked_as_user(rel, dockerfile_lines(path))]
    assert len(messages) == 1 and messages[0].startswith(f"{NOTEBOOK}: line ")
    assert "never loaded as the image's user" in messages[0]
