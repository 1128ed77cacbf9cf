"""Requests through the client's own adapter: isolation between users, cancel, a restart mid-transform, the
cache (datasets from rucio DIDs: test_rucio_tokens.py)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import pytest

from tests.servicex.transforms import bucket_objects, finished, status_of, submit, wait_for


def test_two_users_cannot_see_each_other(alice, bob, r22_path):
    request_id = submit(alice, [str(r22_path)], title="alice's")
    status = wait_for(alice, request_id, finished)
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
    bobs = status_of(bob, submit(bob, [str(r22_path)], title="bob's"))
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
    first = submit(alice, [str(r22_path)], title="cached")
    wait_for(alice, first, finished)
    assert submit(alice, [str(r22_path)], title="cached") == first


def test_cancel_stops_the_remaining_files(alice, faulty, r22_path):
    """16 files served slowly; canceled once the first is done: the files not yet opened are never opened, the
    tasks running at the cancel upload nothing, the request stays Canceled."""
    files = [faulty.url("slow", r22_path.name) for _ in range(16)]
    paths = {urlsplit(url).path: url for url in files}

    def opened() -> set[str]:
        return {paths[path] for path in faulty.requests() if path in paths}

    started = time.monotonic()
    request_id = submit(alice, files, title="to cancel")
    wait_for(alice, request_id, lambda s: s.files_completed >= 1)
    one_file = time.monotonic() - started
    asyncio.run(alice.adapter().cancel_transform(request_id))
    status = wait_for(alice, request_id, finished)
    assert status.status.value == "Canceled"
    time.sleep(0.5)  # a task that started just before the cancel has sent its first request by now
    opened_at_cancel, objects_at_cancel = opened(), bucket_objects(status)
    time.sleep(max(3.0, 2 * one_file))  # longer than a file takes
    later = status_of(alice, request_id)
    print(
        f"canceled after {one_file:.1f} s: {later.files_completed}/{later.files} files done, "
        f"{len(opened_at_cancel)} opened, objects {objects_at_cancel}"
    )
    assert (later.status.value, later.files_completed) == ("Canceled", status.files_completed)
    assert opened() == opened_at_cancel, "files were opened after the cancel"
    assert bucket_objects(later) == objects_at_cancel, "outputs were written after the cancel"
    # every completed file's output, and at most one more per worker (an upload that ended as the cancel came)
    assert status.files_completed <= len(objects_at_cancel) <= status.files_completed + 2
    assert len(opened_at_cancel) < len(files)


def test_restart_mid_transform_ends_complete(alice, r22_path, servicex_service):
    request_id = submit(alice, [str(r22_path)] * 30, title="restarted")
    wait_for(alice, request_id, lambda s: s.files_completed >= 2)
    servicex_service.kill()
    servicex_service.start()
    status = wait_for(alice, request_id, finished)
    print(f"after a restart: {status.status.value}, {status.files_completed}/{status.files} files")
    assert (status.status.value, status.files_completed, status.files_failed) == ("Complete", 30, 0)
