"""The user's *current* IAM access token, from inside their Jupyter server (for data access, ServiceX, rucio).

The fetch lives in :mod:`physlite.io.credentials` (the facility imports physlite, never the reverse); this
module keeps the facility's name for it.

Example (in a notebook on the facility):
    >>> from af.user_server.access_token import current_access_token
    >>> headers = {"Authorization": f"Bearer {current_access_token()}"}  # doctest: +SKIP
"""

from __future__ import annotations

from physlite.io.credentials import AccessTokenError, current_access_token

__all__ = ["AccessTokenError", "current_access_token"]
