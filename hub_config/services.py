"""Hub services and roles: what users' tokens, servers' tokens and the operator account may do.

- users and their servers may use the gateway (``access:services!service=dask-gateway``); no other token may
  (the gateway checks that scope, which closes dask-gateway#829); servers may use the facility's ServiceX
  service (``access:services!service=servicex``): their own token is the one in ``~/servicex.yaml``;
- a server may read its owner's auth_state, so the user's *current* IAM access token can be fetched from the hub
  inside the server (`af.user_server.access_token`) instead of a variable that goes stale;
- the `af-operator` service account (token from ``services.operator_token_env``) manages users, servers and
  tokens: the health check (`af health`) and the local runner use it.

Example:
    >>> [r["name"] for r in facility_roles()]
    ['user', 'server']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hub_config.gateway import ACCESS_SCOPE
from hub_config.servicex import ACCESS_SCOPE as SERVICEX_SCOPE
from hub_config.settings_schema import ServicesSettings

OPERATOR_SERVICE = "af-operator"
OPERATOR_SCOPES = [
    "admin:users",
    "admin:servers",
    "tokens",
    "access:servers",
    "list:users",
    "read:users",
    "read:hub",
    ACCESS_SCOPE,
]


def facility_roles() -> list[dict[str, Any]]:
    """The `user` and `server` roles, extended with gateway and ServiceX access and own-auth_state reading."""
    return [
        # A token never has more than its owner: users get their own auth_state so that their servers can.
        {"name": "user", "scopes": ["self", ACCESS_SCOPE, SERVICEX_SCOPE, "admin:auth_state!user"]},
        {
            "name": "server",
            "scopes": [
                "users:activity!user",
                "access:servers!server",
                ACCESS_SCOPE,
                SERVICEX_SCOPE,
                "admin:auth_state!user",
                "read:users:name!user",
                "read:users:groups!user",
            ],
        },
    ]


def operator_service(
    services: ServicesSettings, environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The operator service and its role, or None when its token variable is not set."""
    token = environ.get(services.operator_token_env, "")
    if not token:
        return None
    service = {"name": OPERATOR_SERVICE, "api_token": token}
    role = {"name": OPERATOR_SERVICE, "scopes": list(OPERATOR_SCOPES), "services": [OPERATOR_SERVICE]}
    return service, role
