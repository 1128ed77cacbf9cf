"""Names and labels of the local facility's containers (users' servers, gateway clusters' pods, SeaweedFS): the
hub's spawner and the gateway's container backend make them, `af down` finds them by the facility's label.

Example:
    >>> container_name("0123abcd", "dask", "c1")
    'af-0123abcd-dask-c1'
"""

from __future__ import annotations

FACILITY_LABEL = "af.facility"
USER_LABEL = "af.user"


def container_name(facility_id: str, *parts: str) -> str:
    """The name of a container or pod of facility `facility_id`, e.g. ``af-<id>-alice`` for alice's server."""
    return "-".join(("af", facility_id, *parts))
