"""rucio's REST application on a unix socket, for the TLS front end in servers.secure_site (run with the rucio
server environment's python: `python rucio_tls_backend.py SOCKET`).

rucio's x509 authentication reads the verified client DN from the WSGI environment (SSL_CLIENT_S_DN, as
Apache's mod_ssl exports it). nginx cannot set environment variables of an HTTP backend, so it sends the DN
it verified in a header that it always overwrites, and this wrapper moves that header into SSL_CLIENT_S_DN.
Only nginx can reach the socket (mode 0600), so no client can hand rucio a DN of its choosing.
"""

from __future__ import annotations

import os
import sys

from rucio.web.rest.flaskapi.v1.main import application
from werkzeug.serving import run_simple

DN_HEADER = "HTTP_X_SSL_CLIENT_S_DN"


def with_verified_dn(environ, start_response):
    dn = environ.pop(DN_HEADER, "")
    environ.pop("SSL_CLIENT_S_DN", None)
    if dn:
        environ["SSL_CLIENT_S_DN"] = dn
    return application(environ, start_response)


if __name__ == "__main__":
    socket_path = sys.argv[1]
    os.umask(0o077)  # the socket is created 0600
    run_simple(f"unix://{socket_path}", 0, with_verified_dn, threaded=True)
