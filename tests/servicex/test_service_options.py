"""`python -m af.servicex --settings settings.yaml` (what the chart's Deployment runs): the service's options come
from the facility settings the hub reads, the command line wins, and a bad file or a missing secret variable
stops it with a message naming the key or the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from af.servicex.__main__ import parse_args

ENV = {"AF_SERVICEX_S3_ACCESS_KEY": "admin", "AF_SERVICEX_S3_SECRET_KEY": "s", "JUPYTERHUB_API_TOKEN": "t"}
SETTINGS = {
    "platform": "kubernetes",
    "auth": {"client_id": "hub"},
    "hub": {"base_url": "/af/", "public_url": "https://af.example.org"},
    "gateway": {
        "address": "http://proxy-public/af/services/dask-gateway",
        "proxy_address": "gateway://traefik-dask-gateway:8786",
    },
    "servicex": {
        "facility": True,
        "s3_endpoint": "http://s3.storage.svc:8333",
        "results_days": 3,
        "retries": 5,
        "retry_delay": 12,
        "max_workers": 9,
    },
}
ARGS = ["--state", "/tmp/servicex", "--hub-api", "http://hub:8081/af/hub/api"]


def _settings(tmp_path: Path, **servicex) -> str:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({**SETTINGS, "servicex": {**SETTINGS["servicex"], **servicex}}))
    return str(path)


def test_options_come_from_the_settings(tmp_path) -> None:
    args = parse_args(["--settings", _settings(tmp_path), *ARGS], ENV)
    assert (args.prefix, args.s3_endpoint, args.results_days) == (
        "/af/services/servicex",
        "http://s3.storage.svc:8333",
        3.0,
    )
    assert (args.retries, args.retry_delay, args.max_workers) == (5, 12.0, 9)
    assert args.gateway and args.scheduler is None
    assert args.gateway_address == "http://proxy-public/af/services/dask-gateway"
    assert args.gateway_proxy_address == "gateway://traefik-dask-gateway:8786"


def test_the_rucio_server_comes_from_the_settings(tmp_path) -> None:
    rucio = {
        "rucio_host": "https://voatlasrucio-server-prod.cern.ch",
        "rucio_auth_host": "https://voatlasrucio-auth-prod.cern.ch",
        "rucio_ca_cert": "/etc/rucio-ca/ca.pem",
    }
    args = parse_args(["--settings", _settings(tmp_path, **rucio), *ARGS], ENV)
    assert (args.rucio_host, args.rucio_auth_host, args.rucio_ca_cert) == tuple(rucio.values())
    # without them, RUCIO_CONFIG's [client] section decides (the options stay unset)
    args = parse_args(["--settings", _settings(tmp_path), *ARGS], ENV)
    assert (args.rucio_host, args.rucio_auth_host, args.rucio_ca_cert) == (None, None, None)


def test_the_command_line_wins(tmp_path) -> None:
    argv = ["--settings", _settings(tmp_path), *ARGS, "--retries", "0", "--scheduler", "tcp://d:8786"]
    args = parse_args(argv, ENV)
    assert (args.retries, args.scheduler, args.gateway) == (0, "tcp://d:8786", False)


def test_a_scheduler_in_the_settings_replaces_the_gateway(tmp_path) -> None:
    args = parse_args(["--settings", _settings(tmp_path, scheduler_address="tcp://d:8786"), *ARGS], ENV)
    assert (args.scheduler, args.gateway) == ("tcp://d:8786", False)


def test_a_bad_settings_file_names_the_key(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--settings", _settings(tmp_path, retries=-1), *ARGS], ENV)
    error = capsys.readouterr().err
    assert "--settings: " in error and "servicex.retries: expected an integer >= 0, got -1" in error, error


def test_a_missing_secret_variable_is_named(tmp_path, capsys) -> None:
    env = {k: v for k, v in ENV.items() if k != "AF_SERVICEX_S3_SECRET_KEY"}
    with pytest.raises(SystemExit):
        parse_args(["--settings", _settings(tmp_path), *ARGS], env)
    assert "AF_SERVICEX_S3_SECRET_KEY is not set" in capsys.readouterr().err


def test_the_local_facility_passes_its_rucio_settings_to_the_service(tmp_path) -> None:
    from af.tools.local.ports import Ports
    from af.tools.local.runner import LocalFacility

    rucio = {
        "servicex.rucio_host": "https://rucio.example.org",
        "servicex.rucio_auth_host": "https://rucio-auth.example.org",
    }
    for overrides, expected in ((rucio, tuple(rucio.values())), ({}, (None, None))):
        facility = LocalFacility(tmp_path / "state", ports=Ports.free(), settings_overrides=overrides)
        command = facility._commands()["servicex"]
        assert command[1:3] == ["-m", "af.servicex"]
        args = parse_args(command[3:], ENV)
        assert (args.rucio_host, args.rucio_auth_host, args.rucio_ca_cert) == (*expected, None)
