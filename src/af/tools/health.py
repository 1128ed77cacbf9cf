"""End-to-end health check of a facility (local or Kubernetes) through the hub API.

As the `af-operator` service account it creates the health user if needed, starts their server, runs the smoke
notebook (``health_smoke.ipynb``: gateway cluster, scale to 1, a computation, a PHYSLITE read on the worker,
shutdown) cell by cell in a kernel of that server, stops the server, and reports each step with its duration.

Example:
    $ AF_OPERATOR_TOKEN=... af health --url https://af.example.org --data root://eos.example.org//file.root
    $ af health --url http://127.0.0.1:8000 --state state          # local facility: token from state/
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import requests

from af.tools.remote_kernel import KernelError, RemoteKernel

SMOKE_NOTEBOOK = Path(__file__).with_name("health_smoke.ipynb")


class HealthError(RuntimeError):
    """The check could not run at all (bad URL, token, hub unreachable); the message names the setting."""


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class HealthReport:
    """Result of a health check: overall verdict and each step with its duration."""

    url: str
    user: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "user": self.user, "ok": self.ok, "steps": [asdict(s) for s in self.steps]}

    def text(self) -> str:
        lines = [f"af health {self.url} as {self.user}: {'PASS' if self.ok else 'FAIL'}"]
        for step in self.steps:
            mark = "ok  " if step.ok else "FAIL"
            lines.append(f"  {mark} {step.name:<14} {step.seconds:7.2f} s  {step.detail}".rstrip())
        return "\n".join(lines)


class HubClient:
    """The hub REST API with a service token."""

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.timeout = timeout

    def call(self, method: str, path: str, expect: tuple[int, ...], **kwargs: Any) -> requests.Response:
        url = f"{self.url}/hub/api{path}"
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            raise HealthError(f"cannot reach the hub at {url}: {err}") from None
        if response.status_code in (401, 403):
            raise HealthError(f"{method} {url}: HTTP {response.status_code}; is the operator token valid?")
        if response.status_code not in expect:
            raise HealthError(f"{method} {url}: HTTP {response.status_code} {response.text[:300]}")
        return response

    def server(self, user: str) -> dict[str, Any] | None:
        return self.call("GET", f"/users/{user}", (200,)).json()["servers"].get("")


def smoke_cells(data: str) -> list[tuple[str, str]]:
    """(step name, code) of the smoke notebook, with the data path injected first when given."""
    notebook = nbformat.read(SMOKE_NOTEBOOK, as_version=4)
    cells = [(cell.metadata.get("af_step", f"cell{i}"), cell.source) for i, cell in enumerate(notebook.cells)]
    if data:
        cells.insert(0, ("inject", f"DATA = {data!r}"))
    return cells


def _timed(report: HealthReport, name: str, started: float, ok: bool, detail: str = "") -> None:
    report.steps.append(Step(name, ok, round(time.perf_counter() - started, 2), detail))


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise HealthError(f"{what} after {timeout:.0f} s")


async def _run_notebook(
    server_url: str, token: str, cells: list[tuple[str, str]], report: HealthReport
) -> None:
    async with RemoteKernel(server_url, token, timeout=300) as kernel:
        for name, code in cells:
            started = time.perf_counter()
            try:
                result = await kernel.execute(code, timeout=300)
            except (KernelError, TimeoutError) as err:
                _timed(
                    report, name, started, False, str(err).strip().splitlines()[-1][:300] if str(err) else ""
                )
                return
            _timed(
                report, name, started, True, result.stdout.strip().splitlines()[-1] if result.stdout else ""
            )


def run_health_check(
    url: str, token: str, user: str = "af-health", data: str = "", timeout: float = 300.0
) -> HealthReport:
    """Run the whole check against the hub at `url` with the operator `token`; never leaves the server running."""
    hub = HubClient(url, token)
    report = HealthReport(url=hub.url, user=user)
    hub.call("GET", "/", (200,))
    hub.call("POST", f"/users/{user}", (201, 409))
    started = time.perf_counter()
    try:
        if hub.server(user) is None:
            hub.call("POST", f"/users/{user}/server", (201, 202))
        try:
            _wait(lambda: (hub.server(user) or {}).get("ready"), timeout, f"server of {user} not ready")
        except HealthError as err:
            _timed(report, "server start", started, False, str(err))
            return report
        _timed(report, "server start", started, True)
        user_token = hub.call(
            "POST",
            f"/users/{user}/tokens",
            (200, 201),
            json={"note": "af health", "expires_in": int(timeout) + 300},
        ).json()
        try:
            asyncio.run(
                _run_notebook(f"{hub.url}/user/{user}", user_token["token"], smoke_cells(data), report)
            )
        finally:
            hub.call("DELETE", f"/users/{user}/tokens/{user_token['id']}", (204, 404))
    finally:
        started = time.perf_counter()
        hub.call("DELETE", f"/users/{user}/server", (202, 204, 400))
        try:
            _wait(lambda: hub.server(user) is None, 120, f"server of {user} still running")
            _timed(report, "server stop", started, True)
        except HealthError as err:
            _timed(report, "server stop", started, False, str(err))
    return report


def operator_token(token_env: str, state: str) -> str:
    """The operator token: from the local facility's state folder if given, else from `token_env`."""
    if state:
        secrets_file = Path(state) / "secrets.json"
        try:
            return json.loads(secrets_file.read_text())["operator_token"]
        except (OSError, KeyError, ValueError) as err:
            raise HealthError(
                f"--state {state}: cannot read the operator token from {secrets_file}: {err}"
            ) from None
    token = os.environ.get(token_env, "")
    if not token:
        raise HealthError(f"environment variable {token_env} (the af-operator service token) is not set")
    return token


def main_health(args: argparse.Namespace) -> int:
    """`af health`: print the report (text or JSON); exit code 0 only when every step passed."""
    if not args.url.startswith(("http://", "https://")):
        raise HealthError(f"--url must be an http(s) URL of the hub, got {args.url!r}")
    report = run_health_check(
        args.url,
        operator_token(args.token_env, args.state),
        user=args.user,
        data=args.data,
        timeout=args.timeout,
    )
    print(json.dumps(report.as_dict(), indent=1) if args.json else report.text())
    return 0 if report.ok else 1
