"""What a request reads: the files of a rucio DID (the client sends ``rucio://scope:name[?files=N]``) or a list of
paths and URLs as given. Files of a DID are handed to the workers as file DIDs (``scope:name``), which
physlite opens through rucio (`physlite.io.rucio`), replica by replica.

Example:
    >>> parse_rucio_did("rucio://mc20_13TeV:DAOD_PHYSLITE.123?files=2")
    ('mc20_13TeV', 'DAOD_PHYSLITE.123', 2)
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


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


def rucio_files(did: str) -> list[dict]:
    """The files of a rucio DID (a file, dataset or container), sorted by name, as ``{"paths": "scope:name",
    "file_size": bytes, "adler32": ...}``; a `?files=N` keeps the first N (always the same ones)."""
    from rucio.client.didclient import DIDClient
    from rucio.common.exception import DataIdentifierNotFound, RucioException, ScopeNotFound

    scope, name, limit = parse_rucio_did(did)
    try:
        files = sorted(DIDClient().list_files(scope, name), key=lambda f: f["name"])
    except (DataIdentifierNotFound, ScopeNotFound):
        raise DatasetError(f"rucio knows no DID {scope}:{name}") from None
    except RucioException as error:
        raise DatasetError(f"rucio could not list the files of {scope}:{name}: {error}") from None
    if not files:
        raise DatasetError(f"the rucio DID {scope}:{name} holds no files")
    return [
        {"paths": f"{f['scope']}:{f['name']}", "file_size": f.get("bytes") or 0, "adler32": f.get("adler32")}
        for f in files[:limit]
    ]


def listed_files(file_list: list[str]) -> list[dict]:
    if not file_list or not all(isinstance(f, str) and f for f in file_list):
        raise DatasetError("file-list must be a non-empty list of paths or URLs")
    return [{"paths": f, "file_size": 0, "adler32": None} for f in file_list]
