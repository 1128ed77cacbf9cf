"""What a request reads: the files of a rucio DID (the client sends ``rucio://scope:name[?files=N]``) or a list of
paths and URLs as given.

rucio is asked for the requesting user, with the user's own IAM access token (`af.servicex.user_tokens`) and
nothing else: the service has no rucio account, so a user gets only the DIDs and replicas rucio lets that user
read. The rucio server (and its CA) are the service's settings (`RucioAccess`: --rucio-host, or the [client]
section of RUCIO_CONFIG, whose credentials are ignored). The files of a DID are handed to the workers as file
DIDs (``scope:name``) with their replicas' https URLs, resolved here with the same token, best first
(`replicas`); the workers read them presenting the token (see `af.servicex.transform`).

Only https replicas are used: physlite's XRootD source hands a token to the XRootD client through the process
environment, and the client reuses one login per server, so on a worker shared by several users' tasks a
root:// read could go out under another user's identity.

Example:
    >>> parse_rucio_did("rucio://mc20_13TeV:DAOD_PHYSLITE.123?files=2")
    ('mc20_13TeV', 'DAOD_PHYSLITE.123', 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from physlite.io.errors import SourceError

DID_SCHEMES = ("https",)  # see the module's docstring for why not root://


class DatasetError(Exception):
    """The dataset cannot be looked up; the text says why (the request becomes 'Bad Dataset')."""


def parse_rucio_did(did: str) -> tuple[str, str, int | None]:
    """(scope, name, number of files or None) of a ServiceX rucio DID."""
    if not did.startswith("rucio://"):
        raise DatasetError(f"{did!r}: only rucio:// datasets (or a file list) are served here")
    rest = did[len("rucio://") :]
    query = parse_qs(urlsplit("x://h/?" + rest.partition("?")[2]).query)
    scope, _, name = rest.partition("?")[0].partition(":")
    if not scope or not name:
        raise DatasetError(f"{did!r} is not a rucio DID (rucio://scope:name)")
    files = query.get("files", [None])[0]
    return scope, name, int(files) if files else None


@dataclass(frozen=True)
class RucioAccess:
    """Where the service asks rucio for its users: `rucio_host` (and `auth_host`, default the same) with the CA
    bundle `ca_cert`; None takes the value from RUCIO_CONFIG's [client] section."""

    rucio_host: str | None = None
    auth_host: str | None = None
    ca_cert: str | None = None

    def client(self, token: str, did: str):
        """A rucio client presenting the user's `token` only (physlite's non-interactive token client)."""
        from physlite.io.rucio import token_client

        try:
            return token_client(
                token, did, rucio_host=self.rucio_host, auth_host=self.auth_host, ca_cert=self.ca_cert
            )
        except SourceError as error:
            raise DatasetError(str(error)) from None


def rucio_files(did: str, client) -> list[dict]:
    """The files of a rucio DID (a file, dataset or container) that `client` (the user's) may list, sorted by
    name, as ``{"paths": "scope:name", "file_size": bytes, "adler32": ...}``; a `?files=N` keeps the first N
    (always the same ones). A refusal or an unknown DID is a DatasetError naming the DID and the rucio server."""
    from physlite.io.rucio import list_files

    scope, name, limit = parse_rucio_did(did)
    try:
        files = list_files(f"{scope}:{name}", client)
    except SourceError as error:
        raise DatasetError(str(error)) from None
    if not files:
        raise DatasetError(f"the rucio DID {scope}:{name} holds no files")
    return [
        {"paths": f"{f['scope']}:{f['name']}", "file_size": f.get("bytes") or 0, "adler32": f.get("adler32")}
        for f in files[:limit]
    ]


def replicas(file_did: str, client) -> list[str]:
    """The https URLs of the replicas of `file_did` that `client` (the user's) may list, best first;
    physlite's SourceError (naming the DID and the rucio server) when there are none or rucio refuses."""
    from physlite.io.rucio import list_pfns

    return [pfn for pfn, _ in list_pfns(file_did, client, schemes=DID_SCHEMES)]


def listed_files(file_list: list[str]) -> list[dict]:
    if not file_list or not all(isinstance(f, str) and f for f in file_list):
        raise DatasetError("file-list must be a non-empty list of paths or URLs")
    return [{"paths": f, "file_size": 0, "adler32": None} for f in file_list]
