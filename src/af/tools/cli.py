"""`af`: facility tooling.

af up [--state state] [--tutorials DIR] [--node-modules DIR] [--example-data DIR]
      [--notebook-image IMAGE --containers-conf FILE | --processes]
                               start the local facility (prints URL and demo accounts): users' servers and dask
                               clusters run in containers of the notebook image (--processes: as processes of
                               this virtual environment, not isolated, for development without podman)
af down [--state state]        stop everything `af up` started
af status [--state state]      which components run
af health --url URL            end-to-end health check through the hub API (see af.tools.health)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _up(args: argparse.Namespace) -> int:
    from af.tools.local.containers import ContainerMode
    from af.tools.local.runner import FacilityError, LocalFacility

    containers = None
    if not args.processes:
        conf = Path(args.containers_conf)
        if not conf.is_file():
            print(f"af up: --containers-conf {conf}: no such file", file=sys.stderr)
            return 1
        containers = ContainerMode(image=args.notebook_image, conf=conf.resolve())
    facility = LocalFacility(
        Path(args.state),
        tutorials=Path(args.tutorials) if args.tutorials else None,
        node_modules=Path(args.node_modules),
        example_data=Path(args.example_data) if args.example_data else None,
        containers=containers,
        iam_certificate=tuple(Path(p) for p in args.iam_tls) if args.iam_tls else None,
        trusted_ca_dir=Path(args.trusted_ca_dir) if args.trusted_ca_dir else None,
    )
    try:
        facility.up()
    except FacilityError as err:
        print(f"af up: {err}", file=sys.stderr)
        return 1
    print(facility.banner())
    return 0


def _down(args: argparse.Namespace) -> int:
    from af.tools.local.runner import LocalFacility

    state = Path(args.state)
    if not state.is_dir():
        print(f"af down: no state folder {state}: nothing to stop")
        return 0
    stopped = LocalFacility(state).down()
    print(f"af down: stopped {len(stopped)} processes of the facility in {state}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from af.tools.local.runner import LocalFacility

    facility = LocalFacility(Path(args.state))
    running = facility.running()
    if not running:
        print(f"the local facility in {args.state} is not running")
    for name, alive in running.items():
        print(f"{name:<8} {'running' if alive else 'stopped'} (pid {facility.pids()[name]})")
    return 0 if running and all(running.values()) else 1


def _health(args: argparse.Namespace) -> int:
    from af.tools.health import HealthError, main_health

    try:
        return main_health(args)
    except HealthError as err:
        print(f"af health: FAIL: {err}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    from af.tools.local.containers import default_image

    parser = argparse.ArgumentParser(prog="af", description="Analysis facility tooling.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("up", _up, "start the local facility on 127.0.0.1"),
        ("down", _down, "stop the local facility"),
        ("status", _status, "show which components of the local facility run"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--state", default="state", help="state folder (default: state)")
        command.set_defaults(func=func)
        if name == "up":
            command.add_argument(
                "--tutorials", default="", help="folder whose notebooks every new user gets (default: none)"
            )
            command.add_argument(
                "--node-modules",
                default="node_modules",
                help="npm folder holding configurable-http-proxy and oidc-provider (default: ./node_modules)",
            )
            command.add_argument(
                "--example-data",
                default=os.environ.get("AF_EXAMPLE_DATA", ""),
                help="folder of example PHYSLITE files, AF_EXAMPLE_DATA in users' servers (default: $AF_EXAMPLE_DATA)",
            )
            command.add_argument(
                "--processes",
                action="store_true",
                help="run users' servers and dask clusters as processes of this virtual environment instead "
                "of containers: NOT isolated (every user's code runs as this account), for development only",
            )
            command.add_argument(
                "--notebook-image",
                default=default_image(),
                help="the image of users' servers and dask clusters (default: this version's, built by make images)",
            )
            command.add_argument(
                "--containers-conf",
                default="images/containers.conf",
                help="podman's CONTAINERS_CONF (default: images/containers.conf)",
            )
            command.add_argument(
                "--iam-tls",
                nargs=2,
                metavar=("CERT", "KEY"),
                help="serve the development IAM over https with this certificate and key (a rucio server "
                "accepts only https token issuers; see docs/admin.md)",
            )
            command.add_argument(
                "--trusted-ca-dir",
                default="",
                help="folder of hashed CA certificates (<hash>.0, e.g. /etc/grid-security/certificates) that "
                "dask workers in containers trust for https storage (default: the image's CAs only)",
            )
    health = sub.add_parser("health", help="end-to-end health check of a facility through the hub API")
    health.add_argument("--url", required=True, help="public URL of the hub, e.g. http://127.0.0.1:8000")
    health.add_argument(
        "--token-env",
        default="AF_OPERATOR_TOKEN",
        help="environment variable holding the af-operator service token (default AF_OPERATOR_TOKEN)",
    )
    health.add_argument("--state", default="", help="local facility state folder to take the token from")
    health.add_argument("--user", default="af-health", help="hub user the check runs as (default af-health)")
    health.add_argument("--data", default="", help="PHYSLITE file (path inside the user's server) to read")
    health.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for the whole check")
    health.add_argument("--json", action="store_true", help="print the report as JSON")
    health.set_defaults(func=_health)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
