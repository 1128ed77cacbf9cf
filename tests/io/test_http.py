"""https/http sources against a real nginx on loopback: bit-identical reads, metadata plans, auth errors."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

import physlite
import physlite.io.remote as remote_module
from physlite.io import AccessDenied, NotFound, RangeError, RemoteError, open_source
from physlite.io.connections import close_idle_connections
from physlite.io.http import HTTPSource
from physlite.io.metadata import PlanStore
from physlite.reader.catalogue import forget_catalogues

NAME = "PHYSLITE_example.root"


def _random_ranges(size: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, size - 1, n)
    stops = np.minimum(size, starts + rng.integers(0, 40_000, n))
    return starts, stops


def _assert_same_bytes(source, data: bytes, starts, stops) -> None:
    buffer, offsets = source.fetch(starts, stops)
    assert buffer.dtype == np.uint8 and offsets.dtype == np.int64
    for start, stop, offset in zip(starts.tolist(), stops.tolist(), offsets.tolist(), strict=True):
        assert bytes(buffer[offset : offset + stop - start]) == data[start:stop]


@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
def test_remote_bytes_are_identical_to_local(nginx, r22_path, https):
    data = r22_path.read_bytes()
    with open_source(nginx.url(NAME, https=https), ca_file=str(nginx.cert), metadata_cache=False) as source:
        assert isinstance(source, HTTPSource)
        assert source.size == len(data)
        _assert_same_bytes(source, data, *_random_ranges(len(data), 500, seed=1))
        _assert_same_bytes(source, data, np.array([0]), np.array([len(data)]))
        assert source.stats.bytes >= len(data)


def test_uproot_reads_metadata_and_arrays_through_file_like(nginx, r22_path):
    names = [
        "EventInfoAuxDyn.eventNumber",
        "AnalysisJetsAuxDyn.pt",
        "AnalysisElectronsAuxDyn.trackParticleLinks",
    ]
    local = uproot.open(r22_path)["CollectionTree"].arrays(names)
    with open_source(nginx.url(NAME), ca_file=str(nginx.cert), metadata_cache=False) as source:
        tree = uproot.open(source.file_like())["CollectionTree"]
        assert tree.num_entries == 100
        remote = tree.arrays(names)
    for name in names:
        assert remote[name].to_list() == local[name].to_list()


def test_parallel_fetch_uses_the_configured_connections_with_keep_alive(nginx, r22_path):
    data = r22_path.read_bytes()
    close_idle_connections()
    nginx.clear_log()
    with open_source(
        nginx.url(NAME), ca_file=str(nginx.cert), concurrency=3, gap=0, metadata_cache=False
    ) as source:
        for seed in range(3):
            _assert_same_bytes(source, data, *_random_ranges(len(data), 200, seed=seed))
        stats = source.stats
    log = nginx.access_log()
    assert len(log) == stats.requests > 3
    assert len({entry["connection"] for entry in log}) == stats.connections <= 3
    assert all(entry["status"] == 206 for entry in log)


def test_metadata_plan_makes_reopening_one_round(nginx, tmp_path):
    store = PlanStore(tmp_path / "plans")
    url = nginx.url(NAME)
    with open_source(url, ca_file=str(nginx.cert), metadata_cache=store) as first:
        uproot.open(first.file_like())["CollectionTree"].keys()
        planned = first.plan().ranges
    assert planned[0] == (0, 403)  # uproot's first read: the file header
    nginx.clear_log()
    # a fresh store on the same folder: the plan comes from disk
    with open_source(url, ca_file=str(nginx.cert), metadata_cache=PlanStore(tmp_path / "plans")) as again:
        uproot.open(again.file_like())["CollectionTree"].keys()
        assert again.stats.rounds == 1
        assert again.stats.requests == len(planned)
        assert again.stats.bytes == sum(stop - start for start, stop in planned)
    assert len(nginx.access_log()) == len(planned)


def test_sibling_file_of_a_dataset_opens_in_one_round(nginx):
    store = PlanStore()
    with open_source(nginx.url(NAME), ca_file=str(nginx.cert), metadata_cache=store) as first:
        uproot.open(first.file_like())["CollectionTree"].keys()
    with open_source(
        nginx.url("sibling_of_example.root"), ca_file=str(nginx.cert), metadata_cache=store
    ) as other:
        assert uproot.open(other.file_like())["CollectionTree"].num_entries == 100
        assert other.stats.rounds == 1
        head, tail = store.sibling(nginx.url(NAME)).head_and_tail()
        assert other.stats.bytes <= head + tail


def test_missing_file_is_not_found_naming_the_url(nginx):
    url = nginx.url("missing.root")
    with pytest.raises(NotFound, match=r"HTTP 404") as caught:
        open_source(url, ca_file=str(nginx.cert))
    assert caught.value.location == url


def test_forbidden_is_access_denied(nginx):
    with pytest.raises(AccessDenied, match=r"/forbidden/PHYSLITE_example\.root: HTTP 403"):
        open_source(nginx.url(NAME, area="forbidden"), ca_file=str(nginx.cert))


def test_bearer_token_opens_protected_files_and_its_absence_is_401(nginx, r22_path, monkeypatch):
    for variable in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(variable, raising=False)
    url = nginx.url(NAME, area="protected")
    with pytest.raises(AccessDenied, match="HTTP 401"):
        open_source(url, ca_file=str(nginx.cert), token="", metadata_cache=False)
    with pytest.raises(AccessDenied, match="HTTP 401"):
        open_source(url, ca_file=str(nginx.cert), token="wrong", metadata_cache=False)
    monkeypatch.setenv("BEARER_TOKEN", nginx.token)  # WLCG token discovery
    with open_source(url, ca_file=str(nginx.cert), metadata_cache=False) as source:
        _assert_same_bytes(source, r22_path.read_bytes(), np.array([0, 5000]), np.array([100, 90_000]))


def test_signed_url_signature_never_appears_in_errors(nginx):
    url = nginx.url("missing.root") + "?X-Goog-Signature=topsecret123&X-Goog-Expires=600"
    with pytest.raises(NotFound) as caught:
        open_source(url, ca_file=str(nginx.cert))
    assert "topsecret123" not in str(caught.value)
    assert "X-Goog-Signature=REDACTED" in str(caught.value)


def test_signed_url_query_is_sent_and_plans_ignore_it(nginx, r22_path):
    store = PlanStore()
    base = nginx.url(NAME)
    with open_source(base + "?sig=one", ca_file=str(nginx.cert), metadata_cache=store) as source:
        uproot.open(source.file_like())["CollectionTree"].keys()
    assert store.exact(base + "?sig=two") is not None


def test_untrusted_certificate_is_a_clear_error(nginx):
    with pytest.raises(RemoteError, match="certificate verification failed"):
        open_source(nginx.url(NAME), metadata_cache=False)


def test_range_outside_the_remote_file_is_refused_before_any_request(nginx):
    with open_source(nginx.url(NAME), ca_file=str(nginx.cert), metadata_cache=False) as source:
        requests = source.stats.requests
        with pytest.raises(RangeError, match=r"outside the file of 1641551 bytes"):
            source.fetch(np.array([0]), np.array([source.size + 1]))
        assert source.stats.requests == requests


def test_prefetches_issued_together_are_coalesced_across_calls(nginx, r22_path):
    data = r22_path.read_bytes()
    with open_source(nginx.url(NAME), ca_file=str(nginx.cert), gap=0, metadata_cache=False) as source:
        before = source.stats.requests
        # like one branch's baskets per call: interleaved ranges, neighbours only across calls
        calls = [
            (np.arange(i, 1_200_000, 40_000), np.arange(i, 1_200_000, 40_000) + 10_000)
            for i in range(0, 40_000, 10_000)
        ]
        futures = [source.prefetch(starts, stops) for starts, stops in calls]
        for (starts, stops), future in zip(calls, futures, strict=True):
            buffer, offsets = future.result(timeout=60)
            for start, stop, offset in zip(starts.tolist(), stops.tolist(), offsets.tolist(), strict=True):
                assert bytes(buffer[offset : offset + stop - start]) == data[start:stop]
        # 120 ranges, contiguous only when the four calls are merged: a few requests, not 120
        assert source.stats.requests - before <= source.concurrency


def test_scattered_ranges_travel_in_few_multi_range_requests(nginx, r22_path, monkeypatch):
    import physlite.io.http

    data = r22_path.read_bytes()
    starts = np.arange(0, len(data) - 100, 20_000)  # 82 scattered baskets
    stops = starts + 100
    nginx.clear_log()
    with open_source(nginx.url(NAME), ca_file=str(nginx.cert), concurrency=4, metadata_cache=False) as source:
        requests, received = source.stats.requests, source.stats.bytes
        _assert_same_bytes(source, data, starts, stops)
        assert source.stats.requests - requests == 1  # 8 kB: one request on a connection already open
        assert source.stats.bytes - received == int((stops - starts).sum())  # no holes read along
        monkeypatch.setattr(physlite.io.http, "GROUP_BYTES", 1000)  # as if they were big: spread
        _assert_same_bytes(source, data, starts, stops)
        assert source.stats.requests - requests == 1 + 4
        assert source.stats.connections <= 4
    multi = [entry for entry in nginx.access_log() if "," in entry["range"]]
    assert len(multi) == 5 and all(entry["status"] == 206 for entry in multi)


def test_xrdhttp_answers_multi_range_requests(xrootd, r22_path):
    data = r22_path.read_bytes()
    starts = np.arange(0, len(data) - 100, 10_000)
    with open_source(xrootd.http_url(r22_path.name), concurrency=2, metadata_cache=False) as source:
        before = source.stats.requests
        _assert_same_bytes(source, data, starts, starts + 100)
        assert source.stats.requests - before == 1


def test_x509_proxy_is_presented_as_client_certificate(nginx, r22_path, monkeypatch):
    for variable in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR", "X509_USER_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("X509_USER_PROXY", str(nginx.run / "absent"))
    url = nginx.url(NAME, area="x509")
    with pytest.raises(AccessDenied, match="HTTP 403"):
        open_source(url, ca_file=str(nginx.cert), metadata_cache=False)
    monkeypatch.setenv("X509_USER_PROXY", str(nginx.proxy))  # discovery, as after the upload widget
    with open_source(url, ca_file=str(nginx.cert), metadata_cache=False) as source:
        _assert_same_bytes(source, r22_path.read_bytes(), np.array([0, 70_000]), np.array([100, 90_000]))
    monkeypatch.delenv("X509_USER_PROXY")
    with open_source(
        url, ca_file=str(nginx.cert), x509_proxy=str(nginx.proxy), metadata_cache=False
    ) as source:
        assert source.size == r22_path.stat().st_size


def test_next_file_on_the_server_reuses_kept_alive_connections(nginx):
    close_idle_connections()
    store = PlanStore()
    nginx.clear_log()
    with open_source(nginx.url(NAME), ca_file=str(nginx.cert), metadata_cache=store) as first:
        uproot.open(first.file_like())["CollectionTree"].keys()
        assert first.stats.connections >= 1
    first_connections = {entry["connection"] for entry in nginx.access_log()}
    nginx.clear_log()
    with open_source(
        nginx.url("sibling_of_example.root"), ca_file=str(nginx.cert), metadata_cache=store
    ) as other:
        assert other.stats.connections == 0  # no TCP or TLS handshake: one round trip to open
        assert other.stats.rounds == 1
    assert {entry["connection"] for entry in nginx.access_log()} <= first_connections


def test_kept_alive_connection_closed_meanwhile_is_replaced_without_a_retry(nginx, r22_path):
    import socket

    from physlite.io import connections

    data = r22_path.read_bytes()
    close_idle_connections()
    with open_source(nginx.url(NAME), ca_file=str(nginx.cert), metadata_cache=False) as source:
        for pool in connections._idle.values():  # as if the server had closed them while idle
            for connection, _ in pool:
                connection.sock.shutdown(socket.SHUT_RDWR)
        requests, connections_before = source.stats.requests, source.stats.connections
        # outside the bytes read when opening (the first 64 KiB, the last 1 MiB): these go to the server
        _assert_same_bytes(source, data, np.array([100_000, 300_000]), np.array([150_000, 350_000]))
        assert source.stats.requests > requests
        assert source.stats.connections > connections_before  # the dead ones were replaced
        assert source.stats.retries == 0


def test_a_tree_bigger_than_the_tail_guess_costs_one_more_request(nginx, r21_path, monkeypatch):
    # the r21 example's tree key starts 209 KB before the end: a 64 KB guess misses it
    monkeypatch.setattr(remote_module, "DEFAULT_TAIL", 64 * 1024)
    close_idle_connections()
    forget_catalogues()  # read the metadata, even if an earlier test opened this URL
    url = nginx.url(r21_path.name)
    with physlite.open(url, ca_file=str(nginx.cert), metadata_cache=False) as file:
        stats = file._source.stats
        assert file.num_entries == 40
        assert stats.requests == 3  # head and tail in the first round, then the tree key up to the tail
        assert stats.bytes < 64 * 1024 + 64 * 1024 + 209_069 + 1000
