"""ServiceX client configuration for a user (``servicex.yaml``), written when ``servicex.endpoint`` is set.

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

ENDPOINT_NAME = "facility"


def servicex_yaml(endpoint: str, token: str) -> str:
    """The text of a ``servicex.yaml`` pointing the ServiceX client at `endpoint` with the user's `token`."""
    document = {
        "api_endpoints": [{"endpoint": endpoint, "name": ENDPOINT_NAME, "token": token}],
        "default_endpoint": ENDPOINT_NAME,
    }
    return yaml.safe_dump(document, sort_keys=False)
