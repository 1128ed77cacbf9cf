"""Requests submitted and followed through the client's own adapter (``servicex.servicex_adapter``), as the
client's ``deliver`` does; for the tests that look at a request's life (status, files, cancel, expiry)."""

from __future__ import annotations

import asyncio
import time

from servicex.models import ResultDestination, ResultFormat, TransformRequest

RETRY_DELAY = 1.0  # seconds before a file's first retry in the tests' service (the service's default is 30)
RESULTS_SECONDS = 8.0  # how long the `expiring_service` keeps results
QUERY = '[{"treename": "CollectionTree", "filter_name": ["AnalysisElectronsAuxDyn.pt"]}]'


def transform_request(files: list[str] | None = None, did: str | None = None, title: str = "t"):
    """One UprootRaw query (QUERY, Parquet) over `files` or a rucio `did`, as the client submits it."""
    return TransformRequest(
        title=title,
        did=did,
        file_list=files,
        selection=QUERY,
        codegen="uproot-raw",
        result_destination=ResultDestination.object_store,
        result_format=ResultFormat.parquet,
    )


def submit(user, files: list[str] | None = None, did: str | None = None, title: str = "t") -> str:
    """Submit `transform_request(files, did, title)` as `user`; the request id."""
    return asyncio.run(user.adapter().submit_transform(transform_request(files, did, title)))


def status_of(user, request_id: str):
    """The request's TransformStatus, as the client reads it."""
    return asyncio.run(user.adapter().get_transform_status(request_id))


def wait_for(user, request_id: str, until, timeout: float = 300):
    """The request's status once `until(status)` holds; fails naming the request after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(user, request_id)
        if until(status):
            return status
        assert time.monotonic() < deadline, f"request {request_id} stuck: {status}"
        time.sleep(0.5)


def finished(status) -> bool:
    """Whether a TransformStatus is final."""
    return status.status.value in ("Complete", "Fatal", "Canceled", "Bad Dataset")


def bucket_objects(status) -> list[str]:
    """The object names in the request's bucket, listed with the owner's read-only key from its status."""
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=f"http://{status.minio_endpoint}", region_name="us-east-1",
        aws_access_key_id=status.minio_access_key, aws_secret_access_key=status.minio_secret_key,
    )  # fmt: skip
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=status.request_id).get("Contents", []))
