"""The catalogue of a file is parsed once per file version and process."""

from __future__ import annotations

import os
import shutil

import physlite
from physlite.io import open_source
from physlite.reader.catalogue import load_catalogue


def test_reopening_reuses_the_catalogue(r22_path, tmp_path):
    path = tmp_path / "copy.root"
    shutil.copy(r22_path, path)
    first = load_catalogue(open_source(path))
    assert load_catalogue(open_source(path)) is first
    with physlite.open(path) as f:
        assert f.num_entries == 100 and "AnalysisElectronsAuxDyn.pt" in f


def test_a_changed_file_is_catalogued_again(r21_path, r22_path, tmp_path):
    path = tmp_path / "changing.root"
    shutil.copy(r22_path, path)
    before = load_catalogue(open_source(path))
    shutil.copy(r21_path, path)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = load_catalogue(open_source(path))
    assert after is not before and after.num_entries == 40
    with physlite.open(path) as f:
        assert f.num_entries == 40
