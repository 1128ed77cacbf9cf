"""rucio DIDs (`rucio://scope/name` or `scope:name`): resolved to replicas by the rucio client, opened by
scheme preference (or RSE expression), falling back to the next replica when one cannot be read.

The client takes its server and credentials from the usual rucio configuration ($RUCIO_CONFIG with a [client]
section; $RUCIO_AUTH_TYPE, e.g. `oidc` with the user's bearer token by WLCG discovery, or `x509_proxy` after
:func:`physlite.io.credentials.store_proxy`).

Example:
    >>> source = open_did("mc20_13TeV:DAOD_PHYSLITE.37622528._000001.pool.root.1", schemes=["root", "https"])
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from physlite.io.errors import AccessDenied, NotFound, RucioError, SourceError
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
    """A rucio ReplicaClient from the user's configuration, with configuration errors made readable."""
    from rucio.common.exception import CannotAuthenticate, RucioException

    try:
        from rucio.client.replicaclient import ReplicaClient

        return ReplicaClient()
    except CannotAuthenticate as error:
        raise AccessDenied(did, f"the rucio server refused the credentials: {_message(error)}") from None
    except RucioException as error:
        if "config" in type(error).__name__.lower():
            raise RucioError(
                did,
                f"read as a rucio DID, but the rucio client configuration is missing or broken "
                f"({_message(error)}); set RUCIO_CONFIG",
            ) from None
        raise RucioError(did, f"cannot reach the rucio server: {_message(error)}") from None


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
    from rucio.common.exception import (
        CannotAuthenticate,
        DataIdentifierNotFound,
        InvalidRSEExpression,
        RucioException,
        ScopeNotFound,
    )

    scope, name = parse_did(did)
    client = client or replica_client(did)
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
    except (DataIdentifierNotFound, ScopeNotFound):
        raise NotFound(did, "rucio knows no such DID") from None
    except CannotAuthenticate as error:
        raise AccessDenied(did, f"the rucio server refused the credentials: {_message(error)}") from None
    except InvalidRSEExpression as error:
        raise RucioError(did, f"invalid RSE expression {rse_expression!r}: {_message(error)}") from None
    except RucioException as error:
        raise RucioError(did, f"rucio could not list the replicas: {_message(error)}") from None
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
    from physlite.io import open_source

    failures = []
    for pfn, rse in list_pfns(did, rucio_client, schemes, rse_expression, signature_lifetime):
        try:
            source = open_source(pfn, **options)
        except SourceError as error:
            failures.append(f"{rse}: {error}")
            continue
        source.did = did
        source.rse = rse
        return source
    raise RucioError(did, "no replica could be opened: " + "; ".join(failures))
