"""The REST API of the `servicex` 3.x client (``servicex.servicex_adapter.ServiceXAdapter``), on tornado.

| method, path | answer |
|---|---|
| POST /token/refresh | ``{"access_token"}`` for the hub token in ``Authorization: Bearer`` (`user_tokens`) |
| GET /servicex | app version, code generators, capabilities |
| GET, POST /servicex/transformation | the caller's requests / submit (``{"request_id"}``; 400 with a message) |
| GET, DELETE /servicex/transformation/<id> | status (the client's TransformStatus fields) / delete with results |
| GET /servicex/transformation/<id>/results | files done since ``later_than`` |
| GET /servicex/transformation/<id>/cancel | cancel |
| GET /servicex/datasets, GET, DELETE /servicex/datasets/<id> | the caller's looked-up datasets |

Another user's request or dataset answers 404, as one that does not exist. Errors are JSON ``{"message"}``.

Example:
    >>> app = make_app(service, AccessTokens(secret), HubTokens("http://127.0.0.1:8081/hub/api"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from tornado import web

from af.servicex import store as st
from af.servicex.auth import AccessTokens, HubTokens, NotAuthenticated, bearer
from af.servicex.query import CODEGEN
from af.servicex.service import APP_VERSION, BadRequest, ServiceX

log = logging.getLogger("af.servicex")
CAPABILITIES = ["poll_local_transformation_results", "long_sample_titles_128"]


class Handler(web.RequestHandler):
    service: ServiceX
    tokens: AccessTokens
    hub: HubTokens

    def initialize(self, service: ServiceX, tokens: AccessTokens, hub: HubTokens) -> None:
        self.service, self.tokens, self.hub = service, tokens, hub

    def check_xsrf_cookie(self) -> None:  # bearer tokens only, no cookies
        pass

    def get_current_user(self) -> str:
        try:
            return self.tokens.user(bearer(self.request.headers.get("Authorization")))
        except NotAuthenticated as error:
            raise web.HTTPError(401, reason="Unauthorized", log_message=str(error)) from None

    def send(self, document: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = getattr(error, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def own_request(self, request_id: str) -> st.Request:
        request = self.service.store.request(request_id)
        if request is None or request.owner != self.current_user:
            raise web.HTTPError(404, log_message=f"request {request_id} not found")
        return request


class TokenRefresh(Handler):
    async def post(self) -> None:
        try:
            hub_token = bearer(self.request.headers.get("Authorization"))
            user = await self.hub.user(hub_token)
        except NotAuthenticated as error:
            raise web.HTTPError(401, reason="Unauthorized", log_message=str(error)) from None
        until = await self.service.user_tokens.refresh(user, hub_token)  # the user's IAM token, for DIDs
        self.send({"access_token": self.tokens.issue(user, until=until)})


class Info(Handler):
    def get(self) -> None:
        self.send(
            {
                "app-version": APP_VERSION,
                "code-gen-image": {CODEGEN: APP_VERSION},
                "capabilities": CAPABILITIES,
            }
        )


class Transformations(Handler):
    @web.authenticated
    def get(self) -> None:
        user = self.current_user
        self.send(
            {"requests": [self.service.status(r, user) for r in self.service.store.requests(owner=user)]}
        )

    @web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body)
            if not isinstance(body, dict):
                raise BadRequest("the body must be a TransformRequest object")
            request_id = await self.service.submit(self.current_user, body)
        except (json.JSONDecodeError, BadRequest) as error:
            raise web.HTTPError(400, log_message=str(error)) from None
        self.send({"request_id": request_id})


class Transformation(Handler):
    @web.authenticated
    def get(self, request_id: str) -> None:
        request = self.own_request(request_id)
        if self.service.awaits_token(request):
            # the client answers a 401 here by getting a new access token, which brings the IAM token back
            raise web.HTTPError(
                401, reason="Unauthorized",
                log_message="the service restarted and needs your IAM access token again: refresh the token",
            )  # fmt: skip
        self.send(self.service.status(request, self.current_user))

    @web.authenticated
    async def delete(self, request_id: str) -> None:
        await self.service.delete(self.own_request(request_id))
        self.send({"deleted": request_id})


class Results(Handler):
    @web.authenticated
    def get(self, request_id: str) -> None:
        request = self.own_request(request_id)
        later_than = self.get_argument("later_than", None)
        if later_than:
            try:
                later_than = datetime.fromisoformat(later_than).replace(tzinfo=None).isoformat()
            except ValueError:
                raise web.HTTPError(
                    400, log_message=f"later_than {later_than!r} is not an ISO time"
                ) from None
        status = st.FAILURE if self.get_argument("status", "") == "failure" else st.SUCCESS
        self.send({"results": self.service.results(request, later_than, status)})


class Cancel(Handler):
    @web.authenticated
    async def get(self, request_id: str) -> None:
        await self.service.cancel(self.own_request(request_id))
        self.send({"message": f"canceled {request_id}"})


def _dataset(row: dict, with_files: bool) -> dict:
    files = json.loads(row["files"])
    return {
        "id": row["id"],
        "name": row["name"],
        "did_finder": row["did_finder"],
        "n_files": len(files),
        "size": sum(f["file_size"] for f in files),
        "events": 0,
        "last_used": row["last_used"],
        "last_updated": row["last_updated"],
        "lookup_status": "complete",
        "is_stale": bool(row["stale"]),
        "files": [
            {
                "id": i,
                "adler32": f["adler32"],
                "file_size": f["file_size"],
                "file_events": 0,
                "paths": f["paths"],
            }
            for i, f in enumerate(files)
        ]
        if with_files
        else [],
    }


class Datasets(Handler):
    @web.authenticated
    def get(self) -> None:
        rows = self.service.store.datasets(
            self.current_user,
            self.get_argument("did-finder", None),
            self.get_argument("show-deleted", "") != "",
        )
        self.send({"datasets": [_dataset(row, False) for row in rows]})


class Dataset(Handler):
    def own_dataset(self, dataset_id: str) -> dict:
        row = self.service.store.dataset(self.current_user, int(dataset_id))
        if row is None:
            raise web.HTTPError(404, log_message=f"dataset {dataset_id} not found")
        return row

    @web.authenticated
    def get(self, dataset_id: str) -> None:
        self.send(_dataset(self.own_dataset(dataset_id), True))

    @web.authenticated
    def delete(self, dataset_id: str) -> None:
        self.service.store.mark_dataset_stale(self.own_dataset(dataset_id)["id"])
        self.send({"dataset-id": int(dataset_id), "stale": True})


def _log_request(handler: web.RequestHandler) -> None:
    """Method, path (never a query string or header: no token can appear) and status."""
    log.info("%d %s %s", handler.get_status(), handler.request.method, handler.request.path)


def make_app(service: ServiceX, tokens: AccessTokens, hub: HubTokens, prefix: str = "") -> web.Application:
    """The tornado application; `prefix` is the hub service's path when behind the hub's proxy."""
    args = {"service": service, "tokens": tokens, "hub": hub}
    prefix = prefix.rstrip("/")
    routes = [
        (r"/token/refresh", TokenRefresh),
        (r"/servicex/?", Info),
        (r"/servicex/transformation/?", Transformations),
        (r"/servicex/transformation/([A-Za-z0-9-]+)/?", Transformation),
        (r"/servicex/transformation/([A-Za-z0-9-]+)/results", Results),
        (r"/servicex/transformation/([A-Za-z0-9-]+)/cancel", Cancel),
        (r"/servicex/datasets/?", Datasets),
        (r"/servicex/datasets/([0-9]+)", Dataset),
    ]
    return web.Application(
        [(prefix + path, handler, args) for path, handler in routes], log_function=_log_request
    )
