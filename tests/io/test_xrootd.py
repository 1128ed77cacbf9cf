"""root:// (XRootD vector reads) and XrdHttp against the Debian XRootD server in its own network namespace."""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from servers.common import free_port
from servers.faulty import SilentHost

from physlite.io import NotFound, RemoteError, RemoteTimeout, open_source
from physlite.io.metadata import PlanStore
from physlite.io.xrootd import MAX_CHUNKS, XRootDSource


def _check(source, data: bytes, starts, stops) -> None:
    buffer, offsets = source.fetch(starts, stops)
    for start, stop, offset in zip(starts.tolist(), stops.tolist(), offsets.tolist(), strict=True):
        assert bytes(buffer[offset : offset + stop - start]) == data[start:stop]


def test_vector_reads_are_identical_to_local(xrootd, physlite_path):
    data = physlite_path.read_bytes()
    starts = np.arange(0, len(data) - 200, 500)  # disjoint ranges: more than one vector read may carry
    stops = starts + np.arange(len(starts)) % 200
    with open_source(xrootd.url(physlite_path.name), metadata_cache=False, gap=0) as source:
        assert isinstance(source, XRootDSource)
        assert source.size == len(data)
        before = source.stats.requests
        _check(source, data, starts, stops)
        assert source.stats.requests - before >= len(starts) // MAX_CHUNKS > 1
        _check(source, data, np.array([0]), np.array([len(data)]))


def test_uproot_metadata_over_root_and_one_round_reopen(xrootd, r22_path):
    store = PlanStore()
    url = xrootd.url(r22_path.name)
    with open_source(url, metadata_cache=store) as first:
        tree = uproot.open(first.file_like())["CollectionTree"]
        local = uproot.open(r22_path)["CollectionTree"]
        assert (
            tree["AnalysisJetsAuxDyn.pt"].array().to_list()
            == local["AnalysisJetsAuxDyn.pt"].array().to_list()
        )
    with open_source(url, metadata_cache=store) as again:
        uproot.open(again.file_like())["CollectionTree"].keys()
        assert again.stats.rounds == 2  # open (with stat) and one vector read of the whole plan


def test_missing_file_is_not_found(xrootd):
    url = xrootd.url("missing.root")
    with pytest.raises(NotFound, match=r"missing\.root: file does not exist") as caught:
        open_source(url, metadata_cache=False)
    assert caught.value.location == url


def test_xrdhttp_serves_the_same_bytes_over_https_code_path(xrootd, r22_path):
    data = r22_path.read_bytes()
    with open_source(xrootd.http_url(r22_path.name), metadata_cache=False) as source:
        assert source.size == len(data)
        rng = np.random.default_rng(3)
        starts = rng.integers(0, len(data) - 1, 300)
        _check(source, data, starts, np.minimum(len(data), starts + 5000))


def test_refused_root_connection_is_an_error_naming_the_url():
    url = f"root://127.0.0.1:{free_port()}//data/file.root"
    with pytest.raises((RemoteError, RemoteTimeout), match=r"127\.0\.0\.1:\d+//data/file\.root: open failed"):
        open_source(url, timeout=1, retries=1, metadata_cache=False)


def test_dead_root_host_times_out():
    host = SilentHost()
    try:
        with pytest.raises(RemoteTimeout, match="open failed"):
            open_source(
                f"root://127.0.0.1:{host.port}//file.root", timeout=1, retries=1, metadata_cache=False
            )
    finally:
        host.close()


def test_closing_does_not_wait_for_the_server_but_the_file_gets_closed(xrootd, r22_path):
    import time

    from physlite.io import xrootd as xrootd_module

    files = []
    for _ in range(5):
        with open_source(xrootd.url(r22_path.name), metadata_cache=False) as source:
            files.append(source._file)

    def pending() -> bool:
        with xrootd_module._closing_lock:
            return bool(xrootd_module._closing) or any(f.is_open() for f in files)

    deadline = time.monotonic() + 10
    while pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(f.is_open() for f in files)  # every close was answered
    with xrootd_module._closing_lock:
        assert not xrootd_module._closing  # and the objects were let go
