"""rucio DIDs (`rucio://scope/name` or `scope:name`): resolved to replicas by the rucio client, opened by
scheme preference (or RSE expression), falling back to the next replica when one cannot be read.

The client takes its server and credentials from the usual rucio configuration ($RUCIO_CONFIG with a [client]
section; $RUCIO_AUTH_TYPE, e.g. `oidc` with the user's bearer token by WLCG discovery, or `x509_proxy` after
:func:`physlite.io.credentials.store_proxy`).

Example:
    >>> source = open_did("mc20_13TeV:DAOD_PHYSLITE.37622528._000001.pool.root.1", schemes=["root", "https"])
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from physlite.io.credentials import bearer_token
from physlite.io.errors import AccessDenied, NotFound, RucioError, SourceError
from physlite.io.locations import open_url
from physlite.io.source import Source

DEFAULT_SCHEMES = ("root", "https", "http")
_DID = re.compile(r"^(?P<scope>[A-Za-z0-9][\w.\-]*):(?P<name>\S+)$")


def parse_did(location: str) -> tuple[str, str]:
    """(scope, name) of `rucio://scope/name` or `scope:name`.

    Example:
        >>> parse_did("rucio://user.jdoe/file.root")
        ('user.jdoe', 'file.root')
    """
    if location.lower().startswith("rucio://"):
        parts = urlsplit(location)
        scope, name = parts.netloc, parts.path.lstrip("/")
    else:
        match = _DID.match(location)
        scope, name = (match.group("scope"), match.group("name")) if match else ("", "")
    if not scope or not name:
        raise RucioError(location, "not a rucio DID (expected rucio://scope/name or scope:name)")
    return scope, name


def replica_client(did: str = "rucio"):
    """A rucio ReplicaClient from the user's configuration that never prompts, with configuration and
    credential errors made readable (they name the rucio server).

    With auth type `oidc` the client presents the user's bearer token (WLCG discovery, see
    :func:`physlite.io.credentials.bearer_token`); with `x509_proxy` the proxy (see
    :func:`physlite.io.credentials.store_proxy`).

    Example:
        >>> replica_client("rucio://user.jdoe/file.root").host
        'https://rucio.example.org'
    """
    from rucio.common.exception import (
        CannotAuthenticate,
        MissingClientParameter,
        NoAuthInformation,
        RucioException,
    )

    host, auth_type = _configured("auth_host") or _configured("rucio_host"), _auth_type()
    # (without a host, the client's configuration error below says more)
    if auth_type == "oidc" and host and bearer_token() is None:
        raise AccessDenied(
            did,
            f"the rucio server {host} takes your bearer token (auth type oidc), but none was found: set "
            "BEARER_TOKEN or BEARER_TOKEN_FILE, or store it with physlite.io.credentials.store_token",
        )
    try:
        return _non_interactive_replica_client()()
    except CannotAuthenticate as error:
        raise AccessDenied(did, _refusal(host, auth_type, error)) from None
    except (MissingClientParameter, NoAuthInformation) as error:
        if auth_type in ("x509", "x509_proxy"):
            raise AccessDenied(
                did,
                f"the rucio server {host} takes an X509 proxy (auth type {auth_type}), but none was found "
                f"({_message(error)}); upload it with physlite.io.credentials.proxy_upload_widget()",
            ) from None
        raise RucioError(
            did, f"read as a rucio DID, but the rucio client configuration is incomplete: {_message(error)}"
        ) from None
    except RucioException as error:
        if "config" in type(error).__name__.lower():
            raise RucioError(
                did,
                f"read as a rucio DID, but the rucio client configuration is missing or broken "
                f"({_message(error)}); set RUCIO_CONFIG",
            ) from None
        if auth_type in ("x509", "x509_proxy") and host and _accepts_tls_without_certificate(host):
            # it is up, but closed the TLS handshake in which the proxy was presented
            raise AccessDenied(
                did,
                f"the rucio server {host} refused the X509 proxy in the TLS handshake (not signed by a CA it "
                "trusts, or expired)",
            ) from None
        raise RucioError(did, f"cannot reach the rucio server {host}: {_message(error)}") from None


def _accepts_tls_without_certificate(url: str, timeout: float = 5.0) -> bool:
    """Whether the server at `url` completes a TLS handshake in which the client presents no certificate."""
    import socket
    import ssl

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return False
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the server's willingness matters here, not its identity
    try:
        with (
            socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as connection,
            context.wrap_socket(connection, server_hostname=parts.hostname),
        ):
            return True
    except OSError:
        return False


def _configured(option: str) -> str | None:
    from rucio.common.config import config_get

    try:
        return config_get("client", option, raise_exception=False, default=None)
    except Exception:  # no configuration at all: the client's own error says so
        return None


def _auth_type() -> str | None:
    return os.environ.get("RUCIO_AUTH_TYPE") or _configured("auth_type")


def _refusal(host: str | None, auth_type: str | None, error: Exception) -> str:
    if auth_type == "oidc":
        return (
            f"the rucio server {host} refused the bearer token (HTTP 401: expired, not signed by an issuer it "
            "trusts, without the audience or scope it expects, or no rucio account has its identity)"
        )
    if auth_type in ("x509", "x509_proxy"):
        return (
            f"the rucio server {host} refused the X509 proxy (HTTP 401: not signed by a CA it trusts, expired, "
            f"or no rucio account has its DN): {_message(error)}"
        )
    return f"the rucio server {host} refused the credentials: {_message(error)}"


@functools.cache
def _non_interactive_replica_client() -> type:
    """rucio's ReplicaClient whose OIDC login cannot start: rucio falls back to a browser flow that waits on
    input() when the server refuses a token, which hangs a notebook kernel or a dask worker."""
    from rucio.client.replicaclient import ReplicaClient

    return _non_interactive(ReplicaClient)


@functools.cache
def _non_interactive(base: type) -> type:
    from rucio.common.exception import CannotAuthenticate

    class NonInteractive(base):
        def _BaseClient__get_token_oidc(self) -> bool:  # replaces BaseClient.__get_token_oidc
            raise CannotAuthenticate(f"the rucio server {self.auth_host} refused the bearer token")

    return NonInteractive


@functools.cache
def _bearer_client() -> type:
    """rucio's full Client presenting one given bearer token, never one found in the environment or a token
    file (a process serving several users must not mix their tokens), and never prompting."""
    from rucio.client import Client

    class BearerClient(_non_interactive(Client)):
        def __init__(self, token: str, **options) -> None:
            self._bearer = token
            # an account given keeps rucio from reading one from the configuration (which may not exist);
            # none is sent: rucio takes the account from the token's identity
            super().__init__(auth_type="oidc", account="(from the token)", **options)
            self.account = None

        def _BaseClient__read_token(self) -> bool:  # replaces the WLCG discovery and the token file
            self.auth_token = self._bearer
            self.headers["X-Rucio-Auth-Token"] = self._bearer
            return True

        def __repr__(self) -> str:  # never the token
            return f"<rucio client of {self.host} with a bearer token>"

    return BearerClient


def token_client(
    token: str,
    did: str = "rucio",
    *,
    rucio_host: str | None = None,
    auth_host: str | None = None,
    ca_cert: str | None = None,
):
    """A rucio Client that presents `token` (a user's IAM access token) and nothing else: for a process acting
    for several users, e.g. a service holding each user's token. Hosts and CA default to the rucio
    configuration ($RUCIO_CONFIG's [client]); its credentials and auth type are ignored. A refusal is raised by
    the calls (:func:`list_files`, :func:`list_pfns` make it an AccessDenied naming the server).

    Example:
        >>> client = token_client(user_token, rucio_host="https://rucio.example.org")  # doctest: +SKIP
        >>> list_pfns("user.jdoe:file.root", client)  # doctest: +SKIP
        [('https://storage.example.org/token/user.jdoe/file.root', 'SITE_DISK')]
    """
    from rucio.common.exception import ConfigNotFound, MissingClientParameter, RucioException

    auth_host = auth_host or rucio_host
    try:
        return _bearer_client()(token, rucio_host=rucio_host, auth_host=auth_host, ca_cert=ca_cert)
    except (MissingClientParameter, ConfigNotFound) as error:
        raise RucioError(
            did, f"no rucio server configured (give its address, or set RUCIO_CONFIG): {_message(error)}"
        ) from None
    except RucioException as error:
        raise RucioError(did, f"cannot make a rucio client: {_message(error)}") from None


def _client_refusal(client, error: Exception) -> str:
    return _refusal(
        getattr(client, "auth_host", None), getattr(client, "auth_type", None) or _auth_type(), error
    )


def list_files(did: str, client) -> list[dict]:
    """The files of `did` (a file, dataset or container) as `client` (a rucio Client, e.g. :func:`token_client`)
    lists them (``scope``, ``name``, ``bytes``, ``adler32``...), sorted by name; errors as for
    :func:`list_pfns` (NotFound, AccessDenied naming the rucio server, RucioError).

    Example:
        >>> [f["name"] for f in list_files("user.jdoe:my.dataset", client)]  # doctest: +SKIP
        ['file1.root', 'file2.root']
    """
    scope, name = parse_did(did)
    with _readable_errors(did, client, "files"):
        files = list(client.list_files(scope, name))
    return sorted(files, key=lambda f: f["name"])


@contextlib.contextmanager
def _readable_errors(did: str, client, listing: str) -> Iterator[None]:
    """rucio's exceptions of a listing call as physlite's errors, naming the DID (and the server that refused)."""
    from rucio.common.exception import (
        CannotAuthenticate,
        DataIdentifierNotFound,
        RucioException,
        ScopeNotFound,
    )

    try:
        yield
    except (DataIdentifierNotFound, ScopeNotFound):
        raise NotFound(did, "rucio knows no such DID") from None
    except CannotAuthenticate as error:
        raise AccessDenied(did, _client_refusal(client, error)) from None
    except RucioException as error:
        raise RucioError(did, f"rucio could not list the {listing}: {_message(error)}") from None


def _message(error: Exception) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text[:300] or type(error).__name__


def list_pfns(
    did: str,
    client=None,
    schemes: list[str] | tuple[str, ...] = DEFAULT_SCHEMES,
    rse_expression: str | None = None,
    signature_lifetime: int | None = None,
) -> list[tuple[str, str]]:
    """The (pfn, rse) of every available disk replica of `did`, best first: by the order of `schemes`, then by
    the RSE protocol's priority. RSEs configured for signed URLs (GCS, S3) answer signed https PFNs, valid
    for `signature_lifetime` seconds."""
    from rucio.common.exception import InvalidRSEExpression

    scope, name = parse_did(did)
    client = client or replica_client(did)
    with _readable_errors(did, client, "replicas"):
        try:
            replicas = list(
                client.list_replicas(
                    [{"scope": scope, "name": name}],
                    schemes=list(schemes),
                    rse_expression=rse_expression,
                    ignore_availability=False,
                    signature_lifetime=signature_lifetime,
                )
            )
        except InvalidRSEExpression as error:
            raise RucioError(did, f"invalid RSE expression {rse_expression!r}: {_message(error)}") from None
    if not replicas:
        raise NotFound(did, "rucio knows no such DID")
    pfns = replicas[0].get("pfns") or {}
    rank = {scheme: i for i, scheme in enumerate(schemes)}
    usable = [
        (rank.get(urlsplit(pfn).scheme, len(rank)), info.get("priority", 0), pfn, info.get("rse", "?"))
        for pfn, info in pfns.items()
        if info.get("type", "DISK") == "DISK"
    ]
    if not usable:
        where = f" matching {rse_expression!r}" if rse_expression else ""
        raise RucioError(did, f"no disk replica{where} with a scheme in {list(schemes)}")
    return [(pfn, rse) for _, _, pfn, rse in sorted(usable)]


def open_did(
    did: str,
    *,
    rucio_client=None,
    schemes: list[str] | tuple[str, ...] = DEFAULT_SCHEMES,
    rse_expression: str | None = None,
    signature_lifetime: int | None = None,
    **options,
) -> Source:
    """Open the best readable replica of `did`; other options go to the source (https/root).

    The source's `did` and `rse` attributes say what was opened.
    """
    failures: list[tuple[str, SourceError]] = []
    for pfn, rse in list_pfns(did, rucio_client, schemes, rse_expression, signature_lifetime):
        try:
            source = open_url(pfn, **options)
        except SourceError as error:
            failures.append((rse, error))
            continue
        source.did = did
        source.rse = rse
        return source
    reasons = "; ".join(f"{rse}: {error}" for rse, error in failures)
    if all(isinstance(error, AccessDenied) for _, error in failures):
        raise AccessDenied(did, f"every replica refused the credentials: {reasons}")
    raise RucioError(did, f"no replica could be opened: {reasons}")
