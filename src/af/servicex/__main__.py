"""``python -m af.servicex``: the ServiceX service as a process of its own (a JupyterHub service).

Secrets come from the environment, never from the command line: JUPYTERHUB_API_URL (the hub's API),
AF_SERVICEX_SECRET (signs the access tokens; generated per start when unset, which logs every client out at a
restart), JUPYTERHUB_API_TOKEN (the service's hub token; with --gateway it owns the service's dask-gateway
cluster), AF_SERVICEX_S3_ACCESS_KEY / AF_SERVICEX_S3_SECRET_KEY (the S3 server's admin identity). rucio DIDs
are looked up at --rucio-host (default: settings.servicex.rucio_host with --settings, else RUCIO_CONFIG's
[client] rucio_host; any credential there is ignored) with each requesting user's own IAM access token, never an
account of the service's (`af.servicex.datasets`).

With --settings FILE (the facility's settings.yaml; the chart's Deployment) the engine, prefix, S3 server, expiry,
retries and rucio server come from the file's ``servicex`` and ``gateway`` sections
(`af.servicex.facility_settings`); options on the command line win.

Example:
    $ python -m af.servicex --listen 127.0.0.1:5000 --state /var/lib/servicex \
        --scheduler tcp://127.0.0.1:8786 --s3-endpoint http://127.0.0.1:8333
    $ python -m af.servicex --settings settings.yaml --listen 0.0.0.0:5000 --state /var/lib/servicex
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from af.servicex.app import make_app
from af.servicex.auth import AccessTokens, HubTokens
from af.servicex.datasets import RucioAccess
from af.servicex.execution import DaskEngine
from af.servicex.facility_settings import options_from_settings
from af.servicex.gateway_cluster import ServiceCluster
from af.servicex.objectstore import ObjectStore
from af.servicex.service import ServiceX
from af.servicex.store import Store
from af.servicex.user_tokens import UserTokens
from hub_config.settings import SettingsError

log = logging.getLogger("af.servicex")


def _settings_options(argv: list[str] | None) -> tuple[str, dict[str, object]]:
    """(the --settings file or '', the options it gives); exits with the settings' error naming file and key."""
    pre = argparse.ArgumentParser(prog="python -m af.servicex", add_help=False)
    pre.add_argument("--settings", default="")
    path = pre.parse_known_args(argv)[0].settings
    if not path:
        return "", {}
    try:
        return path, options_from_settings(path)
    except SettingsError as error:
        pre.error(f"--settings: {error}")
    raise AssertionError("unreachable")


def parse_args(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> argparse.Namespace:
    """The service's options (from the command line, --settings and `environ`); exits naming what is wrong.

    Example:
        >>> parse_args(["--state", "s", "--scheduler", "tcp://h:8786", "--s3-endpoint", "http://h:8333",
        ...     "--hub-api", "http://hub/hub/api"], {"AF_SERVICEX_S3_ACCESS_KEY": "a",
        ...     "AF_SERVICEX_S3_SECRET_KEY": "b"}).retries
        2
    """
    settings_file, from_settings = _settings_options(argv)
    parser = argparse.ArgumentParser(prog="python -m af.servicex", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--settings", default="", help="the facility's settings.yaml (servicex and gateway sections)"
    )
    parser.add_argument("--listen", default="127.0.0.1:5000", help="address:port to listen on")
    parser.add_argument("--prefix", default="", help="URL prefix (e.g. /services/servicex behind the hub)")
    parser.add_argument("--state", type=Path, required=True, help="folder for the service's SQLite database")
    parser.add_argument("--hub-api", default=environ.get("JUPYTERHUB_API_URL", ""), help="the hub's API URL")
    parser.add_argument("--service-name", default=environ.get("JUPYTERHUB_SERVICE_NAME", "servicex"))
    engine = parser.add_mutually_exclusive_group(required=not settings_file)
    engine.add_argument("--scheduler", help="address of a dask scheduler (tcp://host:port)")
    engine.add_argument("--gateway", action="store_true", help="a dask-gateway cluster of the service's own")
    parser.add_argument(
        "--gateway-address",
        default=environ.get("DASK_GATEWAY__ADDRESS", ""),
        help="--gateway: the gateway's API (default: $DASK_GATEWAY__ADDRESS)",
    )
    parser.add_argument(
        "--gateway-proxy-address",
        default=environ.get("DASK_GATEWAY__PROXY_ADDRESS", ""),
        help="--gateway: its scheduler proxy, gateway://host:port (default: $DASK_GATEWAY__PROXY_ADDRESS)",
    )
    parser.add_argument("--max-workers", type=int, default=4, help="--gateway: the most workers to adapt to")
    parser.add_argument("--retries", type=int, default=2, help="retries of a file after a transient error")
    parser.add_argument(
        "--retry-delay", type=float, default=30.0, help="seconds before the first retry (doubled each time)"
    )
    parser.add_argument(
        "--s3-endpoint",
        required=not settings_file,
        help="the results' S3 server, e.g. http://127.0.0.1:8333",
    )
    parser.add_argument(
        "--s3-public-endpoint",
        default="",
        help="the same S3 server as clients reach it, when not at --s3-endpoint (default: --s3-endpoint)",
    )
    parser.add_argument(
        "--s3-worker-endpoint",
        default="",
        help="the S3 server as the workers reach it, for their upload URLs (default: with --gateway, whose "
        "workers run where users' code runs, --s3-public-endpoint; else --s3-endpoint)",
    )
    parser.add_argument(
        "--rucio-host", default=None, help="the rucio server for DIDs (default: RUCIO_CONFIG's rucio_host)"
    )
    parser.add_argument("--rucio-auth-host", default=None, help="rucio's auth server (default: --rucio-host)")
    parser.add_argument(
        "--rucio-ca-cert", default=None, help="CA bundle trusted for rucio (default: RUCIO_CONFIG's ca_cert)"
    )
    parser.add_argument(
        "--token-wait",
        type=float,
        default=300.0,
        help="seconds a DID request resumed after a restart waits for its owner's IAM token",
    )
    parser.add_argument("--results-days", type=float, default=7.0, help="days a request's results are kept")
    parser.add_argument(
        "--expire-every", type=float, default=60.0, help="seconds between two removals of expired results"
    )
    parser.set_defaults(**from_settings)
    args = parser.parse_args(argv)
    if args.scheduler and args.gateway:  # a scheduler given on the command line beats the settings' gateway
        args.gateway = "--gateway" in (argv if argv is not None else sys.argv[1:])
    if not args.hub_api:
        parser.error("--hub-api (or JUPYTERHUB_API_URL) is required")
    if args.gateway:
        if not args.gateway_address or not args.gateway_proxy_address:
            parser.error("--gateway needs --gateway-address and --gateway-proxy-address (or DASK_GATEWAY__*)")
        if not environ.get("JUPYTERHUB_API_TOKEN"):
            parser.error("--gateway: JUPYTERHUB_API_TOKEN (the service's hub token) is not set")
    for name in ("AF_SERVICEX_S3_ACCESS_KEY", "AF_SERVICEX_S3_SECRET_KEY"):
        if not environ.get(name):
            parser.error(f"{name} is not set (the S3 server's admin identity)")
    return args


async def serve(args: argparse.Namespace) -> None:
    args.state.mkdir(parents=True, exist_ok=True)
    store = Store(str(args.state / "servicex.sqlite"))
    (args.state / "servicex.sqlite").chmod(0o600)
    objects = ObjectStore(
        args.s3_endpoint,
        os.environ["AF_SERVICEX_S3_ACCESS_KEY"],
        os.environ["AF_SERVICEX_S3_SECRET_KEY"],
        public_endpoint=args.s3_public_endpoint,
        upload_endpoint=args.s3_worker_endpoint or (args.s3_public_endpoint if args.gateway else ""),
    )
    if args.gateway:
        cluster = ServiceCluster(
            args.gateway_address, args.gateway_proxy_address, os.environ["JUPYTERHUB_API_TOKEN"],
            max_workers=args.max_workers,
        )  # fmt: skip
        engine = await DaskEngine.gateway_cluster(cluster, args.retries)
    else:
        engine = await DaskEngine.connect(args.scheduler, args.retries)
    service = ServiceX(
        store, objects, engine, timedelta(days=args.results_days), args.retry_delay,
        user_tokens=UserTokens(args.hub_api),
        rucio=RucioAccess(args.rucio_host, args.rucio_auth_host or args.rucio_host, args.rucio_ca_cert),
        token_wait=args.token_wait,
    )  # fmt: skip
    secret = os.environ.get("AF_SERVICEX_SECRET", "").encode() or secrets.token_bytes(32)
    app = make_app(service, AccessTokens(secret), HubTokens(args.hub_api, args.service_name), args.prefix)
    host, _, port = args.listen.rpartition(":")
    server = app.listen(int(port), address=host or "127.0.0.1")
    where = (
        args.scheduler
        or f"the service's cluster {engine.cluster.name or '(not yet)'} on {args.gateway_address}"
    )
    log.info("ServiceX service on http://%s%s (dask: %s)", args.listen, args.prefix, where)
    service.resume()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def expire_periodically() -> None:
        while True:
            try:
                await service.expire()
            except Exception:  # the S3 server down for a while must not end expiry for good
                log.exception("removing expired results failed; trying again in %.0f s", args.expire_every)
            await asyncio.sleep(args.expire_every)

    expiry = loop.create_task(expire_periodically())
    await stop.wait()
    expiry.cancel()
    server.stop()
    await engine.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
