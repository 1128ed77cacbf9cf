"""Faults of the server or the network: retried where that makes sense, else a clear error naming the URL;
never wrong data, never a hang without a timeout."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from servers.common import free_port
from servers.faulty import SilentHost, start_faulty

from physlite.io import RemoteError, RemoteTimeout, open_source

NAME = "PHYSLITE_example.root"
FAST = {"timeout": 2.0, "retries": 3, "metadata_cache": False}


def _read_everything(source, data: bytes) -> None:
    starts = np.arange(0, len(data), 100_000)
    stops = np.minimum(starts + 90_000, len(data))
    buffer, offsets = source.fetch(starts, stops)
    for start, stop, offset in zip(starts.tolist(), stops.tolist(), offsets.tolist(), strict=True):
        assert bytes(buffer[offset : offset + stop - start]) == data[start:stop]


@pytest.mark.parametrize(
    "mode", ["drop", "status-500", "status-502", "status-503", "status-429", "truncate", "stall"]
)
def test_transient_faults_are_retried_and_bytes_stay_exact(faulty, r22_path, mode):
    data = r22_path.read_bytes()
    # the first two requests of this URL fail: the opening round and then the fetch must recover
    with open_source(faulty.url(mode, NAME, count=2), **FAST) as source:
        assert source.size == len(data)
        _read_everything(source, data)
        assert source.stats.retries >= 1


def test_persistent_500_gives_up_with_the_status_and_url(faulty):
    url = faulty.url("status-500", NAME)
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"HTTP 500 .*after 4 attempts") as caught:
        open_source(url, **FAST)
    assert caught.value.location == url
    assert time.monotonic() - started < 30


def test_stalled_body_times_out_with_a_clear_error(faulty):
    with pytest.raises(RemoteTimeout, match="after 2 attempts"):
        open_source(faulty.url("stall", NAME), timeout=0.5, retries=1, metadata_cache=False)


def test_server_ignoring_ranges_is_refused(faulty):
    with pytest.raises(RemoteError, match=r"ignores Range requests"):
        open_source(faulty.url("norange", NAME), **FAST)


def test_other_bytes_than_asked_are_never_taken_as_data(faulty):
    with pytest.raises(RemoteError, match=r"asked for bytes 0-8191, got 1-8192"):
        open_source(faulty.url("wrongrange", NAME), **FAST)
    # the opening round is answered correctly, the fetch is not
    with (
        open_source(faulty.url("lateshift", NAME, count=2), **FAST) as source,
        pytest.raises(RemoteError, match=r"asked for bytes 500000-599999, got 500001-600000"),
    ):
        source.fetch(np.array([500_000]), np.array([600_000]))


def test_refused_connection_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/data/{NAME}"
    with pytest.raises(
        RemoteError, match=r"connection to 127\.0\.0\.1:\d+ failed.*after 2 attempts"
    ) as caught:
        open_source(url, timeout=1.0, retries=1, metadata_cache=False)
    assert caught.value.location == url


def test_dead_host_times_out_instead_of_hanging():
    host = SilentHost()
    try:
        started = time.monotonic()
        with pytest.raises(RemoteTimeout, match=r"no answer within 0\.5 s"):
            open_source(f"http://127.0.0.1:{host.port}/{NAME}", timeout=0.5, retries=1, metadata_cache=False)
        assert time.monotonic() - started < 10
    finally:
        host.close()


def test_unknown_host_is_not_retried():
    with pytest.raises(RemoteError, match=r"unknown host no-such-host\.invalid"):
        open_source(f"https://no-such-host.invalid/{NAME}", timeout=2, metadata_cache=False)


def test_server_dying_mid_read_is_an_error_not_a_hang(served, r22_path):
    server = start_faulty(served)
    try:
        source = open_source(server.url("slow", NAME), timeout=2.0, retries=2, metadata_cache=False)
        threading.Timer(0.3, server.stop).start()
        with pytest.raises(
            RemoteError, match=r"(transfer broke off|connection to 127\.0\.0\.1).*after 3 attempts"
        ):
            source.fetch(np.array([0]), np.array([source.size]))
        source.close()
    finally:
        server.stop()


def test_server_without_multi_range_gets_single_ranges(faulty, r22_path):
    from physlite.io.http import _NO_MULTIRANGE_HOSTS

    data = r22_path.read_bytes()
    starts = np.arange(0, len(data) - 100, 100_000)
    with open_source(faulty.url("ok", NAME), gap=0, **FAST) as source:
        _assert_bytes(source, data, starts, starts + 100)  # the multi-range answer is a 200: refused unread
        assert f"127.0.0.1:{faulty.port}" in _NO_MULTIRANGE_HOSTS
        before = source.stats.requests
        _assert_bytes(source, data, starts, starts + 100)
        assert source.stats.requests - before == len(starts)  # remembered: no second multi-range attempt
    _NO_MULTIRANGE_HOSTS.discard(f"127.0.0.1:{faulty.port}")


def test_multi_range_body_breaking_off_is_resumed(faulty, r22_path):
    data = r22_path.read_bytes()
    starts = np.arange(0, len(data) - 100, 50_000)
    with open_source(faulty.url("multitruncate", NAME, count=3), gap=0, concurrency=1, **FAST) as source:
        _assert_bytes(source, data, starts, starts + 100)
        assert source.stats.retries >= 1


def _assert_bytes(source, data, starts, stops) -> None:
    buffer, offsets = source.fetch(starts, stops)
    for start, stop, offset in zip(starts.tolist(), stops.tolist(), offsets.tolist(), strict=True):
        assert bytes(buffer[offset : offset + stop - start]) == data[start:stop]


def test_redirect_is_followed_and_its_signature_stays_out_of_messages(faulty, r22_path):
    data = r22_path.read_bytes()
    with open_source(faulty.url("redirect", NAME), **FAST) as source:
        _assert_bytes(source, data, np.arange(0, 1_000_000, 250_000), np.arange(0, 1_000_000, 250_000) + 500)
        assert "/ok/" in source._target.url
        assert "s3cr3t" not in source.location and "s3cr3t" not in repr(source)
