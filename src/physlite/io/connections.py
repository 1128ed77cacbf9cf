"""Kept-alive HTTP(S) connections shared by every source of the process, per server and TLS setup: the next file
of a dataset on the same server (or the same file re-opened) starts without TCP and TLS handshakes.

Example:
    >>> context = tls_context(ca_file=None, verify=True, proxy=None)  # cached: same setup, same context
    >>> close_idle_connections()  # e.g. before forking worker processes
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import time

from physlite.io.errors import CredentialError

IDLE_SECONDS = 20.0  # older idle connections are closed, not reused: servers time them out (nginx: 75 s)
MAX_IDLE = 64  # idle connections kept per server and TLS setup

_lock = threading.Lock()
_idle: dict[tuple, list[tuple[http.client.HTTPConnection, float]]] = {}
_owner = os.getpid()
_contexts: dict[tuple, ssl.SSLContext] = {}


def _forked() -> None:
    """After a fork the parent's connections must not be shared: forget them (the parent keeps using them)."""
    global _owner
    if os.getpid() != _owner:
        _idle.clear()
        _owner = os.getpid()


def take(key: tuple) -> http.client.HTTPConnection | None:
    """The most recently used idle connection for `key`, or None."""
    now = time.monotonic()
    stale = []
    try:
        with _lock:
            _forked()
            pool = _idle.get(key, [])
            while pool:
                connection, since = pool.pop()
                if now - since <= IDLE_SECONDS:
                    return connection
                stale.append(connection)
            return None
    finally:
        for connection in stale:
            connection.close()


def give(key: tuple, connection: http.client.HTTPConnection) -> None:
    """Return a connection whose last response was read completely."""
    with _lock:
        _forked()
        pool = _idle.setdefault(key, [])
        if len(pool) < MAX_IDLE:
            pool.append((connection, time.monotonic()))
            return
    connection.close()


def close_idle_connections() -> None:
    """Close every idle connection of this process."""
    with _lock:
        _forked()
        pools = list(_idle.values())
        _idle.clear()
    for pool in pools:
        for connection, _ in pool:
            connection.close()


def tls_context(ca_file: str | None, verify: bool, proxy: str | None) -> ssl.SSLContext:
    """The TLS setup for these settings (CAs from `ca_file`, else $SSL_CERT_FILE/$X509_CERT_DIR and the system;
    the X509 proxy as client certificate), made once per process and changed proxy file."""
    cert_dir = os.environ.get("X509_CERT_DIR") if ca_file is None else None
    proxy_version = os.stat(proxy).st_mtime_ns if proxy and os.path.exists(proxy) else None
    key = (ca_file, verify, proxy, proxy_version, cert_dir, os.environ.get("SSL_CERT_FILE"))
    with _lock:
        context = _contexts.get(key)
    if context is not None:
        return context
    context = ssl.create_default_context(cafile=ca_file)
    if cert_dir and os.path.isdir(cert_dir):
        context.load_verify_locations(capath=cert_dir)  # the grid's CA folder
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if proxy:
        try:
            context.load_cert_chain(proxy)
        except (OSError, ssl.SSLError) as error:
            raise CredentialError(
                f"X509 proxy {proxy} cannot be used as a client certificate: {error}"
            ) from None
    with _lock:
        return _contexts.setdefault(key, context)
