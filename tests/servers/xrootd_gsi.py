"""The Debian XRootD server (servers.xrootd, in its own network namespace) requiring an X509 proxy of the test
CA: over root:// the GSI protocol, over https (XrdHttp) a verified client certificate; XRootD verifies real
RFC 3820 proxies in both. The grid-mapfile maps the user's DN (the proxy CN stripped) to `jdoe`, and the
authorization database lets only jdoe read /test: a client without a proxy, or with one of another CA or DN,
is refused.

The root:// client needs, besides the proxy (X509_USER_PROXY): the CA folder (X509_CERT_DIR) and
XrdSecGSISRVNAMES=localhost, because the GSI client expects the server certificate's CN to be the host name it
connected to, and that is the address 127.0.0.1 here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from servers.grid_proxy import GridCredentials
from servers.xrootd import XRootD, start_xrootd

SECURITY = """
sec.protocol gsi -certdir:{run}/certificates -cert:{run}/hostcert.pem -key:{run}/hostkey.pem -gridmap:{run}/grid-mapfile -gmapopt:1 -vomsat:0 -dlgpxy:0 -crl:0
sec.protbind * only gsi
xrd.tls {run}/hostcert.pem {run}/hostkey.pem
xrd.tlsca certdir {run}/certificates
http.gridmap {run}/grid-mapfile
ofs.authorize 1
acc.authdb {run}/authdb
acc.audit deny
"""


def start_xrootd_gsi(files: dict[str, Path], grid: GridCredentials) -> XRootD:
    """Serve `files` ({path in the server: file}, under test/) to the holder of the user's proxy only."""
    with tempfile.TemporaryDirectory(prefix="physlite-xrootd-gsi-") as staging:
        (Path(staging) / "grid-mapfile").write_text(f'"{grid.user_dn}" jdoe\n')
        (Path(staging) / "authdb").write_text("u jdoe /test lr\n")
        private = {
            "certificates": grid.ca_dir,
            "hostcert.pem": grid.host_cert,
            "hostkey.pem": grid.host_key,
            "grid-mapfile": Path(staging) / "grid-mapfile",
            "authdb": Path(staging) / "authdb",
        }
        return start_xrootd(files, security=SECURITY, private=private)


def https_url(server: XRootD, name: str) -> str:
    """The file over https (XrdHttp on the server's http port, which speaks TLS once xrd.tls is set)."""
    return f"https://127.0.0.1:{server.http_port}/{name}"


def client_environment(grid: GridCredentials, proxy: Path | None) -> dict[str, str]:
    """What a GSI client process needs in its environment (the XRootD client reads it once per process)."""
    environment = {"X509_CERT_DIR": str(grid.ca_dir), "XrdSecGSISRVNAMES": "localhost"}
    environment["X509_USER_PROXY"] = str(proxy) if proxy else str(grid.ca_dir / "no-proxy-here")
    return environment
