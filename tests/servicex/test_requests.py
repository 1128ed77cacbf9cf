"""Requests through the client's own adapter: isolation between users, cancel, a restart mid-transform, the
cache, datasets from rucio DIDs."""

from __future__ import annotations

import asyncio
import time

import boto3
import botocore.exceptions
import pytest
from servicex.models import ResultDestination, ResultFormat, TransformRequest

QUERY = '[{"treename": "CollectionTree", "filter_name": ["AnalysisElectronsAuxDyn.pt"]}]'


def _submit(user, files: list[str] | None = None, did: str | None = None, title: str = "t") -> str:
    request = TransformRequest(
        title=title,
        did=did,
        file_list=files,
        selection=QUERY,
        codegen="uproot-raw",
        result_destination=ResultDestination.object_store,
        result_format=ResultFormat.parquet,
    )
    return asyncio.run(user.adapter().submit_transform(request))


def _status(user, request_id: str):
    return asyncio.run(user.adapter().get_transform_status(request_id))


def _wait(user, request_id: str, until, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while True:
        status = _status(user, request_id)
        if until(status):
            return status
        assert time.monotonic() < deadline, f"request {request_id} stuck: {status}"
        time.sleep(0.5)


def _finished(status) -> bool:
    return status.status.value in ("Complete", "Fatal", "Canceled", "Bad Dataset")


def test_two_users_cannot_see_each_other(alice, bob, r22_path):
    request_id = _submit(alice, [str(r22_path)], title="alice's")
    status = _wait(alice, request_id, _finished)
    assert status.status.value == "Complete"
    for method, path in (
        ("GET", f"/servicex/transformation/{request_id}"),
        ("GET", f"/servicex/transformation/{request_id}/results"),
        ("GET", f"/servicex/transformation/{request_id}/cancel"),
        ("DELETE", f"/servicex/transformation/{request_id}"),
    ):
        assert bob.call(method, path).status_code == 404, (method, path)
    assert request_id not in [s.request_id for s in asyncio.run(bob.adapter().get_transforms())]
    # bob's S3 key (from his own status) reads nothing of alice's bucket; alice's reads it
    bobs = _status(bob, _submit(bob, [str(r22_path)], title="bob's"))
    s3 = boto3.client("s3", endpoint_url=f"http://{bobs.minio_endpoint}", region_name="us-east-1",
                      aws_access_key_id=bobs.minio_access_key, aws_secret_access_key=bobs.minio_secret_key)  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3.list_objects_v2(Bucket=request_id)
    alices = boto3.client("s3", endpoint_url=f"http://{status.minio_endpoint}", region_name="us-east-1",
                          aws_access_key_id=status.minio_access_key,
                          aws_secret_access_key=status.minio_secret_key)  # fmt: skip
    [item] = alices.list_objects_v2(Bucket=request_id)["Contents"]
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3.get_object(Bucket=request_id, Key=item["Key"])
    # no token, a garbage token: 401
    assert bob.call("GET", "/servicex/transformation").status_code == 200
    import httpx

    url = bob.adapter().url
    assert httpx.get(f"{url}/servicex/transformation").status_code == 401
    assert httpx.post(f"{url}/token/refresh", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_identical_request_hits_the_cache(alice, r22_path):
    first = _submit(alice, [str(r22_path)], title="cached")
    _wait(alice, first, _finished)
    assert _submit(alice, [str(r22_path)], title="cached") == first


def test_cancel_stops_the_tasks(alice, r22_path):
    request_id = _submit(alice, [str(r22_path)] * 40, title="to cancel")
    _wait(alice, request_id, lambda s: s.files > 0)
    asyncio.run(alice.adapter().cancel_transform(request_id))
    status = _wait(alice, request_id, _finished)
    assert status.status.value == "Canceled"
    time.sleep(3)
    later = _status(alice, request_id)
    print(f"canceled: {later.files_completed}/{later.files} files done")
    assert later.files_completed == status.files_completed < 40


def test_restart_mid_transform_ends_complete(alice, r22_path, servicex_service):
    request_id = _submit(alice, [str(r22_path)] * 30, title="restarted")
    _wait(alice, request_id, lambda s: s.files_completed >= 2)
    servicex_service.kill()
    servicex_service.start()
    status = _wait(alice, request_id, _finished)
    print(f"after a restart: {status.status.value}, {status.files_completed}/{status.files} files")
    assert (status.status.value, status.files_completed, status.files_failed) == ("Complete", 30, 0)


def test_rucio_dataset(alice, rucio, r21_path, r22_path):
    from rucio.client import Client

    client = Client()
    client.add_dataset("test", "physlite.servicex")
    client.attach_dids("test", "physlite.servicex", [{"scope": "test", "name": p.name} for p in (r22_path,)])
    from servicex import ProgressBarFormat, dataset, deliver, query

    spec = {
        "General": {"OutputFormat": "parquet", "Delivery": "LocalCache"},
        "Sample": [{"Name": "from-rucio", "Dataset": dataset.Rucio("test:physlite.servicex"),
                    "Query": query.UprootRaw([{"treename": "CollectionTree",
                                               "filter_name": ["AnalysisElectronsAuxDyn.pt"]}])}],
    }  # fmt: skip
    delivered = deliver(
        spec, config_path=str(alice.config), progress_bar=ProgressBarFormat.none, fail_if_incomplete=False
    )
    print("client delivered from rucio:", delivered["from-rucio"])
    [status] = [s for s in asyncio.run(alice.adapter().get_transforms()) if s.title == "from-rucio"]
    assert status.files_failed == 0, alice.failures(status.request_id)
    import awkward as ak
    import uproot

    [path] = delivered["from-rucio"]
    with uproot.open(r22_path) as f:
        expected = f["CollectionTree"]["AnalysisElectronsAuxDyn.pt"].array()
    assert ak.to_list(ak.from_parquet(path)["AnalysisElectronsAuxDyn.pt"]) == ak.to_list(expected)
    [dataset_row] = [d for d in asyncio.run(alice.adapter().get_datasets()) if d.name.startswith("rucio://")]
    assert dataset_row.n_files == 1
