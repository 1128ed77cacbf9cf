"""Typed errors of physlite: each names the file, branch or setting at fault.

Every error derives from :class:`PhysliteError`, so callers (and the CLI) can catch one type and print its
message, which is meant to be read by a physicist: no traceback needed.

Example:
    >>> import physlite
    >>> try:
    ...     physlite.open("missing.root")
    ... except physlite.errors.PhysliteError as error:
    ...     print(error)
    cannot open missing.root: no such file
"""

from __future__ import annotations


class PhysliteError(Exception):
    """Base of every error raised by physlite on bad input."""


class FileOpenError(PhysliteError):
    """The file (or URL) cannot be opened at all."""


class NotROOTFileError(PhysliteError):
    """The bytes are not a ROOT file (wrong magic) or are truncated before the ROOT directory."""


class TreeNotFoundError(PhysliteError):
    """The file has no tree of the requested name (PHYSLITE data live in `CollectionTree`)."""


class BranchNotFoundError(PhysliteError, KeyError):
    """A requested branch is not in the tree."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsupportedTypeError(PhysliteError):
    """The branch's C++ type has no decoder (e.g. top-level xAOD interface objects without a dictionary)."""


class CorruptDataError(PhysliteError):
    """A basket's bytes do not decode as the branch type says (truncated file, bad compression, wrong layout)."""
