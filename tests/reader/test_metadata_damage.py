"""Damage in the metadata that uproot decompresses (streamers, tree, MetaData, directory) is a physlite error naming
the file, from the reader and from the event model alike: never a bare zlib.error."""

from __future__ import annotations

import random
import shutil

import pytest
import uproot

import physlite
import physlite.events
from physlite.errors import CorruptDataError, PhysliteError
from physlite.reader.catalogue import forget_catalogues


def _blocks(path) -> dict[str, tuple[int, int]]:
    """Where the ZLIB-compressed metadata blocks of the file are: (first byte, length)."""
    with uproot.open(path) as f:
        blocks = {"streamers": (f.file.fSeekInfo, f.file.fNbytesInfo)}
        for name in ("CollectionTree", "MetaData"):
            key = f.key(name)
            blocks[name] = (key.fSeekKey + key.fKeylen, key.fNbytes - key.fKeylen)
    return blocks


def _damaged_copy(source, target, position: int):
    shutil.copy(source, target)
    data = bytearray(target.read_bytes())
    data[position : position + 8] = bytes(byte ^ 0x5A for byte in data[position : position + 8])
    target.write_bytes(bytes(data))
    return target


def _open_read_and_model(path) -> None:
    forget_catalogues()
    with physlite.open(path) as f:
        f.arrays(["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.trackParticleLinks"])
    physlite.events.open_model(path).close()


@pytest.mark.parametrize("block", ["streamers", "CollectionTree", "MetaData"])
def test_corrupt_zlib_block_in_metadata_names_the_file(block, r21_path, tmp_path):
    start, length = _blocks(r21_path)[block]
    path = _damaged_copy(r21_path, tmp_path / f"damaged_{block}.root", start + length // 2)
    with pytest.raises(CorruptDataError, match=rf"{path}: .*decompressing data"):
        _open_read_and_model(path)


def test_random_damage_in_the_metadata_is_always_a_physlite_error(r21_path, tmp_path):
    size = r21_path.stat().st_size
    first = min(start for start, _ in _blocks(r21_path).values())
    positions = random.Random(16).sample(range(first, size - 8), 24)
    outcomes = set()
    for i, position in enumerate(positions):
        path = _damaged_copy(r21_path, tmp_path / f"random_{i}.root", position)
        try:
            _open_read_and_model(path)
            outcomes.add("read")
        except PhysliteError as error:
            assert str(path) in str(error), (position, error)
            outcomes.add(type(error).__name__)
    assert len(outcomes - {"read"}) >= 1  # the damage was noticed at least once
