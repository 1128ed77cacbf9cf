"""ServiceX client configuration for a user (``servicex.yaml``), written when ``servicex.endpoint`` is set.

The hub gives every server the endpoint (`user_environment`); the server writes the file at start and keeps it
carrying the user's current token (`af.user_server.servicex_refresh`), in Kubernetes and locally alike.

Example:
    >>> print(servicex_yaml("https://servicex.example.org", "TOKEN"), end="")
    api_endpoints:
    - endpoint: https://servicex.example.org
      name: facility
      token: TOKEN
    default_endpoint: facility
"""

from __future__ import annotations

import yaml

from hub_config.settings_schema import ServiceXSettings

ENDPOINT_NAME = "facility"
ENDPOINT_VARIABLE = "AF_SERVICEX_ENDPOINT"


def servicex_yaml(endpoint: str, token: str) -> str:
    """The text of a ``servicex.yaml`` pointing the ServiceX client at `endpoint` with the user's `token`."""
    document = {
        "api_endpoints": [{"endpoint": endpoint, "name": ENDPOINT_NAME, "token": token}],
        "default_endpoint": ENDPOINT_NAME,
    }
    return yaml.safe_dump(document, sort_keys=False)


def user_environment(servicex: ServiceXSettings) -> dict[str, str]:
    """Variables for a user's server: the ServiceX endpoint, when one is configured.

    Example:
        >>> user_environment(ServiceXSettings(endpoint="https://servicex.example.org"))
        {'AF_SERVICEX_ENDPOINT': 'https://servicex.example.org'}
        >>> user_environment(ServiceXSettings())
        {}
    """
    endpoint = servicex.endpoint
    return {ENDPOINT_VARIABLE: endpoint} if endpoint else {}
