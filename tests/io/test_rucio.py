"""rucio DIDs against a real rucio server (SQLite) on loopback, with replicas on nginx (https) and XRootD."""

from __future__ import annotations

import numpy as np
import pytest

from physlite.io import NotFound, RucioError, open_source
from physlite.io.http import HTTPSource
from physlite.io.rucio import list_pfns, parse_did
from physlite.io.xrootd import XRootDSource


def _same_bytes(source, data: bytes) -> None:
    starts = np.arange(0, len(data) - 1000, 7919)
    buffer, offsets = source.fetch(starts, starts + 1000)
    for start, offset in zip(starts.tolist(), offsets.tolist(), strict=True):
        assert bytes(buffer[offset : offset + 1000]) == data[start : start + 1000]


def test_did_forms():
    assert parse_did("rucio://test/PHYSLITE_example.root") == ("test", "PHYSLITE_example.root")
    assert parse_did("mc20_13TeV:DAOD_PHYSLITE.123._000001.pool.root.1") == (
        "mc20_13TeV",
        "DAOD_PHYSLITE.123._000001.pool.root.1",
    )
    with pytest.raises(RucioError, match="not a rucio DID"):
        parse_did("rucio:///no-scope")


def test_scheme_preference_picks_the_replica(rucio, nginx, r22_path):
    data = r22_path.read_bytes()
    with open_source(
        "rucio://test/PHYSLITE_example.root", schemes=["root", "https"], ca_file=str(nginx.cert)
    ) as s:
        assert isinstance(s, XRootDSource) and s.rse == "XROOTD_DISK"
        _same_bytes(s, data)
    with open_source("test:PHYSLITE_example.root", schemes=["https", "root"], ca_file=str(nginx.cert)) as s:
        assert isinstance(s, HTTPSource) and s.rse == "NGINX_DISK"
        assert s.did == "test:PHYSLITE_example.root"
        _same_bytes(s, data)


def test_rse_expression_restricts_the_replicas(rucio, nginx):
    pfns = list_pfns("test:PHYSLITE_example.root", schemes=["root", "https"], rse_expression="NGINX_DISK")
    assert [rse for _, rse in pfns] == ["NGINX_DISK"]
    assert pfns[0][0] == f"https://127.0.0.1:{nginx.https_port}/data/test/PHYSLITE_example.root"


def test_broken_replica_falls_back_to_the_next(rucio, nginx, r21_path):
    # the r21 file is registered on XROOTD_DISK but absent there: the https replica is read instead
    with open_source(f"test:{r21_path.name}", schemes=["root", "https"], ca_file=str(nginx.cert)) as source:
        assert source.rse == "NGINX_DISK"
        _same_bytes(source, r21_path.read_bytes())


def test_unknown_did_is_not_found(rucio):
    with pytest.raises(NotFound, match=r"test:nothing\.root: rucio knows no such DID"):
        open_source("test:nothing.root")


def test_did_without_readable_replica_lists_every_failure(rucio, nginx):
    with pytest.raises(
        RucioError, match=r"no replica could be opened: .*NGINX_DISK.*404.*XROOTD_DISK.*does not exist"
    ):
        open_source(
            "test:ghost.root", schemes=["https", "root"], ca_file=str(nginx.cert), metadata_cache=False
        )


def test_no_replica_with_the_wanted_scheme(rucio):
    with pytest.raises(
        RucioError, match=r"no disk replica matching 'NGINX_DISK' with a scheme in \['root'\]"
    ):
        open_source("test:PHYSLITE_example.root", schemes=["root"], rse_expression="NGINX_DISK")


def test_missing_rucio_configuration_is_a_clear_error(monkeypatch, tmp_path):
    from rucio.common.config import clean_cached_config

    monkeypatch.setenv("RUCIO_CONFIG", str(tmp_path / "absent.cfg"))
    clean_cached_config()  # rucio caches its configuration for the process
    try:
        with pytest.raises(
            RucioError, match=r"data:myfile\.root: read as a rucio DID, but the rucio client config"
        ):
            open_source("data:myfile.root")
    finally:
        monkeypatch.undo()
        clean_cached_config()
