"""The hash -> container map of a file: its EventFormat metadata, else hashes computed from container names.

Full Athena output has a ``MetaData`` tree whose ``EventFormat`` branch (``xAOD::EventFormat_v1``) lists every
container written with its class and its StoreGate hash (what ElementLinks store in ``m_persKey``). uproot
cannot deserialise that object, so :func:`parse_event_format` reads its four vectors from the raw bytes:
``m_branchNames``, ``m_classNames``, ``m_parentNames`` (strings) and ``m_branchHashes`` (uint32), each as
``[byte count 4][version 2][size 4]`` and its elements (strings: 1 length byte, or 255 and 4 length bytes).

Example:
    >>> key_map = read_event_format("DAOD_PHYSLITE_21.2.108.0.art.pool.root")  # doctest: +SKIP
    >>> key_map[0x1D3890DB]                                                        # doctest: +SKIP
    ('InDetTrackParticles', 'DataVector<xAOD::TrackParticle_v1>')
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from typing import Any

from physlite.errors import CorruptDataError
from physlite.events.sgkey import CLIDS, clid_of, sgkey


def parse_event_format(raw: bytes, where: str = "EventFormat") -> dict[int, tuple[str, str]]:
    """``{hash: (container name, class name)}`` from the raw bytes of one ``xAOD::EventFormat_v1`` entry."""
    pos = 0

    def header() -> int:
        nonlocal pos
        if pos + 10 > len(raw):
            raise CorruptDataError(f"{where}: truncated EventFormat at byte {pos}")
        _, _, size = struct.unpack_from(">IhI", raw, pos)
        pos += 10
        return size

    def strings() -> list[str]:
        nonlocal pos
        out = []
        for _ in range(header()):
            length = raw[pos]
            pos += 1
            if length == 255:
                (length,) = struct.unpack_from(">I", raw, pos)
                pos += 4
            out.append(raw[pos : pos + length].decode("utf-8", "replace"))
            pos += length
        return out

    try:
        names, classes, _parents = strings(), strings(), strings()
        size = header()
        hashes = list(struct.unpack_from(f">{size}I", raw, pos))
    except (IndexError, struct.error) as error:
        raise CorruptDataError(f"{where}: cannot parse EventFormat ({error})") from error
    if not (len(names) == len(classes) == len(hashes)):
        raise CorruptDataError(f"{where}: EventFormat vectors differ in length")
    return {h: (n, c) for n, c, h in zip(names, classes, hashes, strict=True)}


def event_format_of(reader: Any) -> dict[int, tuple[str, str]] | None:
    """The EventFormat of an open file (``physlite.open``), or None when the file has none (e.g. r22 examples)."""
    raw = reader.event_format_bytes()
    if raw is None:
        return None
    return parse_event_format(raw, where=f"{reader.location}: MetaData/EventFormat")


def read_event_format(location: str | os.PathLike[str]) -> dict[int, tuple[str, str]] | None:
    """The EventFormat of the file at ``location`` (anything ``physlite.open`` opens), or None.

    Example:
        >>> read_event_format("DAOD_PHYSLITE_21.2.108.0.art.pool.root")[0x1D3890DB]  # doctest: +SKIP
        ('InDetTrackParticles', 'DataVector<xAOD::TrackParticle_v1>')
    """
    from physlite.events.source import open_reader

    reader = open_reader(location)
    try:
        return event_format_of(reader)
    finally:
        reader.close()


def computed_key_map(container_classes: Mapping[str, str | None]) -> dict[int, tuple[str, str]]:
    """``{hash: (container, class)}`` computed from container names and classes; a container whose class (or
    its CLID) is unknown gets the hash of every known CLID, so links to it still resolve.

    Example:
        >>> computed_key_map({"InDetTrackParticles": "xAOD::TrackParticle"})
        {490246363: ('InDetTrackParticles', 'xAOD::TrackParticle')}
    """
    out: dict[int, tuple[str, str]] = {}
    unknown = []
    for container, cls in container_classes.items():
        if cls and clid_of(cls) is not None:
            out[sgkey(container, cls)] = (container, cls)
        else:
            unknown.append(container)
    for container in unknown:
        for name, clid in CLIDS.items():
            out.setdefault(sgkey(container, clid), (container, name))
    return out
