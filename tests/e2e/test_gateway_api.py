"""The gateway's HTTP API through the facility's public address: request bodies that are not JSON objects are
client errors (400 with a reason), never server errors."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.e2e

BAD_BODIES = {"not JSON": b"{not json", "an array": b"[]", "a string": b'"x"', "empty": b""}


@pytest.fixture(scope="module")
def api(facility, hub) -> tuple[str, dict[str, str]]:
    headers = {"Authorization": f"jupyterhub {hub.user_token('alice')}", "Content-Type": "application/json"}
    return f"{facility.url}/services/dask-gateway/api/v1", headers


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_cluster_request_is_a_400(api, body):
    url, headers = api
    response = requests.post(f"{url}/clusters/", data=body, headers=headers, timeout=60)
    assert response.status_code == 400, response.text
    assert "/api/v1/clusters/" in response.json()["error"]
    assert "JSON" in response.json()["error"]


def test_malformed_scale_request_is_a_400_and_a_good_one_still_works(api):
    url, headers = api
    created = requests.post(f"{url}/clusters/", json={"cluster_options": {}}, headers=headers, timeout=120)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    try:
        scale = f"{url}/clusters/{name}/scale"
        bad = requests.post(scale, data=b"[1]", headers=headers, timeout=60)
        assert bad.status_code == 400 and "got an array" in bad.json()["error"], bad.text
        # a JSON object with a wrong value is still the route's own 422
        wrong = requests.post(scale, json={"count": -1}, headers=headers, timeout=60)
        assert wrong.status_code == 422, wrong.text
    finally:
        requests.delete(f"{url}/clusters/{name}", headers=headers, timeout=60)
