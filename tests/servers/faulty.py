"""Start the faulty HTTP server (faulty_http.py) as a process, and a host that never answers."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from servers.common import free_port, stop, wait_for_port

SCRIPT = Path(__file__).with_name("faulty_http.py")


@dataclass
class FaultyServer:
    port: int
    process: subprocess.Popen

    def url(self, mode: str, name: str, count: int = 0) -> str:
        """URL whose first `count` requests misbehave as `mode` (0: all of them); unique per call."""
        return f"http://127.0.0.1:{self.port}/{mode}/{count}/{uuid.uuid4().hex[:8]}/{name}"

    def requests(self) -> dict[str, int]:
        """The number of requests per URL path the server has answered so far."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as answer:
            return json.load(answer)

    def stop(self) -> None:
        stop(self.process)


def start_faulty(root: Path) -> FaultyServer:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--root", str(root), "--port", str(port)])
    wait_for_port(port, process)
    return FaultyServer(port, process)


class SilentHost:
    """A port whose accept queue is full: connection attempts hang like towards a dead host."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self._fillers = []
        for _ in range(4):  # fill the accept queue (backlog 0 holds one or two), never accepting
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self.listener.close()
