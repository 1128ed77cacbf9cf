"""A small HTTP/1.1 file server that misbehaves on purpose (run as its own process, so a test can kill it).

    python tests/servers/faulty_http.py --root DIR --port PORT

URL paths: /<mode>/<count>/<tag>/<file>. The first <count> requests to that path misbehave, later ones are
served correctly (count 0: always misbehave); <tag> keeps tests apart. Modes:
ok (never misbehaves), drop (closes the connection without answering), status-<code> (answers <code>, with
`Retry-After: 0` for 429/503), stall (sends half the body, then nothing), truncate (sends half the body and
closes), norange (answers 200 with the whole file), wrongrange (answers 206 with the range shifted by one
byte, Content-Range saying so), lateshift (like wrongrange, but only after the first <count> requests),
multipart (answers multi-range requests like nginx; the other modes answer them with the whole file, like S3),
multitruncate (multipart, but the body breaks off halfway), redirect (307 to the same file under /ok/, with a
signature in the query string), slow (sends the body in small pieces, slowly: a test kills the server meanwhile).
GET /stats answers the number of requests per path so far (JSON), for tests that check what was read.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path
    seen: Counter
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/stats":
            with self.lock:
                self._answer(200, json.dumps(dict(self.seen)).encode(), {"Content-Type": "application/json"})
            return
        parts = self.path.split("?", 1)[0].split("/", 4)
        if len(parts) != 5:
            self.send_error(404)
            return
        _, mode, count, _tag, name = parts
        with self.lock:
            self.seen[self.path] += 1
            nth = self.seen[self.path]
        misbehave = mode != "ok" and (int(count) == 0 or nth <= int(count))
        if mode == "lateshift":
            mode, misbehave = "wrongrange", nth > int(count)
        path = self.root / name
        if not path.is_file():
            self._answer(404, b"no such file")
            return
        data = path.read_bytes()
        if mode == "redirect":  # like a redirector (XRootD, dCache): the data are on /ok/ of this server
            self._answer(307, b"", {"Location": f"/ok/0/{_tag}/{name}?signature=s3cr3t"})
            return
        if misbehave and mode == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if misbehave and mode.startswith("status-"):
            code = int(mode.split("-")[1])
            self._answer(code, b"failure on purpose", {"Retry-After": "0"} if code in (429, 503) else {})
            return
        if misbehave and mode == "norange":
            self._answer(200, data)
            return
        asked = self.headers.get("Range", "")
        if "," in asked and mode in ("multipart", "multitruncate"):
            self._multipart(data, asked, truncate=misbehave and mode == "multitruncate")
            return
        match = RANGE.match(asked)
        if not match:
            self._answer(200, data)
            return
        first, last = match.groups()
        if first == "":
            first, last = max(0, len(data) - int(last)), len(data) - 1
        else:
            first, last = int(first), min(int(last or len(data) - 1), len(data) - 1)
        if first >= len(data):
            self._answer(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            return
        if misbehave and mode == "wrongrange" and last + 1 < len(data):
            first, last = first + 1, last + 1
        body = data[first : last + 1]
        headers = {"Content-Range": f"bytes {first}-{last}/{len(data)}", "ETag": '"v1"'}
        self.send_response(206)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if misbehave and mode in ("stall", "truncate"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mode == "stall":
                time.sleep(3600)
            self.close_connection = True
            return
        if mode == "slow":
            for i in range(0, len(body), 4096):
                self.wfile.write(body[i : i + 4096])
                self.wfile.flush()
                time.sleep(0.02)
            return
        self.wfile.write(body)

    def _multipart(self, data: bytes, asked: str, truncate: bool) -> None:
        """multipart/byteranges, like nginx; `truncate` closes the connection halfway through the body."""
        boundary = "physlitetestboundary"
        body = b""
        for part in asked.removeprefix("bytes=").split(","):
            first, last = (int(x) for x in part.split("-"))
            body += (
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Range: bytes {first}-{last}/{len(data)}\r\n\r\n"
            ).encode() + data[first : last + 1]
        body += f"\r\n--{boundary}--\r\n".encode()
        self.send_response(206)
        self.send_header("Content-Type", f"multipart/byteranges; boundary={boundary}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Handler.root = args.root
    Handler.seen = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
