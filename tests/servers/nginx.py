"""nginx serving files over https (self-signed certificate) and http on 127.0.0.1, with an access log that
records connection ids, so tests and benchmarks can count requests and connections on the server side.

Paths: /data/<file> (open), /protected/<file> (needs `Authorization: Bearer <token>`, else 401),
/forbidden/<file> (403), /x509/<file> (needs a client certificate signed by the test CA, else 403; the
certificate and key are in `proxy`, like a grid proxy).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from servers.common import client_certificate, free_port, self_signed_certificate, stop, wait_for_port

NGINX = "/usr/sbin/nginx"

CONFIG = """
worker_processes 2;
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    log_format counted '$connection $connection_requests $status $body_bytes_sent "$request" "$http_range"';
    access_log {run}/access.log counted;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    sendfile on;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{https_port} ssl;
        listen 127.0.0.1:{http_port};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {client_ca};
        ssl_verify_client optional;
        location /data/ {{ alias {root}/; }}
        location /protected/ {{
            if ($http_authorization != "Bearer {token}") {{ return 401; }}
            alias {root}/;
        }}
        location /forbidden/ {{ return 403; }}
        location /x509/ {{
            if ($ssl_client_verify != SUCCESS) {{ return 403; }}
            alias {root}/;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    root: Path
    run: Path
    https_port: int
    http_port: int
    cert: Path
    token: str
    process: subprocess.Popen
    proxy: Path

    def url(self, name: str, area: str = "data", https: bool = True) -> str:
        if https:
            return f"https://127.0.0.1:{self.https_port}/{area}/{name}"
        return f"http://127.0.0.1:{self.http_port}/{area}/{name}"

    def access_log(self) -> list[dict]:
        """One dict per request: connection id, status, body bytes, request line, Range header."""
        entries = []
        path = self.run / "access.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            connection, _, status, sent, rest = line.split(" ", 4)
            request, _, range_header = rest.rpartition(' "')
            entries.append(
                {
                    "connection": int(connection),
                    "status": int(status),
                    "bytes": int(sent),
                    "request": request.strip('"'),
                    "range": range_header.rstrip('"'),
                }
            )
        return entries

    def clear_log(self) -> None:
        (self.run / "access.log").write_text("")  # nginx appends at its own offset: truncate in place
        os.truncate(self.run / "access.log", 0)

    def stop(self) -> None:
        stop(self.process)


def start_nginx(root: Path, run: Path, token: str = "physlite-test-token") -> Nginx:
    """Start nginx serving `root`; its config, logs and certificate go to `run`."""
    run.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(run)
    client_ca, proxy = client_certificate(run)
    https_port, http_port = free_port(), free_port()
    config = run / "nginx.conf"
    config.write_text(
        CONFIG.format(
            run=run,
            root=root,
            cert=cert,
            key=key,
            client_ca=client_ca,
            https_port=https_port,
            http_port=http_port,
            token=token,
            user="user root;" if os.geteuid() == 0 else "",
        )
    )
    process = subprocess.Popen(
        [NGINX, "-c", str(config), "-p", str(run), "-e", str(run / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=open(run / "stderr.log", "wb"),  # noqa: SIM115
    )
    wait_for_port(https_port, process, log=run / "error.log")
    return Nginx(root, run, https_port, http_port, cert, token, process, proxy)
