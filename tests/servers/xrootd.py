"""The Debian XRootD server (root:// and XrdHttp) as user xrootd in its own network namespace, reached from
127.0.0.1 through forward.py. Files are served from a world-readable folder under /tmp."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from servers.common import free_port, stop, wait_for_port

ROOT_PORT, HTTP_PORT = 1094, 8080

CONFIG = """
all.export /
oss.localroot {root}
xrd.port {root_port}
xrd.protocol XrdHttp:{http_port} libXrdHttp.so
all.adminpath {run}/admin
all.pidpath {run}
xrootd.seclib default
"""


@dataclass
class XRootD:
    root: Path
    run: Path
    netns: str
    root_port: int
    http_port: int
    server: subprocess.Popen
    forwarder: subprocess.Popen | None

    def url(self, name: str) -> str:
        return f"root://127.0.0.1:{self.root_port}//{name}"

    def http_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/{name}"

    def stop(self) -> None:
        if self.forwarder is not None:
            stop(self.forwarder)
        stop(self.server)
        if self.netns:
            subprocess.run(["ip", "netns", "delete", self.netns], check=False, capture_output=True)
        shutil.rmtree(self.run, ignore_errors=True)


def start_xrootd(
    files: list[Path] | dict[str, Path],
    isolated: bool = True,
    security: str = "",
    private: dict[str, Path] | None = None,
    environment: dict[str, str] | None = None,
) -> XRootD:
    """Serve `files` (a list, served by name, or {path in the server: file}), copied into a folder the xrootd
    user can read. `isolated=False` runs it in the current network namespace (the benchmark's own one, where
    listening on every interface means loopback only), on free ports and without the forwarder.
    `security`: configuration lines appended (`{run}` is the server's folder); `private`: {name: file} copied
    into that folder for the xrootd user only (keys, certificates, CA folders, caches); `environment`: extra
    variables of the server process (`{run}` as above)."""
    run = Path(tempfile.mkdtemp(prefix="physlite-xrootd-"))
    root = run / "data"
    root.mkdir()
    mapping = files if isinstance(files, dict) else {path.name: path for path in files}
    for relative, path in mapping.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / relative)
    (run / "admin").mkdir()
    for folder in (run, *(p for p in root.rglob("*") if p.is_dir()), root):
        folder.chmod(0o755)
    shutil.chown(run / "admin", "xrootd", "xrootd")
    shutil.chown(run, "xrootd", "xrootd")
    for name, path in (private or {}).items():
        copy = shutil.copytree if path.is_dir() else shutil.copyfile
        copy(path, run / name)
        for item in (run / name, *(run / name).rglob("*")):
            shutil.chown(item, "xrootd", "xrootd")
            item.chmod(0o700 if item.is_dir() else 0o600)
    security = security.format(run=run)
    config = run / "xrootd.cfg"
    if not isolated:
        if security or private or environment:
            raise ValueError("security settings are for the isolated (network namespace) server only")
        return _start_here(root, run, config)
    config.write_text(CONFIG.format(root=root, run=run, root_port=ROOT_PORT, http_port=HTTP_PORT) + security)
    netns = f"physlite-xrd-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True, capture_output=True)
    log = run / "xrootd.log"
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            netns,
            "runuser",
            "-u",
            "xrootd",
            "--",
            "xrootd",
            "-c",
            str(config),
            "-l",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env={**os.environ, **{k: v.format(run=run) for k, v in (environment or {}).items()}},
    )
    root_port, http_port = free_port(), free_port()
    forwarder = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("forward.py")),
            "--netns",
            netns,
            f"{root_port}:{ROOT_PORT}",
            f"{http_port}:{HTTP_PORT}",
        ]
    )
    wait_for_port(root_port, forwarder)
    handle = XRootD(root, run, netns, root_port, http_port, server, forwarder)
    try:
        _wait_for_xrootd(handle, log)
    except BaseException:
        handle.stop()
        raise
    return handle


def _start_here(root: Path, run: Path, config: Path) -> XRootD:
    root_port, http_port = free_port(), free_port()
    config.write_text(CONFIG.format(root=root, run=run, root_port=root_port, http_port=http_port))
    log = run / "xrootd.log"
    server = subprocess.Popen(
        ["runuser", "-u", "xrootd", "--", "xrootd", "-c", str(config), "-l", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(root_port, server, log=log)
    except BaseException:
        stop(server)
        raise
    return XRootD(root, run, "", root_port, http_port, server, None)


def _wait_for_xrootd(handle: XRootD, log: Path, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.server.poll() is not None:
            break
        probe = subprocess.run(
            ["ip", "netns", "exec", handle.netns, "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{ROOT_PORT}"],
            capture_output=True,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.1)
    detail = log.read_text()[-3000:] if log.exists() else ""
    raise RuntimeError(f"xrootd did not start (exit {handle.server.poll()}): {detail}")


if os.name != "posix":  # pragma: no cover
    raise ImportError("the XRootD test server needs Linux network namespaces")
