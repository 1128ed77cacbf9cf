"""A git server over smart HTTP (`git http-backend` behind Python's http.server) for Flux's source-controller.

It serves the bare repositories under a folder, read-only, to whoever reaches its address; the Flux test runs
it inside the node's network namespace on the node's address, so pods clone from it and nothing leaves the
machine. (source-controller accepts only http(s) and ssh URLs, and go-git speaks only git's smart protocol,
so neither `git daemon` nor a static file server will do.)

    python -m tests.cluster.git_server --listen 10.201.0.1:18418 --root /tmp/repos
    # -> http://10.201.0.1:18418/facility.git
"""

from __future__ import annotations

import argparse
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def handler_for(root: Path) -> type[BaseHTTPRequestHandler]:
    """A request handler that answers every GET and POST with `git http-backend` for the repositories in `root`.

    Example:
        >>> ThreadingHTTPServer(("127.0.0.1", 0), handler_for(Path("/tmp/repos")))  # doctest: +SKIP
    """

    class GitHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._backend()

        def do_POST(self) -> None:
            self._backend()

        def _backend(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(length),
                "REMOTE_ADDR": self.client_address[0],
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "PATH": "/usr/bin:/bin",
            }
            result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            if result.returncode != 0 or not head:
                self.send_error(500, f"git http-backend: {result.stderr.decode(errors='replace')[:200]}")
                return
            status, headers = 200, []
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return GitHandler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--root", required=True, type=Path, help="folder of bare repositories")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    ThreadingHTTPServer((host, int(port)), handler_for(args.root)).serve_forever()


if __name__ == "__main__":
    main()
