"""Run code in a kernel of a user's Jupyter server through its REST and websocket API (as JupyterLab does).

Used by the health check and the tests: it exercises the real path (hub proxy → server → kernel).

Example:
    >>> async with RemoteKernel("http://127.0.0.1:8000/user/alice", token) as kernel:  # doctest: +SKIP
    ...     result = await kernel.execute("print(1 + 1)")
    >>> result.stdout  # doctest: +SKIP
    '2\\n'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tornado import httpclient, websocket

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class KernelError(RuntimeError):
    """Code raised in the remote kernel, or the kernel could not be reached; carries the traceback text."""


@dataclass
class ExecutionResult:
    """What a cell produced: its stdout, stderr, rich results (text/plain) and elapsed seconds."""

    stdout: str = ""
    stderr: str = ""
    results: list[str] = field(default_factory=list)
    seconds: float = 0.0


class RemoteKernel:
    """A kernel started in the server at `server_url` (e.g. ``http://host/user/alice``) with `token`."""

    def __init__(self, server_url: str, token: str, kernel_name: str = "python3", timeout: float = 120.0):
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.kernel_name = kernel_name
        self.timeout = timeout
        self.kernel_id = ""
        self.connection: websocket.WebSocketClientConnection | None = None
        self.session = uuid.uuid4().hex

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        response = await httpclient.AsyncHTTPClient().fetch(
            f"{self.server_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None,
            request_timeout=self.timeout,
            raise_error=False,
        )
        if response.code >= 400:
            raise KernelError(f"{method} {self.server_url}{path} answered HTTP {response.code}")
        return json.loads(response.body) if response.body else None

    async def __aenter__(self) -> RemoteKernel:
        kernel = await self._request("POST", "/api/kernels", {"name": self.kernel_name})
        self.kernel_id = kernel["id"]
        ws_url = "ws" + self.server_url[len("http") :] + f"/api/kernels/{self.kernel_id}/channels"
        self.connection = await websocket.websocket_connect(
            httpclient.HTTPRequest(
                f"{ws_url}?session_id={self.session}",
                headers={"Authorization": f"token {self.token}"},
                request_timeout=self.timeout,
            )
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()
        if self.kernel_id:
            with contextlib.suppress(KernelError, OSError):
                await self._request("DELETE", f"/api/kernels/{self.kernel_id}")

    async def execute(self, code: str, timeout: float | None = None) -> ExecutionResult:
        """Run `code`; return its output or raise `KernelError` with the traceback if it raised."""
        assert self.connection is not None, "use `async with RemoteKernel(...)`"
        loop = asyncio.get_running_loop()
        started = loop.time()
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "username": "af",
                "session": self.session,
                "msg_type": "execute_request",
                "version": "5.3",
                "date": "",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
            "channel": "shell",
            "buffers": [],
        }
        await self.connection.write_message(json.dumps(message))
        result = ExecutionResult()
        error = None
        idle = replied = False
        deadline = started + (timeout or self.timeout)
        while not (idle and replied):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise KernelError(f"no answer from the kernel within {timeout or self.timeout:.0f} s")
            raw = await asyncio.wait_for(self.connection.read_message(), remaining)
            if raw is None:
                raise KernelError("the kernel's websocket closed")
            if isinstance(raw, bytes):
                continue
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = reply["header"]["msg_type"]
            content = reply["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("execute_result", "display_data"):
                result.results.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                trace = ANSI_ESCAPE.sub("", "\n".join(content.get("traceback", [])))
                error = trace or f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
                if content["status"] == "error" and error is None:
                    error = f"{content.get('ename')}: {content.get('evalue')}"
        result.seconds = loop.time() - started
        if error is not None:
            raise KernelError(error)
        return result
