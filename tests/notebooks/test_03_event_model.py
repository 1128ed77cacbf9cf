"""Notebook 3 (event model) on both releases: links, truth chains, the dielectron selection and the reference
analysis agree with direct reads and with physlite.analysis run here."""

from __future__ import annotations

import numpy as np
import pytest

from physlite.analysis import run as run_reference

from . import direct
from .execute import execute
from .figure_checks import problems

CHECKS = (
    "{'n_events': len(events), 'n_electrons': n_electrons, 'z0': track_z0.to_list(), "
    "'n_with_parent': n_with_parent, 'n_round_trip': n_round_trip, 'mee': mee.tolist(), "
    "'mee_entries': float(h_mee.sum(flow=True)), 'counts': result.counts, 'n_reference': result.n_events, "
    "'labels': [ax.get_xlabel() for f in (pt_figure, mass_figure, reference_figure) for ax in f.axes], "
    "'n_muons': n_muons, 'n_id_tracks': n_id_tracks, "
    "'panels': [p for f in (pt_figure, mass_figure, reference_figure) for p in figure_checks.panels(f)]}"
)


@pytest.mark.parametrize("release", ["r21", "r22"])
def test_event_model(release, data_env, r21_path, r22_path):
    path = {"r21": r21_path, "r22": r22_path}[release]
    run = execute(
        "03_event_model",
        env=data_env,
        parameters={"FILE_NAME": path.name},
        checks=CHECKS,
        label=f"03_event_model[{release}]",
    )
    checks = run.checks
    assert checks["n_events"] == {"r21": 40, "r22": 100}[release]
    assert checks["n_electrons"] == direct.electron_count(path)
    direct.assert_same_jagged(checks["z0"], direct.first_track_z0(path))
    # truth chains: every truth electron with a parent is among that parent's children
    assert checks["n_with_parent"] > 0
    assert checks["n_round_trip"] == checks["n_with_parent"]
    expected_mee = direct.dielectron_masses(path)
    if release == "r22":  # a Z->ee sample; the r21 file has no such pair
        assert len(expected_mee) > 10
    assert np.allclose(checks["mee"], expected_mee, rtol=1e-4)
    inside = np.count_nonzero((expected_mee >= 60) & (expected_mee < 120))
    assert checks["mee_entries"] == len(expected_mee) >= inside
    reference = run_reference([path])
    assert checks["counts"] == reference.counts
    assert checks["n_reference"] == reference.n_events == checks["n_events"]
    if release == "r21":
        assert checks["n_id_tracks"] > 0
    labels = checks["labels"]
    assert labels[:2] == [r"electron $p_{T}$ [GeV]", r"$m_{ee}$ [GeV]"]
    assert all("[GeV]" in label for label in labels[2:5])
    assert run.images == 3
    # every panel shows data or says why not, readable ticks, no float noise
    assert problems(checks["panels"]) == []
    empty = {panel["xlabel"]: panel["notes"] for panel in checks["panels"] if not panel["has_data"]}
    assert (
        empty
        == {
            "r21": {r"$m_{ee}$ [GeV]": ["no opposite-charge tight pair in this file"]},
            "r22": {r"signal muon $p_T$ [GeV]": ["none passed the selection"]},
        }[release]
    )
    assert run.float_noise() == []
