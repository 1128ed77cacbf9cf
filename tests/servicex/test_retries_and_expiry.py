"""A file whose server is down when first tried is tried again later and delivered, while a file that never
becomes readable is reported in files-failed; and results expire: the request, its listing and its bucket are
removed, and the API answers 404 for it."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager

import boto3
import botocore.exceptions
import pytest
from servers.common import free_port, stop, wait_for_port
from servers.faulty import SCRIPT as FAULTY_SERVER

from tests.servicex.transforms import RESULTS_SECONDS, bucket_objects, finished, status_of, submit, wait_for


def _until_retry_announced(user, service, request_id: str) -> None:
    """Wait until the service has seen the first attempt at file 0 fail and announced another one."""
    announced = f"request {request_id}: file 0: transient error"
    while announced not in service.log.read_text():
        status = status_of(user, request_id)
        assert not finished(status), f"file 0 ended without a retry: {user.failures(request_id)}"
        time.sleep(0.1)


@contextmanager
def _file_server(root, port: int):
    """The file server (tests/servers/faulty_http.py) on `port`, from now on."""
    server = subprocess.Popen([sys.executable, str(FAULTY_SERVER), "--root", str(root), "--port", str(port)])
    try:
        wait_for_port(port, server)
        yield
    finally:
        stop(server)


def test_file_of_a_revived_server_is_retried_and_a_dead_one_fails(alice, servicex_service, faulty, served,
                                                                   r22_path):  # fmt: skip
    port = free_port()  # nothing listens here until the service has seen the first attempt fail
    revived = f"http://127.0.0.1:{port}/ok/0/revived/{r22_path.name}"
    dead = faulty.url("status-503", r22_path.name)  # answers 503 to every request
    request_id = submit(alice, [revived, dead], title="retried")
    _until_retry_announced(alice, servicex_service, request_id)
    with _file_server(served, port):
        status = wait_for(alice, request_id, finished)
    [failure] = alice.failures(request_id)
    print("retried to success:", bucket_objects(status), "| failed for good:", failure["info"])
    assert (status.status.value, status.files_completed, status.files_failed) == ("Complete", 1, 1)
    assert failure["file-path"] == dead
    assert "HTTP 503" in failure["info"] and "(the service tried the file 3 times)" in failure["info"], (
        failure
    )
    [name] = bucket_objects(status)
    assert name.endswith(f"_{r22_path.name}.parquet")


def test_expired_results_are_removed(carol, seaweedfs, r22_path):
    request_id = submit(carol, [str(r22_path)], title="expires")
    status = wait_for(carol, request_id, finished)
    assert status.status.value == "Complete"
    assert len(bucket_objects(status)) == 1  # the results exist once the request is done ...
    admin = boto3.client(
        "s3", endpoint_url=seaweedfs.endpoint, region_name="us-east-1",
        aws_access_key_id=seaweedfs.access_key, aws_secret_access_key=seaweedfs.secret_key,
    )  # fmt: skip
    deadline = time.monotonic() + RESULTS_SECONDS + 30
    while carol.call("GET", f"/servicex/transformation/{request_id}").status_code != 404:
        assert time.monotonic() < deadline, f"request {request_id} did not expire"
        time.sleep(0.5)
    # ... and after RESULTS_SECONDS neither the request, its results nor its bucket are
    answer = carol.call("GET", f"/servicex/transformation/{request_id}/results")
    print("after expiry the service answers:", answer.status_code, answer.json())
    assert answer.status_code == 404 and request_id in answer.json()["message"]
    assert request_id not in [
        t["request_id"] for t in carol.call("GET", "/servicex/transformation").json()["requests"]
    ]
    with pytest.raises(botocore.exceptions.ClientError, match="NoSuchBucket"):
        admin.list_objects_v2(Bucket=request_id)
    # the same query again is transformed anew, not answered from removed results
    again = submit(carol, [str(r22_path)], title="expires")
    assert again != request_id
    status = wait_for(carol, again, finished)
    assert (status.status.value, len(bucket_objects(status))) == ("Complete", 1)


def test_results_live_their_lifetime_after_a_long_request_finished(carol, expiring_service, served, r22_path):
    """A request that ran longer than the results' lifetime (a retry waits longer than it) keeps its results
    once it is done: the lifetime counts from the end, not from the submission."""
    port = free_port()
    request_id = submit(carol, [f"http://127.0.0.1:{port}/ok/0/late/{r22_path.name}"], title="long")
    submitted = time.monotonic()
    _until_retry_announced(carol, expiring_service, request_id)
    with _file_server(served, port):
        status = wait_for(carol, request_id, finished)
    ran = time.monotonic() - submitted
    print(f"the request ran {ran:.1f} s (results live {RESULTS_SECONDS} s): {status.status.value}")
    assert ran > RESULTS_SECONDS
    assert status.status.value == "Complete"
    assert len(bucket_objects(status_of(carol, request_id))) == 1
