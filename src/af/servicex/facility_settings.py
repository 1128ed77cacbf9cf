"""The service's options from the facility settings (``servicex`` and ``gateway`` of settings.yaml), so that the
chart's Deployment runs ``python -m af.servicex --settings settings.yaml`` with what the hub reads from the same
file: URL prefix under the hub, S3 server, expiry, retries, the rucio server, and the dask-gateway cluster (or a
scheduler).

Options given on the command line win over these.

Example:
    >>> options = options_from_settings("/usr/local/etc/analysis-facility/settings.yaml")  # doctest: +SKIP
    >>> options["prefix"], options["gateway_address"]  # doctest: +SKIP
    ('/services/servicex', 'http://proxy-public/services/dask-gateway')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub_config.servicex import SERVICE_NAME
from hub_config.settings import load_settings
from hub_config.settings_schema import Settings


def options(settings: Settings) -> dict[str, Any]:
    """The argparse defaults (by `dest`) that `settings` give the service.

    Example:
        >>> s = Settings.model_validate({"platform": "kubernetes", "auth": {"client_id": "h"},
        ...     "hub": {"base_url": "/af/", "public_url": "https://af.example.org"},
        ...     "servicex": {"facility": True, "retries": 5}})
        >>> o = options(s)
        >>> o["prefix"], o["retries"], o["gateway"]
        ('/af/services/servicex', 5, True)
    """
    servicex = settings.servicex
    found: dict[str, Any] = {
        "prefix": f"{settings.hub.base_url.rstrip('/')}/services/{SERVICE_NAME}",
        "service_name": SERVICE_NAME,
        "s3_endpoint": servicex.s3_endpoint,
        "results_days": float(servicex.results_days),
        "max_workers": servicex.max_workers,
        "retries": servicex.retries,
        "retry_delay": float(servicex.retry_delay),
    }
    # unset keys leave the options' defaults: RUCIO_CONFIG's [client] section
    for key in ("rucio_host", "rucio_auth_host", "rucio_ca_cert"):
        if getattr(servicex, key):
            found[key] = getattr(servicex, key)
    if servicex.scheduler_address:
        found["scheduler"] = servicex.scheduler_address
    else:  # the gateway as users' servers reach it: the service runs where they do
        found.update(
            gateway=True,
            gateway_address=settings.gateway.address,
            gateway_proxy_address=settings.gateway.proxy_address,
        )
    return found


def options_from_settings(path: str | Path) -> dict[str, Any]:
    """`options` of the settings file at `path`; hub_config's SettingsError (naming the file and key) when the
    file is missing or invalid."""
    return options(load_settings(path))
