"""A site where every service requires the user's credential, on 127.0.0.1, for the credential tests.

One nginx (https, certificate of servers.common) fronts three services:

- the token issuer (IAM stand-in): discovery document and JWKS of a servers.token_issuer.TokenIssuer;
- rucio (PyPI server, SQLite) with authentication required: JWT access tokens from that issuer (rucio's own
  OIDC validation: signature from the issuer's JWKS, `openid profile` scope, `rucio` audience, identity
  `SUB=..., ISS=...` of account `jdoe`) and X509 (nginx verifies the client certificate against the test CA
  and passes its legacy-format DN to rucio's x509 endpoint, which strips the proxy CN);
- storage: /token/<file> only with a bearer token the validator accepts (nginx `auth_request`), /x509/<file>
  only with a client certificate signed by the test CA, /open/<file> to anyone.

Options: `issuers` are further OIDC issuers rucio trusts (e.g. the local facility's development IAM; accounts of
their users with `add_token_account`); `certificate` is the (certificate, key) of every https endpoint instead
of a new self-signed one (e.g. one that the facility trusts too, with more addresses).

rucio has a second entry, `rucio_grid_url`, where its backend terminates TLS itself with proxy certificates
allowed (nginx cannot verify real RFC 3820 proxies, see servers.grid_proxy): the uploaded proxy of the
original demo authenticates there. Tests add RSEs for XRootD with `add_rse`.

The rucio database holds account jdoe (identities: the proxy's DN and the token's subject), RSE SECURE_DISK
(https, prefix /token/), RSE X509_DISK (https, prefix /x509/), scope `test` and a replica of each served file
on both.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from servers.common import free_port, self_signed_certificate, stop, wait_for_port
from servers.grid_proxy import GridCredentials, make_grid_credentials, subject_hash
from servers.nginx import NGINX
from servers.rucio_server import PASSWORD, RUCIO_ENV, USERNAME, bootstrap_rucio
from servers.token_issuer import TokenIssuer, TokenValidator

ACCOUNT = "jdoe"
TOKEN_SUBJECT = "5f1c2b7e-jdoe"

OIDC_CONFIG = """
[oidc]
idpsecrets = {run}/idpsecrets.json
admin_issuer = test-iam
expected_audience = rucio
expected_scope = openid profile
"""

NGINX_CONFIG = """
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {run}/access.log;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    default_type application/octet-stream;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    # optional_no_ca: a certificate from an unknown CA still gets a clear 401/403 instead of a TLS alert
    ssl_client_certificate {client_ca};
    ssl_verify_client optional_no_ca;
    map $ssl_client_verify $verified_dn {{ SUCCESS $ssl_client_s_dn_legacy; default ""; }}

    server {{
        listen 127.0.0.1:{issuer_port} ssl;
        root {issuer_root};
        default_type application/json;
    }}
    server {{
        listen 127.0.0.1:{rucio_port} ssl;
        location / {{
            proxy_pass http://unix:{run}/rucio.sock;
            proxy_set_header X-SSL-Client-S-DN $verified_dn;
            proxy_set_header Host $host:$server_port;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
        }}
    }}
    server {{
        listen 127.0.0.1:{storage_port} ssl;
        location /token/ {{
            auth_request /_check_token;
            alias {root}/;
        }}
        location = /_check_token {{
            internal;
            proxy_pass http://127.0.0.1:{validator_port}/validate;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location /x509/ {{
            if ($ssl_client_verify != SUCCESS) {{ return 403; }}
            alias {root}/;
        }}
        location /open/ {{
            alias {root}/;
        }}
    }}
}}
"""

CLIENT_CONFIG = """
[client]
rucio_host = {url}
auth_host = {url}
ca_cert = {ca_cert}
auth_token_file_path = {token_file}
request_retries = 1
"""


@dataclass
class SecureSite:
    run: Path
    cert: Path  # the CA (self-signed) of every https endpoint
    issuer: TokenIssuer
    validator: TokenValidator
    grid: GridCredentials
    rucio_url: str
    rucio_grid_url: str  # the same rucio, TLS terminated by the backend with proxy certificates allowed
    storage_url: str
    nginx: subprocess.Popen
    rucio: subprocess.Popen

    @property
    def ca_dir(self) -> Path:
        """A CA folder (X509_CERT_DIR) trusting this site's https endpoints and the test CA (XRootD's TLS)."""
        folder = self.run / "trusted"
        if not folder.exists():
            folder.mkdir()
            for path in (self.cert, self.grid.ca_cert):
                (folder / f"{subject_hash(path)}.0").write_bytes(path.read_bytes())
        return folder

    def client_config(self, name: str, auth_type: str | None = None, grid: bool = False) -> Path:
        """A user's rucio client configuration (its own token cache); `auth_type` None leaves it to
        $RUCIO_AUTH_TYPE; `grid` uses the entry that verifies real proxies (rucio_grid_url)."""
        folder = self.run / "clients" / name
        folder.mkdir(parents=True, exist_ok=True)
        url, ca_cert = (self.rucio_grid_url, self.grid.ca_cert) if grid else (self.rucio_url, self.cert)
        text = CLIENT_CONFIG.format(url=url, ca_cert=ca_cert, token_file=folder / "token")
        if auth_type:
            text += f"auth_type = {auth_type}\n"
        (folder / "rucio.cfg").write_text(text)
        return folder / "rucio.cfg"

    def admin(self):
        """A rucio client of the root account (userpass through the TLS front end), with a configuration and
        token cache of its own: the client reads both when it is made, from $RUCIO_CONFIG."""
        from rucio.client import Client
        from rucio.common.config import clean_cached_config

        config = self.client_config("admin", "userpass")
        config.write_text(
            config.read_text() + f"username = {USERNAME}\npassword = {PASSWORD}\naccount = root\n"
        )
        previous = os.environ.get("RUCIO_CONFIG")
        os.environ["RUCIO_CONFIG"] = str(config)
        clean_cached_config()
        try:
            return Client()
        finally:
            if previous is None:
                os.environ.pop("RUCIO_CONFIG")
            else:
                os.environ["RUCIO_CONFIG"] = previous
            clean_cached_config()

    def add_rse(
        self, rse: str, scheme: str, port: int, prefix: str, files: list[Path], hostname: str = "127.0.0.1"
    ) -> None:
        """Register RSE `rse` (scheme://hostname:port + prefix + test/<name>) holding a replica of `files`."""
        admin = self.admin()
        domains = {"lan": {"read": 1, "write": 1, "delete": 1}, "wan": {"read": 1, "write": 1, "delete": 1}}
        admin.add_rse(rse)
        protocol = {"scheme": scheme, "hostname": hostname, "port": port, "prefix": prefix}
        admin.add_protocol(rse, {**protocol, "impl": "rucio.rse.protocols.gfal.Default", "domains": domains})
        for path in files:
            replica = {
                "scope": "test",
                "name": path.name,
                "bytes": path.stat().st_size,
                "adler32": "00000001",
            }
            admin.add_replicas(rse, [replica])

    def add_token_account(self, account: str, subject: str, issuer: str) -> None:
        """Account `account` whose identity is the token subject `subject` of `issuer` (one of `issuers`)."""
        admin = self.admin()
        email = f"{account}@example.org"
        admin.add_account(account, "USER", email)
        admin.add_identity(account, f"SUB={subject}, ISS={issuer}", "OIDC", email, default=True)

    def user_token(self, **claims) -> str:
        """An access token of jdoe, as the facility hands it to the user's server (see TokenIssuer.issue)."""
        return self.issuer.issue(TOKEN_SUBJECT, **claims)

    def stop(self) -> None:
        stop(self.rucio)
        stop(self.nginx)
        self.validator.stop()


def _wait_for_rucio(url: str, ca: Path, process: subprocess.Popen, log: Path) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2, context=context) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"rucio behind nginx did not answer /ping: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def _register(site: SecureSite, files: list[Path]) -> None:
    """Account jdoe with its two identities, the RSEs of the storage, scope `test`, the replicas."""
    admin = site.admin()
    admin.add_account(ACCOUNT, "USER", "jdoe@example.org")
    admin.add_identity(ACCOUNT, site.grid.user_dn, "X509", "jdoe@example.org", default=True)
    admin.add_identity(
        ACCOUNT, f"SUB={TOKEN_SUBJECT}, ISS={site.issuer.issuer}", "OIDC", "jdoe@example.org", default=True
    )
    admin.add_scope("root", "test")
    port = int(site.storage_url.rsplit(":", 1)[1])
    site.add_rse("SECURE_DISK", "https", port, "/token/", files)
    site.add_rse("X509_DISK", "https", port, "/x509/", files)


def start_secure_site(
    run: Path,
    root: Path,
    files: list[Path],
    issuers: Sequence[str] = (),
    certificate: tuple[Path, Path] | None = None,
) -> SecureSite:
    """Start the site in `run`, serving `root` (whose `test/` holds `files`), and register the files in rucio
    (`issuers`, `certificate`: see the module's docstring).

    rucio's client library caches its configuration per process: callers clear it (clean_cached_config)
    before and after using the site."""
    run.mkdir(parents=True, exist_ok=True)
    cert, key = certificate or self_signed_certificate(run)
    grid = make_grid_credentials(run / "grid")
    issuer_port, rucio_port, storage_port, grid_port = free_port(), free_port(), free_port(), free_port()
    issuer = TokenIssuer(f"https://127.0.0.1:{issuer_port}")
    issuer.publish(run / "issuer")

    # rucio's OIDC clients per issuer; validating access tokens needs only the issuer (discovery and JWKS)
    client = {
        "client_id": "rucio",
        "client_secret": "not-used",
        "redirect_uris": [f"https://127.0.0.1:{rucio_port}/auth/oidc_token"],
    }
    secrets = {
        name: {"issuer": url, **client, "SCIM": client}
        for name, url in [("test-iam", issuer.issuer)] + [(f"issuer-{i}", u) for i, u in enumerate(issuers)]
    }
    (run / "idpsecrets.json").write_text(json.dumps(secrets))
    environment = bootstrap_rucio(run, OIDC_CONFIG.format(run=run))
    # rucio fetches the issuer's configuration and keys over https
    environment["REQUESTS_CA_BUNDLE"] = str(cert)
    log = open(run / "rucio.log", "wb")  # noqa: SIM115 (kept open for the server's lifetime)
    rucio = subprocess.Popen(
        [str(RUCIO_ENV / "bin" / "python"), str(Path(__file__).with_name("rucio_tls_backend.py")),
         str(run / "rucio.sock"), str(grid_port), str(grid.host_cert), str(grid.host_key), str(grid.ca_dir)],
        env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=run,
    )  # fmt: skip

    validator = TokenValidator(issuer.issuer, cert)
    config = run / "nginx.conf"
    config.write_text(
        NGINX_CONFIG.format(
            run=run,
            root=root,
            cert=cert,
            key=key,
            client_ca=grid.ca_cert,
            issuer_root=run / "issuer",
            issuer_port=issuer_port,
            rucio_port=rucio_port,
            storage_port=storage_port,
            validator_port=validator.port,
            user="user root;" if os.geteuid() == 0 else "",
        )
    )
    nginx = subprocess.Popen(
        [NGINX, "-c", str(config), "-p", str(run), "-e", str(run / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=open(run / "nginx-stderr.log", "wb"),  # noqa: SIM115
    )
    site = SecureSite(
        run=run,
        cert=cert,
        issuer=issuer,
        validator=validator,
        grid=grid,
        rucio_url=f"https://127.0.0.1:{rucio_port}",
        rucio_grid_url=f"https://127.0.0.1:{grid_port}",
        storage_url=f"https://127.0.0.1:{storage_port}",
        nginx=nginx,
        rucio=rucio,
    )
    try:
        wait_for_port(storage_port, nginx, log=run / "error.log")
        _wait_for_rucio(site.rucio_url, cert, rucio, run / "rucio.log")
        _register(site, files)
    except BaseException:
        site.stop()
        raise
    return site
