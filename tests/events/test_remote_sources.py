"""physlite.events takes every location physlite.open takes: rucio DIDs (``scope:name`` and ``rucio://``)
against the real rucio server of the io tests (replicas on nginx https and XRootD), equal to the local file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import awkward as ak
import dask_awkward as dak
import pytest

import physlite.events
import physlite.reader.file as reader_file
from physlite.events.eventformat import computed_key_map
from physlite.events.factory import container_classes
from physlite.io.metadata import default_store
from physlite.reader.catalogue import forget_catalogues


def _load_io_fixtures():
    # the servers (nginx, XRootD, rucio) are tests/io's fixtures, loaded from there rather than duplicated
    path = Path(__file__).resolve().parents[1] / "io" / "conftest.py"
    spec = importlib.util.spec_from_file_location("events_tests_io_servers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_io = _load_io_fixtures()


def _for_this_module(definition):
    # module scope: these servers stop before tests/io (and tests/notebooks) start their own
    return pytest.fixture(scope="module", name=definition.name)(definition.__wrapped__)


served, nginx, xrootd = (_for_this_module(f) for f in (_io.served, _io.nginx, _io.xrootd))


@pytest.fixture(scope="module")
def rucio(tmp_path_factory, nginx, xrootd, r21_path, r22_path):
    from rucio.common.config import clean_cached_config

    # the rucio client caches its configuration per process: read this server's, and forget it afterwards so
    # that the rucio servers of later test folders are not mistaken for this one
    clean_cached_config()
    try:
        yield from _io.rucio.__wrapped__(tmp_path_factory, nginx, xrootd, r21_path, r22_path)
    finally:
        clean_cached_config()


@pytest.fixture
def rucio_env(rucio, nginx, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.cert))
    monkeypatch.setenv("RUCIO_CONFIG", str(rucio.client_config))


@pytest.mark.parametrize("form", ["scope:name", "rucio://scope/name"])
def test_events_of_a_did_equal_the_local_events(rucio_env, r21_path, form):
    # r21: the file with EventFormat metadata, and links into InDetTrackParticles to resolve
    did = f"test:{r21_path.name}" if form == "scope:name" else f"rucio://test/{r21_path.name}"
    remote = physlite.events(did, mode="eager", collections=["Electrons", "InDetTrackParticles"])
    local = physlite.events(r21_path, mode="eager", collections=["Electrons", "InDetTrackParticles"])
    assert len(remote) == len(local) == 40
    assert ak.sum(ak.num(local.Electrons.pt, axis=1)) > 0
    assert ak.array_equal(remote.Electrons.pt, local.Electrons.pt)
    z0 = local.Electrons.trackParticles.z0
    assert ak.sum(ak.num(ak.flatten(z0, axis=1), axis=1)) > 0
    assert ak.array_equal(remote.Electrons.trackParticles.z0, z0)


def test_model_of_a_did_takes_the_link_keys_from_the_files_event_format(rucio_env, r21_path):
    model = physlite.events.open_model(f"test:{r21_path.name}", collections=["Electrons"])
    try:
        assert model.key_map_source == "EventFormat"
        assert model.num_entries == 40
    finally:
        model.close()


@pytest.fixture
def fresh_metadata():
    """No catalogue or metadata plan of an earlier test: the first open of a file goes to the network."""
    forget_catalogues()
    default_store().forget()
    yield
    forget_catalogues()
    default_store().forget()


@pytest.mark.parametrize("protocol", ["https", "root"])
def test_remote_links_come_from_the_files_own_event_format(
    protocol, nginx, xrootd, r21_path, monkeypatch, fresh_metadata
):
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.cert))
    url = nginx.url(r21_path.name) if protocol == "https" else xrootd.url(r21_path.name)
    read_from = []
    reader_of_event_format = reader_file.event_format_bytes

    def spy(source):
        read_from.append(source.location)
        return reader_of_event_format(source)

    monkeypatch.setattr(reader_file, "event_format_bytes", spy)
    local = physlite.events.open_model(r21_path)
    computed = computed_key_map(container_classes(local.reader, local.schema))
    local.close()

    def requests_to_open(opener) -> int:
        forget_catalogues()
        opened = opener(url)
        source = (opened.reader if hasattr(opened, "reader") else opened)._source
        try:
            return source.stats.requests
        finally:
            if hasattr(opened, "key_map"):
                assert opened.key_map_source == "EventFormat"
                assert opened.key_map == local.key_map
                assert set(opened.key_map) - set(computed)  # hashes that only the file's EventFormat lists
            opened.close()

    plain_first = requests_to_open(physlite.open)  # the reader alone does not read the EventFormat
    default_store().forget()
    events_first = requests_to_open(physlite.events.open_model)
    events_again = requests_to_open(physlite.events.open_model)
    plain_again = requests_to_open(physlite.open)
    assert read_from == [str(r21_path), url, url]
    assert events_first == plain_first + 1  # a new file: one more request, for the EventFormat's basket
    assert events_again == plain_again  # its metadata plan holds the EventFormat: read in the first round


def test_dask_events_of_a_did(rucio_env, r22_path):
    events = physlite.events(f"test:{r22_path.name}", mode="dask", chunk_size=40)
    assert events.npartitions == 3
    counts = dak.num(events.Jets.pt, axis=1).compute(scheduler="sync")
    assert counts.tolist() == ak.num(physlite.events(r22_path).Jets.pt, axis=1).tolist()


def test_unknown_did_names_the_did(rucio_env):
    with pytest.raises(physlite.errors.PhysliteError, match=r"test:nothing\.root"):
        physlite.events("test:nothing.root")
