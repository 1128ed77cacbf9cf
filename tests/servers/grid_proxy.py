"""Test X509 credentials made with openssl: a CA (also as a hashed CA folder, like /etc/grid-security/
certificates), a host certificate, and the user's proxy in two forms, plus the same from a CA nobody trusts.

- `proxy`: a real RFC 3820 proxy as `voms-proxy-init` writes /tmp/x509up_u<uid> (proxy certificate with the
  proxyCertInfo extension and subject = the user's DN + a numeric CN, signed by the user's key; its key; the
  user certificate). XRootD's GSI verifies it.
- `tls_proxy`: one PEM file with a CA-signed certificate whose subject has the same proxy form, and its key.
  nginx cannot verify a real proxy: OpenSSL accepts proxy certificates only with the
  X509_V_FLAG_ALLOW_PROXY_CERTS flag, which nginx never sets, and OpenSSL >= 1.1 ignores the old
  OPENSSL_ALLOW_PROXY_CERTS variable (`openssl verify` without `-allow_proxy_certs` answers "proxy
  certificates not allowed"). Grid sites verify proxies with mod_ssl, XRootD or dCache; here XRootD's GSI and
  the rucio entry that terminates TLS itself (servers.rucio_tls_backend) verify `proxy`, nginx `tls_proxy`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from servers.common import openssl_self_signed

EXTENSIONS = """
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[host]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[proxy]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
proxyCertInfo = critical, language:id-ppl-inheritAll
"""
PROXY_CN = "/CN=1392741"


@dataclass(frozen=True)
class GridCredentials:
    ca_cert: Path
    ca_dir: Path  # the CA as <subject hash>.0, for X509_CERT_DIR and XRootD's -certdir
    host_cert: Path  # CN=localhost, signed by the CA
    host_key: Path
    user_dn: str  # as rucio stores X509 identities (/DC=.../CN=...), without the proxy CN
    proxy: Path  # RFC 3820 proxy of `user_dn` (mode 0600)
    tls_proxy: Path  # CA-signed certificate of `user_dn` + PROXY_CN and its key (mode 0600)
    stranger_proxy: Path  # RFC 3820 proxy from a CA nobody trusts
    stranger_tls_proxy: Path  # tls_proxy from a CA nobody trusts


def _openssl(*arguments: str) -> None:
    subprocess.run(["openssl", *arguments], check=True, capture_output=True)


def _signed(folder: Path, name: str, subject: str, issuer: tuple[Path, Path], section: str, serial: int):
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key),
             "-out", str(request))  # fmt: skip
    _openssl("x509", "-req", "-in", str(request), "-CA", str(issuer[0]), "-CAkey", str(issuer[1]), "-set_serial",
             str(serial), "-days", "2", "-extfile", str(folder / "extensions.cnf"), "-extensions", section,
             "-out", str(cert))  # fmt: skip
    return cert, key


def subject_hash(cert: Path) -> str:
    """The name OpenSSL looks a CA up by in a CA folder (<hash>.0)."""
    return subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(cert)], check=True, capture_output=True, text=True
    ).stdout.strip()


def _private(path: Path, *parts: Path) -> Path:
    path.write_bytes(b"".join(part.read_bytes() for part in parts))
    path.chmod(0o600)
    return path


def _proxies(folder: Path, name: str, user_dn: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    user = _signed(folder, f"{name}-user", user_dn, ca, "client", 4097)
    proxy = _signed(folder, f"{name}-proxy", user_dn + PROXY_CN, user, "proxy", 1392741)
    tls = _signed(folder, f"{name}-tls", user_dn + PROXY_CN, ca, "client", 1392742)
    return _private(folder / f"x509up_{name}", *proxy, user[0]), _private(folder / f"x509tls_{name}", *tls)


def make_grid_credentials(folder: Path, user_dn: str = "/DC=test/O=physlite/CN=Jane Doe") -> GridCredentials:
    """The test CA, a host certificate, the user's proxies and a stranger's, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "extensions.cnf").write_text(EXTENSIONS)
    ca = folder / "ca.crt", folder / "ca.key"
    openssl_self_signed(ca[0], ca[1], "/DC=test/O=physlite/CN=physlite test CA")
    ca_dir = folder / "certificates"
    ca_dir.mkdir(exist_ok=True)
    shutil.copyfile(ca[0], ca_dir / f"{subject_hash(ca[0])}.0")
    host_cert, host_key = _signed(folder, "host", "/DC=test/O=physlite/CN=localhost", ca, "host", 4096)
    stranger_ca = folder / "stranger-ca.crt", folder / "stranger-ca.key"
    openssl_self_signed(stranger_ca[0], stranger_ca[1], "/CN=some other CA")
    proxy, tls_proxy = _proxies(folder, "jdoe", user_dn, ca)
    stranger_proxy, stranger_tls_proxy = _proxies(folder, "stranger", user_dn, stranger_ca)
    return GridCredentials(
        ca[0], ca_dir, host_cert, host_key, user_dn, proxy, tls_proxy, stranger_proxy, stranger_tls_proxy
    )
