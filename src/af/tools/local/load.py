"""Load test of the local facility: N users log in through the OIDC provider and start their servers at once.

Each simulated user drives the real OAuth flow with an HTTP client (`af.tools.local.login`), lands on /hub/spawn and
polls its JupyterLab URL until it answers 200 (the single-user server's own OAuth round trip included). Reported:
login and login-to-ready seconds per user, p50/p95, failures, and (servers in containers, the default) the servers'
resident memory once all have started. All servers are stopped afterwards.

Run (`make bench-facility`; starts its own facility on free ports in a temporary folder):
    python -m af.tools.local.load --users 30 --json build/bench/facility.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from af.tools.local.containers import ContainerMode, default_image, memory_of
from af.tools.local.login import LoginError, login
from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility
from hub_config.container_names import container_name


@dataclass
class UserResult:
    user: str
    ok: bool
    login_s: float = 0.0
    ready_s: float = 0.0
    error: str = ""


def percentile(values: list[float], q: float) -> float:
    """The `q`-th percentile (0-100) by linear interpolation.

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.5
    """
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def one_user(facility: LocalFacility, username: str, timeout: float) -> UserResult:
    started = time.perf_counter()
    try:
        session, response = login(
            facility.url, username, facility.account(username).password, next_url="/hub/spawn"
        )
        login_s = time.perf_counter() - started
        if response.status_code != 200:
            return UserResult(username, False, login_s, error=f"login ended with HTTP {response.status_code}")
        lab = f"{facility.url}/user/{username}/lab"
        deadline = started + timeout
        while time.perf_counter() < deadline:
            answer = session.get(lab, timeout=60)
            if answer.status_code == 200 and answer.url.startswith(lab):
                return UserResult(username, True, round(login_s, 2), round(time.perf_counter() - started, 2))
            if answer.status_code == 424:  # the hub's answer once the server has stopped (failed start)
                return UserResult(username, False, round(login_s, 2), error="server stopped while starting")
            time.sleep(0.5)
        return UserResult(
            username, False, round(login_s, 2), error=f"JupyterLab not ready after {timeout:.0f} s"
        )
    except (LoginError, requests.RequestException) as err:
        return UserResult(username, False, round(time.perf_counter() - started, 2), error=str(err))


def stop_all(facility: LocalFacility, usernames: list[str]) -> None:
    headers = {"Authorization": f"token {facility.secrets()['operator_token']}"}
    for name in usernames:
        requests.delete(f"{facility.url}/hub/api/users/{name}/server", headers=headers, timeout=60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        users = requests.get(f"{facility.url}/hub/api/users", headers=headers, timeout=60).json()
        if not any(u["servers"] for u in users if u["name"] in usernames):
            return
        time.sleep(1)


def run_load(facility: LocalFacility, users: int, timeout: float = 600.0) -> dict[str, Any]:
    """Log in `users` load-test users at once and start their servers; the report as a dict."""
    names = [f"user{i:02d}" for i in range(1, users + 1)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        results = list(pool.map(lambda name: one_user(facility, name, timeout), names))
    wall = time.perf_counter() - started
    memory = servers_memory(facility, names)
    stop_all(facility, names)
    ready = [r.ready_s for r in results if r.ok]
    logins = [r.login_s for r in results if r.ok]
    return {
        "users": users,
        "succeeded": len(ready),
        "failed": [asdict(r) for r in results if not r.ok],
        "wall_s": round(wall, 2),
        "login_s": {"p50": round(percentile(logins, 50), 2), "p95": round(percentile(logins, 95), 2)},
        "login_to_ready_s": {
            "p50": round(percentile(ready, 50), 2),
            "p95": round(percentile(ready, 95), 2),
            "max": round(max(ready), 2) if ready else None,
            "mean": round(statistics.fmean(ready), 2) if ready else None,
        },
        **memory,
        "per_user": [asdict(r) for r in results],
    }


def servers_memory(facility: LocalFacility, usernames: list[str]) -> dict[str, Any]:
    """The users' server containers' resident memory once all have started (none without containers)."""
    if not facility.containers:
        return {}
    used = memory_of(
        [container_name(facility.secrets()["facility_id"], name) for name in usernames],
        facility.containers.environment(facility.state_dir),
    )
    mib = [value / 2**20 for value in used.values()]
    return {
        "servers_measured": len(mib),
        "server_rss_mib": {
            "mean": round(statistics.fmean(mib), 1) if mib else None,
            "total": round(sum(mib)),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m af.tools.local.load", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds each user may wait for JupyterLab"
    )
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--processes", action="store_true", help="servers as processes, not containers")
    parser.add_argument("--containers-conf", type=Path, default=Path("images/containers.conf"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="af-load-") as state:
        containers = (
            None if args.processes else ContainerMode(default_image(), args.containers_conf.resolve())
        )
        facility = LocalFacility(
            Path(state), ports=Ports.free(), extra_users=args.users, containers=containers
        )
        try:
            facility.up()
            report = run_load(facility, args.users, args.timeout)
        finally:
            facility.down()
    summary = {k: v for k, v in report.items() if k != "per_user"}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if report["succeeded"] == args.users else 1


if __name__ == "__main__":
    sys.exit(main())
