"""Bad input gives a physlite error naming the file and branch, and the CLI exits non-zero without a traceback."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import uproot

import physlite
from physlite.cli import main
from physlite.errors import (
    BranchNotFoundError,
    CorruptDataError,
    FileOpenError,
    NotROOTFileError,
    PhysliteError,
    TreeNotFoundError,
    UnsupportedTypeError,
)


def test_missing_file(tmp_path):
    with pytest.raises(FileOpenError, match=r"nope\.root: file does not exist"):
        physlite.open(tmp_path / "nope.root")


def test_not_a_root_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not ROOT\n")
    with pytest.raises(NotROOTFileError, match=re.escape(str(path))):
        physlite.open(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.root"
    path.write_bytes(b"")
    with pytest.raises(NotROOTFileError, match=r"empty\.root"):
        physlite.open(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_truncated_file(r22_path, tmp_path, fraction):
    data = r22_path.read_bytes()
    path = tmp_path / "truncated.root"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(PhysliteError, match=r"truncated\.root"), physlite.open(path) as f:
        f.arrays([n for n in f.keys() if f.info(n).layout is not None])


def test_missing_tree(tmp_path):
    path = tmp_path / "other.root"
    with uproot.recreate(path) as out:
        out.mktree("Events", {"x": np.int32}).extend({"x": np.arange(3, dtype=np.int32)})
    with pytest.raises(
        TreeNotFoundError, match=r"other.root has no tree 'CollectionTree' \(trees in the file: Events"
    ):
        physlite.open(path)


def test_unknown_branch(r22_path):
    with (
        physlite.open(r22_path) as f,
        pytest.raises(BranchNotFoundError, match=r"no branch 'AnalysisElectronsAuxDyn\.ptt'"),
    ):
        f.arrays(["AnalysisElectronsAuxDyn.ptt"])


def test_unsupported_type_names_file_and_branch(r22_path):
    with physlite.open(r22_path) as f, pytest.raises(UnsupportedTypeError) as error:
        f.arrays(["AnalysisElectrons"])
    assert "PHYSLITE_example.root" in str(error.value) and "AnalysisElectrons" in str(error.value)
    assert "DataVector<xAOD::Electron_v1>" in str(error.value)


def test_corrupt_basket_names_branch(r22_path, tmp_path):
    path = tmp_path / "corrupt.root"
    shutil.copy(r22_path, path)
    name = "AnalysisElectronsAuxDyn.pt"
    with physlite.open(path) as f:
        info = f.info(name)
    seek, size = int(info.seeks[0]), int(info.nbytes[0])
    data = bytearray(path.read_bytes())
    middle = seek + size // 2
    data[middle : middle + 40] = bytes(40)  # zero the middle of the compressed payload
    path.write_bytes(bytes(data))
    with (
        physlite.open(path) as f,
        pytest.raises(CorruptDataError, match=rf"corrupt.root: branch {name}: basket 0"),
    ):
        f.arrays([name])


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not ROOT")
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("physlite: error:") and "notes.txt" in err and "Traceback" not in err


def test_cli_unknown_branch_exits_non_zero(r22_path, capsys):
    assert main(["read", str(r22_path), "NoSuchBranch"]) == 1
    assert "no branch 'NoSuchBranch'" in capsys.readouterr().err
