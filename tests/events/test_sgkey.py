"""The StoreGate hash of container names, checked against Athena's test vectors and a real EventFormat."""

from __future__ import annotations

import pytest

from physlite.events.eventformat import read_event_format
from physlite.events.sgkey import CLIDS, clid_of, crc64, crc64addint, element_class, sgkey

# CxxUtils/SGTools crc64 regression test inputs and digests
ATHENA_IN_1 = (
    "alkdkjasldjaldjalkdjaldjoqiwj;lknnfaoiuuhewfuasuhfaiuuhffiuuhaffoiuahfefiuauheofiuhapkjjjhdhfpiauw3hpkja"
    "jshhdfpkkuawheoiuahwefpiuawhfeiauehfpiauwehfpawieufhpaw"
)
ATHENA_IN_2 = ATHENA_IN_1.replace("aldjoqiwj", "alejoqiwj").replace("piauw3hp", "piauw2hp")


def test_crc64_matches_athena_test_vectors():
    assert f"{crc64(ATHENA_IN_1):016X}" == "047BDD061CE68225"
    assert f"{crc64(ATHENA_IN_2):016X}" == "6051B184A58A80C6"


@pytest.mark.parametrize("value", [54356, 9812674, 1287425431])
def test_addint_equals_hashing_the_integer_bytes(value):
    tail = bytes((value >> (8 * i)) & 0xFF for i in range((value.bit_length() + 7) // 8))
    assert crc64addint(crc64(ATHENA_IN_1), value) == crc64(ATHENA_IN_1.encode() + tail)


def test_every_container_of_the_r21_event_format_hashes_to_its_key(r21_path):
    event_format = read_event_format(r21_path)
    assert event_format is not None and len(event_format) == 1079
    checked = 0
    for key, (name, class_name) in event_format.items():
        if clid_of(class_name) is None:
            continue
        assert sgkey(name, class_name) == key, name
        checked += 1
    # every CLID of the table is used by some container of the file, so each one is verified
    classes = {element_class(c) for _, c in event_format.values()}
    assert set(CLIDS) - {"xAOD::MissingETContainer", "xAOD::EventInfo"} <= classes
    assert checked > 300


def test_known_hashes():
    assert sgkey("InDetTrackParticles", "DataVector<xAOD::TrackParticle_v1>") == 0x1D3890DB
    assert sgkey("AnalysisElectrons", "xAOD::Electron") == 0x3902FEC0
    assert clid_of("xAOD::ElectronAuxContainer_v3") is None


def test_unknown_class_is_an_error():
    with pytest.raises(ValueError, match="no CLID known"):
        sgkey("Something", "xAOD::NoSuchThing_v1")
