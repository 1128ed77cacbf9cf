"""URL helpers: the redacted form used in every message (no signatures, tokens or passwords)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def redact(url: str) -> str:
    """The URL with query-string values and any user:password replaced, safe for messages and logs.

    Example:
        >>> redact("https://bucket.example.org/f.root?X-Goog-Signature=abc&X-Goog-Expires=600")
        'https://bucket.example.org/f.root?X-Goog-Signature=REDACTED&X-Goog-Expires=REDACTED'
    """
    parts = urlsplit(url)
    if not parts.scheme or parts.scheme == "file":
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "REDACTED@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        query = urlencode([(key, "REDACTED") for key, _ in parse_qsl(query, keep_blank_values=True)], safe="")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
