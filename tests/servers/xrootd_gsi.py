"""The Debian XRootD server (servers.xrootd, in its own network namespace) requiring GSI authentication: a
client must present an X509 proxy whose chain ends at the test CA, else the login fails.

The client side needs, besides the proxy (X509_USER_PROXY): the CA folder (X509_CERT_DIR) and
XrdSecGSISRVNAMES=localhost, because the GSI client expects the server certificate's CN to be the host name it
connected to, and that is the address 127.0.0.1 here.
"""

from __future__ import annotations

from pathlib import Path

from servers.grid_proxy import GridCredentials
from servers.xrootd import XRootD, start_xrootd

SECURITY = """
sec.protocol gsi -certdir:{run}/certificates -cert:{run}/hostcert.pem -key:{run}/hostkey.pem -gmapopt:0 -vomsat:0 -dlgpxy:0 -crl:0
sec.protbind * only gsi
"""


def start_xrootd_gsi(files: dict[str, Path], grid: GridCredentials) -> XRootD:
    """Serve `files` ({path in the server: file}) to GSI-authenticated clients only."""
    private = {"certificates": grid.ca_dir, "hostcert.pem": grid.host_cert, "hostkey.pem": grid.host_key}
    return start_xrootd(files, security=SECURITY, private=private)


def client_environment(grid: GridCredentials, proxy: Path | None) -> dict[str, str]:
    """What a GSI client process needs in its environment (the XRootD client reads it once per process)."""
    environment = {"X509_CERT_DIR": str(grid.ca_dir), "XrdSecGSISRVNAMES": "localhost"}
    environment["X509_USER_PROXY"] = str(proxy) if proxy else str(grid.ca_dir / "no-proxy-here")
    return environment
