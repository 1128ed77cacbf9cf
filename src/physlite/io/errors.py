"""Errors of the source layer; each names the path or the (redacted) URL at fault.

Example:
    >>> from physlite.io import open_source
    >>> try:
    ...     open_source("/data/missing.root")
    ... except NotFound as error:
    ...     print(error)
    /data/missing.root: file does not exist
"""

from __future__ import annotations

from physlite.errors import FileOpenError, PhysliteError


class SourceError(PhysliteError):
    """Base of every error of physlite.io; `location` is the path or the redacted URL."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class InvalidLocation(SourceError, FileOpenError):
    """The location is not a path, a supported URL (file, http, https, root) or a rucio DID."""


class NotFound(SourceError, FileOpenError):
    """The file does not exist (local path, HTTP 404, XRootD kXR_NotFound, unknown rucio DID)."""


class AccessDenied(SourceError, FileOpenError):
    """The server refused the credentials (HTTP 401/403, XRootD kXR_NotAuthorized)."""


class RemoteError(SourceError):
    """The server or the network failed, after the retries that make sense (5xx, 429, resets, truncation)."""


class RemoteTimeout(RemoteError):
    """No answer within the timeout (dead host, stalled transfer), after retries."""


class RangeError(SourceError):
    """A requested byte range lies outside the file (a truncated file or a corrupt offset)."""


class RucioError(SourceError, FileOpenError):
    """A rucio DID could not be resolved to a readable replica."""


class CredentialError(PhysliteError):
    """A credential (bearer token, X509 proxy) is missing, unreadable or malformed."""
