"""Test X509 credentials made with openssl: a CA and a "proxy" of a user, i.e. one PEM file with a certificate
and its key whose subject is the user's DN followed by a numeric CN, as `voms-proxy-init` names proxies; and
the same from a CA that no server trusts.

Why not a real RFC 3820 proxy (signed by the user's certificate, with a proxyCertInfo extension): nginx cannot
verify one. OpenSSL accepts proxy certificates only with the X509_V_FLAG_ALLOW_PROXY_CERTS flag, which nginx
never sets, and OpenSSL >= 1.1 ignores the old OPENSSL_ALLOW_PROXY_CERTS variable (`openssl verify` without
`-allow_proxy_certs` answers "proxy certificates not allowed"). Grid sites verify proxies with mod_ssl,
XRootD or dCache; what the tests check with nginx is the part that is ours: the client presents the uploaded
file as its certificate, the front end verifies it against the CA and hands rucio the DN, and rucio strips the
proxy CN to find the account.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from servers.common import openssl_self_signed

EXTENSIONS = """
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""
PROXY_CN = "/CN=1392741"


@dataclass(frozen=True)
class GridCredentials:
    ca_cert: Path
    user_dn: str  # as rucio stores X509 identities (/DC=.../CN=...), without the proxy CN
    proxy: Path  # certificate + key of `user_dn` + PROXY_CN, signed by `ca_cert`, mode 0600
    stranger_proxy: Path  # the same subject, signed by a CA that nobody trusts


def _openssl(*arguments: str) -> None:
    subprocess.run(["openssl", *arguments], check=True, capture_output=True)


def _proxy(folder: Path, name: str, subject: str, ca: tuple[Path, Path]) -> Path:
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key),
             "-out", str(request))  # fmt: skip
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-set_serial",
             "1392741", "-days", "2", "-extfile", str(folder / "extensions.cnf"), "-extensions", "client",
             "-out", str(cert))  # fmt: skip
    proxy = folder / f"x509up_{name}"
    proxy.write_bytes(cert.read_bytes() + key.read_bytes())
    proxy.chmod(0o600)
    return proxy


def make_grid_credentials(folder: Path, user_dn: str = "/DC=test/O=physlite/CN=Jane Doe") -> GridCredentials:
    """The test CA, the user's proxy it signed and a stranger's proxy, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "extensions.cnf").write_text(EXTENSIONS)
    ca = folder / "ca.crt", folder / "ca.key"
    openssl_self_signed(ca[0], ca[1], "/DC=test/O=physlite/CN=physlite test CA")
    stranger_ca = folder / "stranger-ca.crt", folder / "stranger-ca.key"
    openssl_self_signed(stranger_ca[0], stranger_ca[1], "/CN=some other CA")
    return GridCredentials(
        ca_cert=ca[0],
        user_dn=user_dn,
        proxy=_proxy(folder, "jdoe", user_dn + PROXY_CN, ca),
        stranger_proxy=_proxy(folder, "stranger", user_dn + PROXY_CN, stranger_ca),
    )
