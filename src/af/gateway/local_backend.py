"""The local facility's dask-gateway backend: UnsafeLocalBackend that notices, when the gateway restarts, the
clusters whose scheduler died while it was away (e.g. after `make down`) instead of reporting them as running
until their heartbeat times out (which would also count them against the user's cluster limit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dask_gateway_server.backends.db_base import JobStatus
from dask_gateway_server.backends.local import UnsafeLocalBackend


def process_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (an orphan killed while the gateway was down may stay one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class FailDeadClustersOnSetup:
    """Mix-in for a dask-gateway database backend: at start-up, clusters recorded as running whose scheduler is
    gone (`do_check_clusters` says so) are marked failed at once."""

    async def do_setup(self) -> None:
        await super().do_setup()
        running = [cluster for cluster in self.db.active_clusters() if cluster.status == JobStatus.RUNNING]
        alive = await self.do_check_clusters(running) if running else []
        dead = [cluster for cluster, ok in zip(running, alive, strict=True) if not ok]
        self.db.update_clusters([(cluster, {"target": JobStatus.FAILED}) for cluster in dead])
        for cluster in dead:
            self.log.info("Cluster %s is no longer running; marking it failed", cluster.name)
            self.queue.put(cluster)


class RecoveringLocalBackend(FailDeadClustersOnSetup, UnsafeLocalBackend):
    """UnsafeLocalBackend that marks dead clusters failed at start-up (clusters run as the gateway's account)."""

    def _check_status(self, o: Any) -> bool:
        pid = o.state.get("pid")
        return pid is not None and process_alive(pid)
