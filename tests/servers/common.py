"""Helpers shared by the test servers: free ports, waiting for a port, a self-signed certificate."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen | None = None, timeout: float = 15.0, log: Path | None = None
) -> None:
    """Return when 127.0.0.1:port accepts connections; fail with the server's log if it died or never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    detail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(
        f"server on 127.0.0.1:{port} did not come up (exit code {process and process.poll()}): {detail}"
    )


def wait_for_http(
    url: str,
    process: subprocess.Popen,
    log: Path,
    what: str,
    timeout: float = 60.0,
    error_answers: bool = True,
) -> None:
    """Wait until `url` answers (an HTTP error status counts as an answer when `error_answers`); stop `process`
    and raise naming `what` with the tail of `log` if it exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            if error_answers:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


def openssl_self_signed(cert: Path, key: Path, subject: str, *extra: str) -> None:
    """A new RSA key and a self-signed certificate for ``subject``, valid two days (openssl)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject, *extra,
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, made with openssl; the certificate is its own CA."""
    cert, key = folder / "server.crt", folder / "server.key"
    openssl_self_signed(cert, key, "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    return cert, key


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate one process we started (by its id) and wait for it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def client_certificate(folder: Path) -> tuple[Path, Path]:
    """A CA and a client certificate it signed, the certificate and key in one PEM file like a grid proxy.
    Returns (CA certificate, proxy-like PEM)."""
    ca_key, ca_cert = folder / "ca.key", folder / "ca.crt"
    key, request, cert = folder / "user.key", folder / "user.csr", folder / "user.crt"
    run = lambda *command: subprocess.run(command, check=True, capture_output=True)  # noqa: E731
    openssl_self_signed(ca_cert, ca_key, "/CN=physlite test CA")
    run(
        "openssl",
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=jdoe",
        "-keyout",
        str(key),
        "-out",
        str(request),
    )
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(request),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        str(cert),
    )
    proxy = folder / "x509up_test"
    proxy.write_bytes(cert.read_bytes() + key.read_bytes())
    proxy.chmod(0o600)
    return ca_cert, proxy
