"""Skewed image pins, installs outside the lock and Dockerfile lint findings fail the checks."""

from __future__ import annotations

from af.tools.check.dockerfiles import check_dockerfiles
from af.tools.check.skew import check_skew, lock_versions
from tests.k8s.conftest import edit, errors

PRODUCTION = "flux/deploy/production/values.yaml"
NOTEBOOK = "images/notebook/Dockerfile"


def _messages(findings) -> list[str]:
    return [str(f) for f in errors(findings)]


def test_skewed_worker_image_pin(scratch) -> None:
    values = scratch.root / PRODUCTION
    values.write_text(
        values.read_text()
        + "dask-gateway:\n  gateway:\n    backend:\n      image:\n        name: ghcr.io/physlite-facility/notebook\n"
        "        tag: '0.0.9'\n"
    )
    messages = _messages(check_skew(scratch))
    assert any(
        m.startswith(f"{PRODUCTION}: dask-gateway.gateway.backend.image.tag: '0.0.9' but this lock")
        for m in messages
    )
    assert any(
        m.startswith(
            f"{PRODUCTION}: dask-gateway.gateway.backend.image: workers run ghcr.io/physlite-facility/notebook:0.0.9"
        )
        for m in messages
    ), messages


def test_upstream_hub_image_disagrees_with_the_notebook_jupyterhub(scratch) -> None:
    values = scratch.root / PRODUCTION
    values.write_text(
        values.read_text().replace(
            "  hub:\n    resources:",
            "  hub:\n    image:\n      name: quay.io/jupyterhub/k8s-hub\n      tag: '4.4.0'\n    resources:",
        )
    )
    jupyterhub = lock_versions(scratch.root / "uv.lock")["jupyterhub"]
    messages = _messages(check_skew(scratch))
    assert (
        f"{PRODUCTION}: jupyterhub.hub.image: quay.io/jupyterhub/k8s-hub:4.4.0 runs JupyterHub 5.x, the notebook "
        f"image JupyterHub {jupyterhub} (uv.lock): the hub and user servers would disagree"
    ) in messages


def test_profile_image_must_be_the_notebook_image(scratch) -> None:
    edit(
        scratch.root / PRODUCTION,
        "      memory: 32G\n      image: ghcr.io/physlite-facility/notebook:0.1.0",
        "      memory: 32G\n      image: jupyter/scipy-notebook:latest",
    )
    messages = _messages(check_skew(scratch))
    assert any(
        m.startswith(f"{PRODUCTION}: settings.profiles[1].image: 'jupyter/scipy-notebook:latest'")
        for m in messages
    )


def test_chart_app_version_follows_the_project(scratch) -> None:
    edit(scratch.chart / "Chart.yaml", 'appVersion: "0.1.0"', 'appVersion: "0.2.0"')
    assert any(
        m.startswith("charts/analysis-facility/Chart.yaml: appVersion: '0.2.0'")
        for m in _messages(check_skew(scratch))
    )


def test_install_outside_the_lock(scratch) -> None:
    edit(
        scratch.root / NOTEBOOK,
        "RUN useradd",
        "RUN /opt/venv/bin/python -m pip install --no-cache-dir jupyterhub==5.3.0\nRUN useradd",
    )
    messages = _messages(check_skew(scratch))
    assert any(
        m.startswith(f"{NOTEBOOK}: line ") and "installs packages outside the lock" in m for m in messages
    ), messages


def test_kernels_must_be_compiled_for_a_generic_cpu(scratch) -> None:
    edit(scratch.root / NOTEBOOK, "    NUMBA_CPU_NAME=generic \\\n", "")
    assert f"{NOTEBOOK}: ENV: NUMBA_CPU_NAME=generic missing: kernels would be host-specific" in _messages(
        check_skew(scratch)
    )


BASE_ARG = "ARG BASE=ghcr.io/physlite-facility/base:bookworm-python3.11-uv0.13.9"


def test_unpinned_base_image(scratch) -> None:
    edit(scratch.root / NOTEBOOK, BASE_ARG, "ARG BASE=ghcr.io/physlite-facility/base:latest")
    assert any(
        "base image not pinned to a tag" in m and m.startswith(NOTEBOOK)
        for m in _messages(check_skew(scratch))
    )
    edit(scratch.root / NOTEBOOK, "FROM ${BASE}", "FROM python:latest")
    assert any(
        m.startswith(f"{NOTEBOOK}: line ") and "DL3007" in m for m in _messages(check_dockerfiles(scratch))
    )


def test_base_image_must_carry_the_makefiles_uv(scratch) -> None:
    edit(scratch.root / NOTEBOOK, BASE_ARG, BASE_ARG.replace("uv0.13.9", "uv0.13.1"))
    assert any(
        m.startswith(f"{NOTEBOOK}: line ") and "uv 0.13.1, the Makefile bootstraps uv 0.13.9" in m
        for m in _messages(check_skew(scratch))
    )


def test_hadolint_finding_names_file_line_and_rule(scratch) -> None:
    edit(scratch.root / "images/hub/Dockerfile", "RUN useradd", "RUN apt-get install -y git\nRUN useradd")
    messages = _messages(check_dockerfiles(scratch))
    assert any(m.startswith("images/hub/Dockerfile: line ") and "DL3008" in m for m in messages), messages


def test_the_z2jh_release_and_the_locked_jupyterhub_are_reported(real_repo) -> None:
    warnings = [str(f) for f in check_skew(real_repo) if f.warning]
    jupyterhub = lock_versions(real_repo.root / "uv.lock")["jupyterhub"]
    if jupyterhub.startswith("5."):
        assert warnings == []
    else:
        assert any("z2jh 4.4.0 was released for JupyterHub 5.x" in w for w in warnings)


def test_image_install_step_with_an_unknown_group_fails(scratch) -> None:
    from af.tools.check.image_install import check_image_install

    edit(
        scratch.root / "images/hub/Dockerfile",
        "uv sync --locked --no-editable --no-default-groups --group facility --group hub-k8s",
        "uv sync --locked --no-editable --no-default-groups --group facility --group hub-k8z",
    )
    messages = [str(f) for f in check_image_install(scratch, "hub")]
    assert len(messages) == 1
    assert messages[0].startswith("images/hub/Dockerfile: line ") and "fails with this lock" in messages[0]
    assert "hub-k8z" in messages[0]
