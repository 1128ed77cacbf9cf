"""The gateway API's request bodies must be JSON objects: anything else is a 400 naming the route, not a 500.

dask-gateway-server's routes call ``(await request.json()).get(...)`` on every POST body, so a body that is not
JSON (``{not json``), or JSON that is not an object (``[]``, ``"x"``), ends in an AttributeError or a
JSONDecodeError and a 500. `json_object_bodies` is an aiohttp middleware that checks the body first and answers
in the gateway's own error format (``{"error": reason}``); it is installed by
`af.gateway.server_config.FacilityHubAuthenticator.setup`, the one hook of the server that sees its application
before it starts.

Example:
    >>> body_problem(b'{"cluster_options": {}}') is None
    True
    >>> body_problem(b"[]")
    'the request body must be a JSON object, got an array'
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

API_PREFIX = "/api/"
METHODS_WITH_BODY = ("POST", "PUT", "PATCH")
JSON_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_problem(body: bytes) -> str | None:
    """What is wrong with an API request body, or None when it is a JSON object."""
    try:
        value = json.loads(body)
    except UnicodeDecodeError:
        return "the request body is not UTF-8 text"
    except ValueError as err:
        return f"the request body is not valid JSON ({err})"
    if isinstance(value, dict):
        return None
    kind = "null" if value is None else JSON_TYPE_NAMES.get(type(value), type(value).__name__)
    return f"the request body must be a JSON object, got {kind}"


@web.middleware
async def json_object_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 400 to an API request whose body is not a JSON object (the body stays readable by the route)."""
    if request.method in METHODS_WITH_BODY and request.path.startswith(API_PREFIX):
        problem = body_problem(await request.read())
        if problem is not None:
            return web.json_response({"error": f"{request.method} {request.path}: {problem}"}, status=400)
    return await handler(request)
