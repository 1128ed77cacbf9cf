"""rucio's REST application for the TLS front ends of servers.secure_site (run with the rucio server
environment's python): `python rucio_tls_backend.py SOCKET [GRID_PORT CERT KEY CA_DIR]`.

rucio's x509 authentication reads the verified client DN from the WSGI environment (SSL_CLIENT_S_DN, as
Apache's mod_ssl exports it, legacy /-separated form). Two ways in:

- SOCKET (mode 0600, for nginx): nginx cannot set environment variables of an HTTP backend, so it sends the DN
  it verified in a header that it always overwrites, and the wrapper moves that header into SSL_CLIENT_S_DN.
  Only nginx can reach the socket, so no client can hand rucio a DN of its choosing.
- GRID_PORT (https on 127.0.0.1, optional): TLS terminated here with proxy certificates allowed
  (X509_V_FLAG_ALLOW_PROXY_CERTS, which nginx cannot set), as a grid site's mod_ssl does: a real RFC 3820 proxy
  of a CA in CA_DIR verifies, and the DN of the certificate presented (the proxy's, which rucio strips to the
  user's) becomes SSL_CLIENT_S_DN.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading

from cryptography import x509
from rucio.web.rest.flaskapi.v1.main import application
from werkzeug.serving import make_server

DN_HEADER = "HTTP_X_SSL_CLIENT_S_DN"


def behind_nginx(environ, start_response):
    dn = environ.pop(DN_HEADER, "")
    environ.pop("SSL_CLIENT_S_DN", None)
    if dn:
        environ["SSL_CLIENT_S_DN"] = dn
    return application(environ, start_response)


def legacy_dn(pem: str) -> str:
    """/DC=test/O=physlite/CN=Jane Doe/CN=1392741 (subject attributes in certificate order)."""
    subject = x509.load_pem_x509_certificate(pem.encode()).subject
    return "".join(f"/{rdn.rfc4514_string()}" for rdn in subject.rdns)


def with_tls_here(environ, start_response):
    environ.pop(DN_HEADER, None)
    environ.pop("SSL_CLIENT_S_DN", None)
    pem = environ.get("SSL_CLIENT_CERT")  # set by werkzeug only for a certificate that passed verification
    if pem:
        environ["SSL_CLIENT_S_DN"] = legacy_dn(pem)
    return application(environ, start_response)


def grid_tls_context(cert: str, key: str, ca_dir: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(capath=ca_dir)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
    return context


if __name__ == "__main__":
    os.umask(0o077)  # the socket is created 0600
    servers = [make_server(f"unix://{sys.argv[1]}", 0, behind_nginx, threaded=True)]
    if len(sys.argv) == 6:
        port, cert, key, ca_dir = int(sys.argv[2]), *sys.argv[3:]
        context = grid_tls_context(cert, key, ca_dir)
        servers.append(make_server("127.0.0.1", port, with_tls_here, threaded=True, ssl_context=context))
    threads = [threading.Thread(target=server.serve_forever) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
