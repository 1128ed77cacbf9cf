"""Write ``~/servicex.yaml`` for the ServiceX client from inside a user's server, with the server's hub token.

The token is the server's own JupyterHub token (JUPYTERHUB_API_TOKEN): the server role may use the facility's
ServiceX service (scope ``access:services!service=servicex``), which exchanges it at ``/token/refresh`` for its
own short-lived access tokens; it lives as long as the server. (The user's IAM token is not accepted there.)
Kubernetes runs this module as the notebook container's postStart hook when ServiceX is configured (the hub
cannot write into the user's volume); the local spawner writes the same file itself before starting the server.
Afterwards the server keeps it as it should be (`af.user_server.servicex_refresh`).

Example:
    $ AF_SERVICEX_ENDPOINT=https://servicex.example.org python -m af.user_server.servicex_config
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from hub_config.servicex import ENDPOINT_VARIABLE, servicex_yaml

TOKEN_VARIABLE = "JUPYTERHUB_API_TOKEN"


class ServerTokenError(RuntimeError):
    """The server has no hub token (not started by JupyterHub)."""


def server_token() -> str:
    """The server's own hub token, the ``servicex.yaml`` token; ServerTokenError naming the variable if unset."""
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise ServerTokenError(f"{TOKEN_VARIABLE} is not set: not a server started by JupyterHub")
    return token


def write_private_atomically(path: Path, text: str) -> None:
    """Replace `path` by a file holding `text`, readable by its owner only (0600) from the first byte on.

    Written beside it and renamed over it: a reader (the ServiceX client) sees the old file or the new one,
    never a half-written one.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as stream:  # mkstemp creates the file with mode 0600
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_servicex_config(home: Path, endpoint: str, token: str) -> Path:
    """Write ``home/servicex.yaml`` (mode 0600, atomically) and return its path."""
    path = home / "servicex.yaml"
    write_private_atomically(path, servicex_yaml(endpoint, token))
    return path


def main() -> int:
    endpoint = os.environ.get(ENDPOINT_VARIABLE, "")
    if not endpoint:
        print(
            f"af.user_server.servicex_config: {ENDPOINT_VARIABLE} is not set: nothing to write",
            file=sys.stderr,
        )
        return 1
    try:
        token = server_token()
    except ServerTokenError as err:
        print(f"af.user_server.servicex_config: {err}", file=sys.stderr)
        return 1
    path = write_servicex_config(Path.home(), endpoint, token)
    print(f"af.user_server.servicex_config: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
