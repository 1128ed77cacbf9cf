"""Notebook 4 (remote data) against the test servers: nginx (https, self-signed certificate), XRootD (root://)
and a real rucio server with replicas on both; every remote read equals the local file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from physlite.analysis import run as run_reference

from . import direct
from .execute import execute

COPIES = 3
CHECKS = (
    "{'identical': identical, 'replicas': replicas, 'electrons_per_file': electrons_per_file, 'remote': remote, "
    "'counts': result.counts, 'n_events': result.n_events, 'shown': shown, 'n_pt': int(h_pt.sum(flow=True)), "
    "'labels': [ax.get_xlabel() for ax in remote_figure.axes] + [ax.get_ylabel() for ax in remote_figure.axes]}"
)


def _io_conftest():
    path = Path(__file__).resolve().parents[1] / "io" / "conftest.py"
    spec = importlib.util.spec_from_file_location("notebook_04_io_servers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rucio(tmp_path_factory, nginx, xrootd, r21_path, r22_path):
    """tests/io's rucio server, for this module only. The rucio client caches its configuration per process:
    without clearing it, a run of the whole suite (tests/io first) would register the RSEs on tests/io's server
    again and fail ("RSE 'NGINX_DISK' already exists")."""
    from rucio.common.config import clean_cached_config

    clean_cached_config()
    try:
        yield from _io_conftest().rucio.__wrapped__(tmp_path_factory, nginx, xrootd, r21_path, r22_path)
    finally:
        clean_cached_config()


def test_remote_data(nginx, xrootd, rucio, data_env, r22_path):
    name = r22_path.name
    run = execute(
        "04_remote_data",
        env={**data_env, "RUCIO_CONFIG": str(rucio.client_config), "SSL_CERT_FILE": str(nginx.cert)},
        parameters={
            "FILE_NAME": name,
            "HTTPS_URL": nginx.url(name),
            "ROOT_URL": xrootd.url(name),
            "RUCIO_DID": f"test:{name}",
            "RUCIO_SCHEMES": ["root", "https"],
            "COPIES": COPIES,
        },
        checks=CHECKS,
    )
    checks = run.checks
    assert checks["identical"] == {"https": True, "root://": True, "rucio": True}
    assert [rse for _, rse in checks["replicas"]] == ["XROOTD_DISK", "NGINX_DISK"]
    assert checks["replicas"][0][0].startswith(f"root://127.0.0.1:{xrootd.root_port}/")
    assert checks["remote"] == f"test:{name}"  # the event model and the analysis read the file by its DID
    n_electrons = direct.electron_count(r22_path)
    assert checks["electrons_per_file"] == [n_electrons] * COPIES
    local = run_reference([r22_path] * COPIES)
    assert checks["n_events"] == local.n_events == 100 * COPIES
    assert checks["counts"] == local.counts
    assert checks["shown"] == "rucio"
    assert checks["n_pt"] == n_electrons
    assert checks["labels"] == [
        "where the file was read from",
        r"electron $p_{T}$ [GeV]",
        "open + read time [ms]",
        "electrons / 5 GeV",
    ]
    assert run.images == 1
    widgets = [o for o in run.outputs() if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) >= 2  # the tqdm progress bar and the proxy upload widget
    assert "physlite analysis" in run.text()  # the reference analysis' progress bar (stderr)
