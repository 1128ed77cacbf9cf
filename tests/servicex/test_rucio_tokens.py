"""rucio DIDs delivered with the requesting user's own IAM access token, against a site that requires it
(servers.secure_site: a real rucio server validating JWTs of the test issuer for account jdoe, and storage that
serves only with a valid token). The token reaches the service only as the user's auth_state in the real hub,
read with the user's own hub token at /token/refresh; the service has no rucio account and its workers no
rucio configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import awkward as ak
import boto3
import pytest
import uproot
from servers.secure_site import start_secure_site

from tests.servicex.conftest import User, _user, local_workers
from tests.servicex.gateway_server import set_auth_state
from tests.servicex.service_process import start_service
from tests.servicex.transforms import finished, transform_request, wait_for

DATASET = "test:physlite.tokens"
MANY, COPIES = "test:physlite.many", 6
TOKEN_WAIT = 8.0  # seconds the service waits for the IAM token of a request's owner after a restart
BRANCH = "AnalysisElectronsAuxDyn.pt"


@pytest.fixture(scope="module")
def site(tmp_path_factory, served, r22_path):
    """The secure site with DATASET (the r22 file) and MANY (COPIES names of it), readable by jdoe."""
    from rucio.common.config import clean_cached_config

    copies = []
    for i in range(COPIES):
        copy = served / "test" / f"tokens_copy_{i}.root"
        if not copy.exists():
            copy.symlink_to(r22_path)
        copies.append(copy)
    clean_cached_config()
    site = start_secure_site(
        tmp_path_factory.mktemp("secure_site"), served, [served / "test" / r22_path.name, *copies]
    )
    admin = site.admin()
    for did, files in ((DATASET, [r22_path]), (MANY, copies)):
        scope, name = did.split(":")
        admin.add_dataset(scope, name)
        admin.attach_dids(scope, name, [{"scope": "test", "name": path.name} for path in files])
    yield site
    site.stop()
    clean_cached_config()


@pytest.fixture(scope="module")
def token_workers(site):
    """Workers with no rucio configuration and no credential; they trust the site's https CA."""
    with local_workers(1, RUCIO_CONFIG=None, SSL_CERT_FILE=str(site.cert)) as address:
        yield address


@pytest.fixture(scope="module")
def token_service(tmp_path_factory, hub, seaweedfs, token_workers, site):
    """The service pointed at the site's rucio (address and CA only: no RUCIO_CONFIG, no account)."""
    service = start_service(
        tmp_path_factory.mktemp("servicex-tokens"), hub, seaweedfs, token_workers,
        "--rucio-host", site.rucio_url, "--rucio-ca-cert", str(site.cert), "--retries", "0",
        "--token-wait", str(TOKEN_WAIT),
        environment={"RUCIO_CONFIG": None},
    )  # fmt: skip
    yield service
    service.stop()


def _logged_in(hub, service, tmp_path_factory, name: str, access_token: str | None) -> User:
    """A user whose hub auth_state holds `access_token` (None: no auth_state), as after an IAM login."""
    user = _user(hub, service, tmp_path_factory, name)
    if access_token is not None:
        set_auth_state(hub, name, {"access_token": access_token})
    return user


def _deliver_did(user: User, title: str):
    from servicex import dataset, query

    spec = {
        "General": {"OutputFormat": "parquet", "Delivery": "LocalCache"},
        "Sample": [{"Name": title, "Dataset": dataset.Rucio(DATASET), "Query": query.UprootRaw(
            [{"treename": "CollectionTree", "filter_name": [BRANCH]}])}],
    }  # fmt: skip
    return user.deliver(spec, fail_if_incomplete=False)


def _status(user: User, title: str):
    [status] = [s for s in asyncio.run(user.adapter().get_transforms()) if s.title == title]
    return status


def _where_token_is(token: str, service, seaweedfs) -> list[str]:
    """Every place of the service's log, database and S3 server that holds `token`."""
    found = [f"log line: {line[:80]}" for line in service.log.read_text().splitlines() if token in line]
    state = Path(service.command[service.command.index("--state") + 1])
    for path in state.iterdir():
        if token.encode() in path.read_bytes():
            found.append(f"state file {path}")
    with contextlib.closing(sqlite3.connect(state / "servicex.sqlite")) as db:
        if any(token in line for line in db.iterdump()):
            found.append("a database row")
    s3 = boto3.client(
        "s3", endpoint_url=seaweedfs.endpoint, region_name="us-east-1",
        aws_access_key_id=seaweedfs.access_key, aws_secret_access_key=seaweedfs.secret_key,
    )  # fmt: skip
    for bucket in s3.list_buckets()["Buckets"]:
        for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
            if token in item["Key"] or token.encode() in body:
                found.append(f"S3 object {bucket['Name']}/{item['Key']}")
    return found


def test_a_did_is_delivered_with_the_users_own_token(
    hub, token_service, token_workers, seaweedfs, site, tmp_path_factory, r22_path
):
    from distributed import Client

    iam_token = site.user_token()
    jdoe = _logged_in(hub, token_service, tmp_path_factory, "jdoe", iam_token)
    accepted_before = site.validator.decisions.count(200)
    delivered = _deliver_did(jdoe, "jdoe-did")
    print("client delivered from rucio with the user's token:", delivered["jdoe-did"])
    status = _status(jdoe, "jdoe-did")
    assert (status.status.value, status.files_failed) == ("Complete", 0), jdoe.failures(status.request_id)
    [path] = delivered["jdoe-did"]
    with uproot.open(r22_path) as f:
        expected = f["CollectionTree"][BRANCH].array()
    assert ak.to_list(ak.from_parquet(path)[BRANCH]) == ak.to_list(expected)
    # the storage saw the user's token (its validator accepted it), read by workers without rucio
    assert site.validator.decisions.count(200) > accepted_before
    with Client(token_workers, timeout=30) as client:
        assert set(client.run(lambda: __import__("os").environ.get("RUCIO_CONFIG")).values()) == {None}
    assert _where_token_is(iam_token, token_service, seaweedfs) == []


def _submit_did(adapter, title: str, did: str = DATASET) -> str:
    return asyncio.run(adapter.submit_transform(transform_request(did=f"rucio://{did}", title=title)))


def test_a_token_rucio_refuses_fails_naming_the_did_and_the_server(
    hub, token_service, site, tmp_path_factory
):
    # a valid signature, but no rucio account has this subject
    mallory = _logged_in(
        hub, token_service, tmp_path_factory, "mallory", site.issuer.issue("no-such-account")
    )
    with pytest.raises(ValueError) as refused:
        _submit_did(mallory.adapter(), "mallory-did")
    print("the client's error for a token rucio refuses:", refused.value)
    assert str(refused.value).startswith("Invalid transform request: test:physlite.tokens: ")
    assert f"the rucio server {site.rucio_url} refused the bearer token" in str(refused.value)
    assert asyncio.run(mallory.adapter().get_transforms()) == []


def test_a_user_without_an_iam_token_is_told_so(hub, token_service, tmp_path_factory):
    nobody = _logged_in(hub, token_service, tmp_path_factory, "nostate", None)
    with pytest.raises(ValueError) as refused:
        _submit_did(nobody.adapter(), "no-token")
    print("the client's error without an IAM token:", refused.value)
    assert "test:physlite.tokens: the hub gave the service no IAM access token of 'nostate'" in str(
        refused.value
    )


def test_storage_refusing_the_users_token_fails_the_file_naming_it(
    hub, token_service, site, tmp_path_factory
):
    # rucio accepts this token of jdoe, the storage does not: it lacks the storage.read scope
    reader = _logged_in(
        hub, token_service, tmp_path_factory, "noread", site.user_token(scope="openid profile")
    )
    request_id = _submit_did(reader.adapter(), "noread-did")
    status = wait_for(reader, request_id, finished, timeout=60)
    [failure] = reader.failures(request_id)
    print("a replica the storage refuses:", status.status.value, failure["info"])
    assert (status.files_completed, status.files_failed) == (0, 1)
    assert failure["info"].startswith("test:PHYSLITE_example.root: every replica refused the user's token: ")
    assert f"{site.storage_url}/token/test/PHYSLITE_example.root" in failure["info"]


def test_files_refused_an_outdated_token_are_sent_again_with_the_users_newer_one(
    hub, token_service, token_workers, site, tmp_path_factory
):
    """A long request: its files wait for a worker while the user's token rolls over. Each file's replicas
    refuse the token its task was sent; the client has meanwhile refreshed, so the service holds a newer token,
    and the files are sent again with it instead of failing."""
    from distributed import Client, Event

    # rucio accepts the first token, the storage does not (no storage.read: it stands for one that expired)
    user = _logged_in(hub, token_service, tmp_path_factory, "jdoe5", site.user_token(scope="openid profile"))
    with Client(token_workers, timeout=30) as client:
        gate = Event("hold-the-worker", client=client)
        held = client.submit(
            lambda: Event("hold-the-worker").wait(120), pure=False
        )  # the worker's one thread
        deadline = time.monotonic() + 30
        while not any(client.processing().values()):
            assert time.monotonic() < deadline, "the holding task never started"
            time.sleep(0.1)
        request_id = _submit_did(user.adapter(), "jdoe5-renewed", MANY)  # its files queue behind the hold
        while len(client.run_on_scheduler(_queued, prefix=f"servicex-{request_id}-")) < COPIES:
            assert time.monotonic() < deadline + 60, "the request's tasks were never queued"
            time.sleep(0.1)
        set_auth_state(hub, "jdoe5", {"access_token": site.user_token()})
        assert user.call("GET", "/servicex").status_code == 200  # the client's next token refresh
        gate.set()
        assert held.result(timeout=30) is True
    status = wait_for(user, request_id, finished, timeout=120)
    print("files refused an outdated token, after the client's refresh:", status.status.value,
          status.files_completed, status.files_failed)  # fmt: skip
    assert (status.status.value, status.files_completed, status.files_failed) == ("Complete", COPIES, 0), (
        user.failures(request_id)
    )
    assert f"request {request_id}: file 0: its replicas refused the token it was sent" in (
        token_service.log.read_text()
    )


def _queued(dask_scheduler, prefix: str) -> list[str]:
    """The scheduler's tasks whose key starts with `prefix` (run on the scheduler)."""
    return [key for key in dask_scheduler.tasks if str(key).startswith(prefix)]


def _resumed_without_the_token(hub, service, site, tmp_path_factory, name: str):
    """A request of MANY submitted by a user's client, then the service killed and started again: the request
    is resumed, the IAM token it held in memory is gone, the client's access token is still valid."""
    user = _logged_in(hub, service, tmp_path_factory, name, site.user_token())
    adapter = user.adapter()
    request_id = _submit_did(adapter, f"{name}-resumed", MANY)
    service.kill()
    service.start()
    return user, adapter, request_id


def _poll(adapter, request_id: str, timeout: float = 120):
    """Status polls as the client's deliver() makes them (one adapter: it renews its token on a 401)."""
    deadline = time.monotonic() + timeout
    while True:
        status = asyncio.run(adapter.get_transform_status(request_id))
        if finished(status):
            return status
        assert time.monotonic() < deadline, f"request {request_id} stuck: {status}"
        time.sleep(0.5)


def test_after_a_restart_the_clients_next_poll_brings_the_token_back(
    hub, token_service, site, tmp_path_factory
):
    _, adapter, request_id = _resumed_without_the_token(hub, token_service, site, tmp_path_factory, "jdoe2")
    status = _poll(adapter, request_id)  # a 401 while the request waits: the client renews its token
    print("after a restart, the client's own polls:", status.status.value, status.files_completed)
    assert (status.status.value, status.files_completed) == ("Complete", COPIES), status.error
    assert f"request {request_id}: waiting for the IAM token of jdoe2" in token_service.log.read_text()


def test_after_a_restart_a_did_request_whose_client_is_gone_ends_clearly(
    hub, token_service, site, tmp_path_factory
):
    user, _, request_id = _resumed_without_the_token(hub, token_service, site, tmp_path_factory, "jdoe3")
    time.sleep(TOKEN_WAIT + 2)  # nobody refreshes the token meanwhile
    wait_for(user, request_id, finished, timeout=30)
    status = user.call(
        "GET", f"/servicex/transformation/{request_id}"
    ).json()  # the client's model drops `error`
    print("after a restart, no client came back:", status["status"], status["error"])
    assert status["status"] == "Fatal" and status["files-completed"] < COPIES
    assert status["error"].startswith(
        f"rucio://{MANY}: the service restarted and got no IAM access token of 'jdoe3'"
    )


def test_a_service_without_a_rucio_server_says_so(hub, servicex_service, site, tmp_path_factory):
    # the tests' main service has neither --rucio-host nor RUCIO_CONFIG
    user = _logged_in(hub, servicex_service, tmp_path_factory, "jdoe4", site.user_token())
    with pytest.raises(ValueError) as refused:
        _submit_did(user.adapter(), "no-rucio")
    print("a service without rucio:", refused.value)
    assert "test:physlite.tokens: no rucio server configured (give its address, or set RUCIO_CONFIG)" in str(
        refused.value
    )
