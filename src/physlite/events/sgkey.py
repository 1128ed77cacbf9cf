"""The StoreGate key hash that ElementLinks store in ``m_persKey``.

Athena names the container an ElementLink points to by a 30-bit hash of the container's StoreGate key (its
name) and the class ID (CLID) of the container type: ``crc64addint(crc64(name), clid) & (2**30 - 1)``, with the
bit-reflected CRC-64 of ``CxxUtils`` (polynomial ``0xad93d23594c935a9``, initial value all ones). Files with
full metadata list the hashes in their EventFormat; for files without it (e.g. ``PHYSLITE_example.root``) the
hash is computed here from the container names present in the file.

Example:
    >>> from physlite.events.sgkey import sgkey
    >>> hex(sgkey("InDetTrackParticles", "xAOD::TrackParticle"))
    '0x1d3890db'
"""

from __future__ import annotations

import re

import numpy as np

SGKEY_BITS = 30
_SGKEY_MASK = (1 << SGKEY_BITS) - 1
_POLYNOMIAL = 0xAD93D23594C935A9
_INITIAL = 0xFFFFFFFFFFFFFFFF

# CLIDs of the xAOD container types that ElementLinks in PHYSLITE point to (the values of the CLASS_DEF
# macros in the xAOD packages, keyed by element class without version). Each is checked against the hashes of
# the r21 test file's EventFormat by tests/events/test_sgkey.py.
CLIDS: dict[str, int] = {
    "xAOD::BTagging": 1264356158,
    "xAOD::BTagVertex": 1158124735,
    "xAOD::CaloCluster": 1219821989,
    "xAOD::Electron": 1087532415,
    "xAOD::Jet": 1244316195,
    "xAOD::Muon": 1178459224,
    "xAOD::MuonSegment": 1129401482,
    "xAOD::PFO": 1177172577,
    "xAOD::Photon": 1105575213,
    "xAOD::TauJet": 1177172564,
    "xAOD::TauTrack": 1306133771,
    "xAOD::TrackParticle": 1287425431,
    "xAOD::TrigComposite": 1333228823,
    "xAOD::TruthEvent": 1200227006,
    "xAOD::TruthParticle": 1237340765,
    "xAOD::TruthVertex": 1239726567,
    "xAOD::Vertex": 1092961325,
    "xAOD::EventInfo": 45903698,
    "xAOD::MissingETContainer": 1103569747,
}


def _reflect64(value: int) -> int:
    return int(f"{value:064b}"[::-1], 2)


def _crc_table() -> np.ndarray:
    poly = _reflect64(_POLYNOMIAL)
    table = np.zeros(256, dtype=np.uint64)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_TABLE = [int(x) for x in _crc_table()]


def crc64(data: str | bytes) -> int:
    """The CRC-64 of ``CxxUtils::crc64`` (bytewise form).

    Example:
        >>> f"{crc64('abc'):016X}"
        'F10896EFC03E0514'
    """
    raw = data.encode() if isinstance(data, str) else data
    crc = _INITIAL
    for byte in raw:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def crc64addint(crc: int, value: int) -> int:
    """Extend a CRC-64 by the bytes of an unsigned integer, least significant first (``CxxUtils::crc64addint``)."""
    while value > 0:
        crc = _TABLE[(crc ^ value) & 0xFF] ^ (crc >> 8)
        value >>= 8
    return crc


def element_class(type_name: str) -> str | None:
    """The xAOD element class without version of a container type name, or None when it is not an xAOD type.

    Example:
        >>> element_class("DataVector<xAOD::TrackParticle_v1>")
        'xAOD::TrackParticle'
        >>> element_class("xAOD::ElectronAuxContainer_v3")
        'xAOD::Electron'
    """
    match = re.search(r"(xAOD::[A-Za-z0-9]+?)(?:AuxContainer|AuxInfo)?(?:_v\d+)?\s*>*\s*$", type_name.strip())
    return match.group(1) if match else None


def clid_of(type_name: str) -> int | None:
    """The CLID of the container type holding elements of ``type_name`` (see :func:`element_class`); None for
    auxiliary stores (``...AuxContainer``), which have CLIDs of their own and are never link targets."""
    if "Aux" in type_name:
        return None
    cls = element_class(type_name)
    return CLIDS.get(cls) if cls else None


def sgkey(name: str, type_name: str | int) -> int:
    """The 30-bit StoreGate hash of container ``name`` of type ``type_name`` (a class name or a CLID).

    Example:
        >>> hex(sgkey("TruthParticles", 1237340765))
        '0x2784318b'
    """
    clid = type_name if isinstance(type_name, int) else clid_of(type_name)
    if clid is None:
        raise ValueError(f"no CLID known for type {type_name!r} of container {name!r}")
    return crc64addint(crc64(name), clid) & _SGKEY_MASK
