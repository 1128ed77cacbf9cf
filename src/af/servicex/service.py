"""The ServiceX service's work: take a request, look up its files, run one task per file, record each file's
outcome, answer statuses and result listings, cancel, expire, and resume after a restart.

Every request ends Complete, Canceled, Bad Dataset or Fatal: a lookup or an engine that fails ends it Fatal with
the reason; a restarted service resumes the files not yet done (outputs are idempotent uploads). A file whose
task raised `TransientError` (storage or network down) is tried again up to `engine.retries` times, after
`retry_delay` seconds, doubled each time (a storage server restarting needs longer than an immediate retry);
then, or on any other error, it is recorded as failed (`files-failed`) and the others go on.

A rucio DID is looked up at submission, and each of its files' replicas resolved, with the requesting user's IAM
access token (`af.servicex.user_tokens`, `af.servicex.datasets`); the token goes to the file's task as an
argument, the freshest one held for each attempt. A refusal of the lookup is the submission's error (HTTP 400,
which the client shows), a refusal of a file's replicas that file's failure, each naming the DID and the server.
A file whose every replica refused the token its task was sent (it expired while the file waited for a worker,
in a request longer than a token's life) is sent again with the owner's newer token when the client has
refreshed it meanwhile; with no newer token, the refusal is the file's failure. A DID request resumed after a
restart waits up to `token_wait` seconds for its owner's token (the owner's status calls answer 401 meanwhile, on
which the client renews its token), then ends Fatal.

Example:
    >>> service = ServiceX(store, objects, engine)  # doctest: +SKIP
    >>> request_id = await service.submit("alice", {"file-list": [...], "selection": "...", ...})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from af.servicex import store as st
from af.servicex.datasets import DatasetError, RucioAccess, listed_files, replicas, rucio_files
from af.servicex.execution import DaskEngine
from af.servicex.objectstore import ObjectStore, user_key
from af.servicex.query import CODEGEN, QueryError, parse_selection
from af.servicex.store import Request, Store
from af.servicex.transform import BearerToken, TransientError
from af.servicex.user_tokens import NoUserToken, UserTokens
from physlite.io.errors import SourceError

log = logging.getLogger("af.servicex")
APP_VERSION = "physlite-servicex 0.1"
FORMATS = {"parquet": "parquet", "root-file": "root"}
LOST_TASK_TRIES = (
    3  # a file's task lost with its cluster (not an attempt of the file): tried again this often
)
TOKEN_RENEWALS = 3  # a file whose replicas refused an outdated token: sent again with a newer one this often


class BadRequest(ValueError):
    """A submission this service refuses (HTTP 400); the text is what the client shows."""


def request_hash(body: dict[str, Any]) -> str:
    """What makes two submissions identical (the same inputs the client's own cache hashes)."""
    files = sorted(body.get("file-list") or []) or None
    key = [body.get("did"), body["selection"], body["codegen"], body["result-format"], files]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def check_submission(body: dict[str, Any]) -> None:
    """BadRequest naming what is wrong with a submitted TransformRequest."""
    for name in ("selection", "codegen", "result-format"):
        if not isinstance(body.get(name), str):
            raise BadRequest(f"'{name}' is required")
    if body["codegen"] != CODEGEN:
        raise BadRequest(
            f"code generator {body['codegen']!r} is not available on this facility: PHYSLITE is transformed by "
            f"physlite from UprootRaw queries (codegen {CODEGEN!r}); FuncADL queries have no maintained code "
            "generator for PHYSLITE here"
        )
    if body["result-format"] not in FORMATS:
        raise BadRequest(f"result-format {body['result-format']!r}: this service writes {', '.join(FORMATS)}")
    if body.get("result-destination", "object-store") != "object-store":
        raise BadRequest("result-destination must be 'object-store'")
    if bool(body.get("did")) == bool(body.get("file-list")):
        raise BadRequest("give exactly one of 'did' (rucio://scope:name) and 'file-list'")
    try:
        queries = parse_selection(body["selection"])
    except QueryError as error:
        raise BadRequest(str(error)) from None
    if body["result-format"] == "parquet" and len(queries) != 1:
        raise BadRequest("Parquet output holds one query: submit one UprootRaw query per request")


def _object_name(idx: int, location: str, fmt: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(location.split("?")[0].rstrip("/")) or "file")
    return f"{idx:05d}_{base}.{FORMATS[fmt]}"


@dataclass
class ServiceX:
    store: Store
    objects: ObjectStore
    engine: DaskEngine
    ttl: timedelta = timedelta(days=7)
    retry_delay: float = 30.0  # seconds before the first retry of a file after a transient error
    user_tokens: UserTokens = field(default_factory=lambda: UserTokens(""))
    rucio: RucioAccess = field(default_factory=RucioAccess)
    token_wait: float = 300.0  # seconds a resumed DID request waits for its owner's IAM token
    running: dict[str, asyncio.Task] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)  # requests resumed without their owner's IAM token

    async def submit(self, user: str, body: dict[str, Any]) -> str:
        check_submission(body)
        digest = request_hash(body)
        cached = self.store.cached(user, digest)
        if cached is not None:
            log.info("request %s of %s: identical to %s, served from the cache", "-", user, cached.request_id)
            return cached.request_id
        request_id = f"{user_key(user)}-{uuid.uuid4()}"
        queries = parse_selection(body["selection"])
        request = Request(
            request_id=request_id,
            owner=user,
            hash=digest,
            title=body.get("title"),
            did=body.get("did"),
            file_list=json.dumps(body["file-list"]) if body.get("file-list") else None,
            selection=body["selection"],
            codegen=body["codegen"],
            result_format=body["result-format"],
            tree_name=queries[0].treename,
        )
        found = None
        if request.did:  # looked up now, with the user's token: a refusal is the submission's error text
            try:
                found = await self._find_files(request)
            except DatasetError as error:
                raise BadRequest(str(error)) from None
        self.store.add_request(request, [])
        if found is not None:
            self._record_files(request, *found)
        log.info("request %s of %s submitted", request_id, user)
        self.start(request_id)
        return request_id

    def start(self, request_id: str) -> None:
        self.running[request_id] = asyncio.get_running_loop().create_task(self._run(request_id))

    async def _find_files(self, request: Request) -> tuple[list[dict], str, str]:
        """(files, DID finder, dataset name) of the request; DatasetError saying why not."""
        if request.did:
            files = await asyncio.to_thread(rucio_files, request.did, self._rucio_client(request))
            return files, "rucio", request.did
        files = listed_files(json.loads(request.file_list or "[]"))
        return files, "user", f"file list of {len(files)}"

    async def _lookup(self, request: Request) -> None:
        self.store.set_status(request.request_id, st.LOOKUP)
        try:
            found = await self._find_files(request)
        except DatasetError as error:
            self.store.set_status(request.request_id, st.BAD_DATASET, str(error))
            raise
        self._record_files(request, *found)

    def _record_files(self, request: Request, files: list[dict], finder: str, name: str) -> None:
        dataset_id = self.store.add_dataset(request.owner, name, finder, files)
        self.store.set_dataset(request.request_id, dataset_id)
        with self.store.db:
            self.store.set_files(request.request_id, [f["paths"] for f in files])

    def _rucio_client(self, request: Request, did: str | None = None):
        """A rucio client with the owner's IAM token (DatasetError naming the DID when none is held)."""
        did = did or request.did
        try:
            token = self.user_tokens.token(request.owner)
        except NoUserToken as error:
            raise DatasetError(f"{did}: {error}") from None
        return self.rucio.client(token, did)

    def awaits_token(self, request: Request) -> bool:
        """Whether `request` (resumed after a restart) waits for its owner's IAM token."""
        return request.request_id in self.waiting and not self.user_tokens.has(request.owner)

    async def _wait_for_token(self, request: Request) -> None:
        if not request.did or self.user_tokens.has(request.owner):
            return
        log.info("request %s: waiting for the IAM token of %s (up to %.0f s)", request.request_id,
                 request.owner, self.token_wait)  # fmt: skip
        self.waiting.add(request.request_id)
        deadline = asyncio.get_running_loop().time() + self.token_wait
        try:
            while not self.user_tokens.has(request.owner):
                if self.user_tokens.why_not(request.owner):  # the owner refreshed: the hub has no token
                    raise NoUserToken(f"{request.did}: {self.user_tokens.why_not(request.owner)}")
                if asyncio.get_running_loop().time() > deadline:
                    raise NoUserToken(
                        f"{request.did}: the service restarted and got no IAM access token of {request.owner!r} "
                        f"within {self.token_wait:.0f} s (tokens are kept in memory only): submit the request again"
                    )
                await asyncio.sleep(0.5)
        finally:
            self.waiting.discard(request.request_id)

    async def _run(self, request_id: str) -> None:
        try:
            request = self.store.request(request_id)
            if request is None:
                return
            await self._wait_for_token(request)
            if request.files == 0:
                await self._lookup(request)
            await asyncio.to_thread(self.objects.create_bucket, request_id)
            await self.engine.ready()
            self.store.set_status(request_id, st.RUNNING)
            pending = self.store.files(request_id, st.PENDING)
            await asyncio.gather(*(self._run_file(request, task) for task in pending))
            if self.store.request(request_id).status == st.RUNNING:
                self.store.set_status(request_id, st.COMPLETE)
                log.info("request %s complete", request_id)
        except DatasetError as error:
            log.warning("request %s: bad dataset: %s", request_id, error)
        except NoUserToken as error:
            log.warning("request %s: %s", request_id, error)
            self.store.set_status(request_id, st.FATAL, str(error))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the request must end, whatever failed
            log.exception("request %s failed", request_id)
            self.store.set_status(request_id, st.FATAL, f"{type(error).__name__}: {error}")
        finally:
            self.running.pop(request_id, None)
            self.engine.forget(request_id)

    async def _run_file(self, request: Request, task: st.FileTask) -> None:
        name = _object_name(task.idx, task.location, request.result_format)
        url = await asyncio.to_thread(self.objects.upload_url, request.request_id, name)
        outcome = await self._attempts(request, task, url)
        if outcome.get("canceled"):
            return
        if "error" in outcome:
            log.info("request %s: file %d failed: %s", request.request_id, task.idx, outcome["error"])
            self.store.finish_file(request.request_id, task.idx, error=outcome["error"])
        else:
            self.store.finish_file(request.request_id, task.idx, object_name=name, size=outcome["size"])

    async def _attempts(self, request: Request, task: st.FileTask, url: str) -> dict[str, Any]:
        """The file's outcome after at most 1 + retries attempts (a transient error waits, then tries again)."""
        attempts = self.engine.retries + 1
        attempt = lost = renewed = 0
        while attempt < attempts:
            try:
                urls, token = await self._replicas(request, task)
            except (DatasetError, SourceError) as error:
                return {"error": str(error)}
            future = self.engine.submit(
                request.request_id, task.idx, attempt, task.location, request.selection,
                request.result_format, url, lost + renewed, urls, token,
            )  # fmt: skip
            try:
                outcome = await future
                if renewed < TOKEN_RENEWALS and self._renewed_since(request, token, outcome):
                    log.info("request %s: file %d: its replicas refused the token it was sent; again with %s's "
                             "newer token", request.request_id, task.idx, request.owner)  # fmt: skip
                    renewed += 1
                    continue
                return outcome
            except asyncio.CancelledError:
                if self._canceled(request):
                    return {"canceled": True}
                raise
            except TransientError as error:
                if attempt + 1 == attempts:
                    return {"error": f"{error} (the service tried the file {attempts} times)"}
                delay = self.retry_delay * 2**attempt
                log.info(
                    "request %s: file %d: transient error (%s); attempt %d of %d in %.0f s",
                    request.request_id, task.idx, error, attempt + 2, attempts, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                attempt += 1
            except Exception as error:  # raised on the worker, or the worker was lost
                if self._canceled(request):
                    return {"canceled": True}
                # lost with the cluster (not the file's fault): again on a running cluster, not an attempt
                if lost < LOST_TASK_TRIES and await self.engine.recover(error):
                    lost += 1
                    continue
                return {"error": f"{task.location}: {type(error).__name__}: {error}"}
        raise AssertionError("unreachable")

    async def _replicas(
        self, request: Request, task: st.FileTask
    ) -> tuple[list[str] | None, BearerToken | None]:
        """A DID's file: its replicas' URLs, listed with the owner's current IAM token, and that token."""
        if not request.did:
            return None, None
        client = self._rucio_client(request, task.location)
        urls = await asyncio.to_thread(replicas, task.location, client)
        return urls, BearerToken(self.user_tokens.token(request.owner))

    def _renewed_since(self, request: Request, sent: BearerToken | None, outcome: dict[str, Any]) -> bool:
        """Whether the file's replicas refused the token `sent` and the service now holds a newer one of the
        owner's."""
        if sent is None or not outcome.get("token_refused"):
            return False
        try:
            return self.user_tokens.token(request.owner) != sent.value
        except NoUserToken:
            return False

    def _canceled(self, request: Request) -> bool:
        current = self.store.request(request.request_id)
        return current is None or current.status == st.CANCELED

    async def cancel(self, request: Request) -> None:
        if request.status in st.FINISHED:
            return
        self.store.set_status(request.request_id, st.CANCELED)
        await self.engine.cancel(request.request_id)
        task = self.running.pop(request.request_id, None)
        if task is not None:
            task.cancel()
        log.info("request %s canceled", request.request_id)

    async def delete(self, request: Request) -> None:
        await self.cancel(request)
        await asyncio.to_thread(self.objects.delete_bucket, request.request_id)
        self.store.delete_request(request.request_id)

    def resume(self) -> None:
        """After a restart: run what was left of every unfinished request."""
        for request in self.store.requests(statuses=(st.SUBMITTED, st.LOOKUP, st.RUNNING)):
            log.info("request %s: resumed after a restart", request.request_id)
            self.start(request.request_id)

    async def expire(self) -> None:
        before = (datetime.now(UTC) - self.ttl).replace(tzinfo=None).isoformat()
        for request_id in self.store.expired(before):
            await asyncio.to_thread(self.objects.delete_bucket, request_id)
            self.store.delete_request(request_id)
            log.info("request %s: results expired and deleted", request_id)

    def credentials(self, user: str) -> tuple[str, str]:
        known = self.store.credentials(user)
        if known is None:
            known = self.objects.user_credentials(user)
            self.store.set_credentials(user, *known)
        return known

    def status(self, request: Request, user: str) -> dict[str, Any]:
        access, secret = self.credentials(user)
        return {
            "request_id": request.request_id,
            "did": request.did or f"file-list ({len(json.loads(request.file_list or '[]'))} files)",
            "did_id": request.dataset_id,
            "title": request.title,
            "selection": request.selection,
            "tree-name": request.tree_name,
            "image": APP_VERSION,
            "result-destination": "object-store",
            "result-format": request.result_format,
            "generated-code-cm": "",
            "status": request.status,
            "app-version": APP_VERSION,
            "files": request.files,
            "files-completed": request.files_completed,
            "files-failed": request.files_failed,
            "files-remaining": request.files - request.files_completed - request.files_failed,
            "submit-time": request.submit_time,
            "finish-time": request.finish_time,
            "minio-endpoint": self.objects.host,
            "minio-secured": self.objects.secure,
            "minio-access-key": access,
            "minio-secret-key": secret,
            "log-url": None,
            "error": request.error,
        }

    def results(self, request: Request, later_than: str | None, status: str = st.SUCCESS) -> list[dict]:
        rows = []
        for task in self.store.files(request.request_id, status):
            if later_than and task.created_at and task.created_at < later_than:
                continue
            rows.append(
                {
                    "file-path": task.location,
                    "s3-object-name": task.object_name,
                    "created_at": task.created_at,
                    "total-bytes": task.size or 0,
                    "transform_status": task.status,
                    "info": task.error,
                }
            )
        return rows
