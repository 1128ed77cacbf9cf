"""Keeps ``~/servicex.yaml`` pointing at the facility's ServiceX with the server's hub token while it runs.

The token is the server's own (`af.user_server.servicex_config.server_token`), which the ServiceX service
exchanges for access tokens. This Jupyter server extension writes the file when the server starts and checks it
every ``ServiceXConfigRefresher.interval`` seconds after: a file deleted, edited, written by an older server (an
earlier token) or with another mode is rewritten (atomically, mode 0600). It does nothing when no endpoint is set
(``AF_SERVICEX_ENDPOINT``, given to servers by the hub when ServiceX is configured).

Enabled in every server by ``jupyter_server_config.d/af.json`` (installed with the project). Configurable like
any Jupyter server setting, e.g. in ``jupyter_server_config.json``:
``{"ServiceXConfigRefresher": {"interval": 30}}``.

Example (what the server does on each tick):
    >>> refresher = ServiceXConfigRefresher(endpoint="https://servicex.example.org")  # doctest: +SKIP
    >>> refresher.refresh()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from jupyter_server.serverapp import ServerApp
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from af.user_server.servicex_config import (
    ENDPOINT_VARIABLE,
    ServerTokenError,
    server_token,
    write_private_atomically,
)
from hub_config.servicex import servicex_yaml

CONFIG_NAME = "servicex.yaml"


class ServiceXConfigRefresher(LoggingConfigurable):
    """Rewrites the ServiceX client configuration with the server's hub token."""

    endpoint = Unicode(help="ServiceX endpoint written into the file (default: $AF_SERVICEX_ENDPOINT).").tag(
        config=True
    )
    path = Unicode(help="The file to keep fresh (default: ~/servicex.yaml).").tag(config=True)
    interval = Float(60.0, help="Seconds between two checks of the file.").tag(config=True)

    @default("endpoint")
    def _default_endpoint(self) -> str:
        return os.environ.get(ENDPOINT_VARIABLE, "")

    @default("path")
    def _default_path(self) -> str:
        return str(Path.home() / CONFIG_NAME)

    def refresh(self) -> bool:
        """Write the file if its content (token, endpoint) or its mode is not the current one; True if written.

        Raises ServerTokenError when the server has no hub token.
        """
        path = Path(self.path)
        text = servicex_yaml(self.endpoint, server_token())
        try:
            unchanged = path.read_text() == text and stat.S_IMODE(path.stat().st_mode) == 0o600
        except FileNotFoundError:
            unchanged = False
        if unchanged:
            return False
        write_private_atomically(path, text)
        return True

    async def run(self) -> None:
        """Refresh now and then every `interval` seconds, until cancelled; failures are logged and retried."""
        last_error = ""
        while True:
            try:
                if await asyncio.to_thread(self.refresh):
                    self.log.info(
                        "af.user_server.servicex_refresh: wrote %s with the server's token", self.path
                    )
                last_error = ""
            except (ServerTokenError, OSError) as err:
                if str(err) != last_error:  # once per kind of failure, not every interval
                    self.log.warning(
                        "af.user_server.servicex_refresh: could not update %s: %s", self.path, err
                    )
                last_error = str(err)
            await asyncio.sleep(self.interval)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "af.user_server.servicex_refresh"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    """Nothing to register: the work starts with the event loop (`_start_jupyter_server_extension`)."""


async def _start_jupyter_server_extension(serverapp: ServerApp) -> None:
    refresher = ServiceXConfigRefresher(parent=serverapp)
    if not refresher.endpoint:
        serverapp.log.info(
            "af.user_server.servicex_refresh: no ServiceX endpoint (%s): nothing to keep", ENDPOINT_VARIABLE
        )
        return
    # Kept on the app: the event loop holds tasks only weakly.
    serverapp.web_app.settings["af_servicex_refresh"] = asyncio.get_running_loop().create_task(
        refresher.run()
    )
    serverapp.log.info(
        "af.user_server.servicex_refresh: keeping %s fresh every %.0f s", refresher.path, refresher.interval
    )
