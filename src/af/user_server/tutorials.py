"""The tutorials in every new home: the notebooks of the folder ``AF_TUTORIALS_SOURCE`` names (the notebook image
sets it to the tutorials it carries) are copied into ``~/tutorials`` when the user's server starts, never over a
copy the user already has. The local spawners copy from the checkout's notebooks/ with the same function.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as source, tempfile.TemporaryDirectory() as home:
    ...     _ = (Path(source) / "01_welcome.ipynb").write_text("{}")
    ...     [path.name for path in copy_tutorials(Path(source), Path(home))]
    ['01_welcome.ipynb']
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

SOURCE_VARIABLE = "AF_TUTORIALS_SOURCE"
TUTORIALS_FOLDER = "tutorials"


def copy_tutorials(source: Path, home: Path) -> list[Path]:
    """Copy ``source/*.ipynb`` into ``home/tutorials``, leaving files the user already has untouched; the copies made."""
    if not source.is_dir():
        return []
    target = home / TUTORIALS_FOLDER
    copied = []
    for notebook in sorted(source.glob("*.ipynb")):
        destination = target / notebook.name
        if destination.exists():
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, destination)
        copied.append(destination)
    return copied


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "af.user_server.tutorials"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    source = os.environ.get(SOURCE_VARIABLE, "")
    if not source:
        return
    if not Path(source).is_dir():
        serverapp.log.warning(
            "af.user_server.tutorials: %s=%s is not a folder: no tutorials", SOURCE_VARIABLE, source
        )
        return
    copied = copy_tutorials(Path(source), Path.home())
    serverapp.log.info(
        "af.user_server.tutorials: %d tutorial(s) copied into ~/%s", len(copied), TUTORIALS_FOLDER
    )
