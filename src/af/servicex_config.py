"""Write ``~/servicex.yaml`` for the ServiceX client from inside a user's server, with the user's current token.

Kubernetes runs it as the notebook container's postStart hook when ``servicex.endpoint`` is configured (the hub
cannot write into the user's volume); the local spawner writes the same file itself before starting the server.

Example:
    $ AF_SERVICEX_ENDPOINT=https://servicex.example.org python -m af.servicex_config
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from af.access_token import AccessTokenError, current_access_token
from hub_config.servicex import servicex_yaml

ENDPOINT_VARIABLE = "AF_SERVICEX_ENDPOINT"


def write_servicex_config(home: Path, endpoint: str, token: str) -> Path:
    """Write ``home/servicex.yaml`` (mode 0600) and return its path."""
    path = home / "servicex.yaml"
    path.write_text(servicex_yaml(endpoint, token))
    path.chmod(0o600)
    return path


def main() -> int:
    endpoint = os.environ.get(ENDPOINT_VARIABLE, "")
    if not endpoint:
        print(f"af.servicex_config: {ENDPOINT_VARIABLE} is not set: nothing to write", file=sys.stderr)
        return 1
    try:
        token = current_access_token()
    except AccessTokenError as err:
        print(f"af.servicex_config: {err}", file=sys.stderr)
        return 1
    path = write_servicex_config(Path.home(), endpoint, token)
    print(f"af.servicex_config: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
