"""Local source: zero-copy memory map, bounds checks, clear errors naming the path."""

from __future__ import annotations

import os

import numpy as np
import pytest
import uproot

from physlite.errors import FileOpenError, PhysliteError
from physlite.io import LocalSource, NotFound, RangeError, open_source


def test_fetch_is_zero_copy_view_of_the_file(r22_path):
    data = r22_path.read_bytes()
    starts = np.array([0, 1000, 999_000, len(data) - 10])
    stops = np.array([4, 1100, 1_000_000, len(data)])
    with open_source(r22_path) as source:
        assert isinstance(source, LocalSource)
        assert source.size == len(data)
        buffer, offsets = source.fetch(starts, stops)
        assert offsets.tolist() == starts.tolist()
        assert buffer.dtype == np.uint8 and len(buffer) == len(data)
        for start, stop, offset in zip(starts, stops, offsets, strict=True):
            assert bytes(buffer[offset : offset + stop - start]) == data[start:stop]
        assert bytes(buffer[:4]) == b"root"


def test_string_path_and_file_url_open_the_same_file(r22_path):
    with open_source(str(r22_path)) as a, open_source(r22_path.as_uri()) as b:
        assert a.size == b.size == os.path.getsize(r22_path)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "missing.root"
    with pytest.raises(NotFound, match=r"missing\.root: file does not exist") as caught:
        open_source(missing)
    assert isinstance(caught.value, FileOpenError) and isinstance(caught.value, PhysliteError)
    assert caught.value.location == str(missing)


def test_directory_is_refused(tmp_path):
    with pytest.raises(NotFound, match="is a directory"):
        open_source(tmp_path)


def test_range_beyond_the_end_names_the_file(tmp_path):
    path = tmp_path / "short.root"
    path.write_bytes(b"root" + bytes(96))
    with open_source(path) as source, pytest.raises(RangeError, match=r"short.root: byte range \[50, 101\)"):
        source.fetch(np.array([0, 50]), np.array([10, 101]))


def test_empty_file_has_size_zero_and_serves_empty_ranges(tmp_path):
    path = tmp_path / "empty.root"
    path.write_bytes(b"")
    with open_source(path) as source:
        assert source.size == 0
        buffer, offsets = source.fetch(np.array([0]), np.array([0]))
        assert len(buffer) == 0 and offsets.tolist() == [0]


def test_file_like_serves_uproot_metadata(r22_path):
    with open_source(r22_path) as source, source.file_like() as raw:
        tree = uproot.open(raw)["CollectionTree"]
        assert tree.num_entries == 100


def test_prefetch_and_pipeline_return_fetch_results(r22_path):
    data = r22_path.read_bytes()
    groups = [(np.array([i * 1000]), np.array([i * 1000 + 500])) for i in range(6)]
    with open_source(r22_path) as source:
        future = source.prefetch(*groups[0])
        buffer, offsets = future.result()
        assert bytes(buffer[offsets[0] : offsets[0] + 500]) == data[:500]
        got = [bytes(b[o[0] : o[0] + 500]) for b, o in source.pipeline(groups, depth=2)]
    assert got == [data[i * 1000 : i * 1000 + 500] for i in range(6)]


def test_buffers_stay_valid_after_close(r22_path):
    source = open_source(r22_path)
    buffer, _ = source.fetch(np.array([0]), np.array([4]))
    source.close()
    assert bytes(buffer[:4]) == b"root"
