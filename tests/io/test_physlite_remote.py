"""physlite.open and physlite.events over https, root:// and rucio read exactly what they read locally."""

from __future__ import annotations

import awkward as ak
import pytest

import physlite
import physlite.events


def _sample_of_keys(path) -> list[str]:
    with physlite.open(path) as file:
        keys = [key for key in file.keys() if file.info(key).layout is not None]
    links = [key for key in keys if "Link" in key]
    return sorted(set(keys[::15] + links))


@pytest.fixture(scope="module")
def local_arrays(r22_path):
    names = _sample_of_keys(r22_path)
    with physlite.open(r22_path) as file:
        return file.arrays(names)


@pytest.mark.parametrize("where", ["https", "root", "rucio"])
def test_remote_arrays_equal_local_arrays(where, request, nginx, r22_path, local_arrays, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.cert))  # how a facility trusts its own CA: no option needed
    if where == "https":
        url = nginx.url(r22_path.name)
    elif where == "root":
        url = request.getfixturevalue("xrootd").url(r22_path.name)
    else:
        request.getfixturevalue("rucio")
        url = f"rucio://test/{r22_path.name}"
    with physlite.open(url) as file:
        assert file.num_entries == 100
        remote = file.arrays(list(local_arrays))
    assert len(local_arrays) > 100
    for name, array in local_arrays.items():
        assert ak.array_equal(remote[name], array, equal_nan=True), name


def test_events_over_https_equal_local_events(nginx, r22_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.cert))
    local = physlite.events(str(r22_path), mode="eager", collections=["Electrons", "Jets"])
    remote = physlite.events(nginx.url(r22_path.name), mode="eager", collections=["Electrons", "Jets"])
    assert ak.array_equal(remote.Electrons.pt, local.Electrons.pt)
    assert ak.array_equal(remote.Jets.eta, local.Jets.eta)
