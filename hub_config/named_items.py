"""Lists of named Kubernetes/JupyterHub items (volumes, mounts, env entries, services, roles) merged by name.

Example:
    >>> merge_by_name([{"name": "a", "v": 1}, {"name": "b"}], [{"name": "a", "v": 2}])
    [{'name': 'b'}, {'name': 'a', 'v': 2}]
"""

from __future__ import annotations

from typing import Any


def merge_by_name(existing: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`existing` without the items `ours` names, then `ours` (applying the same items twice changes nothing)."""
    names = {item["name"] for item in ours}
    return [item for item in existing if item.get("name") not in names] + ours
