""" ""Notebook 2 (PHYSLITE) runs on both releases' files; its numbers match a direct read with uproot and are
printed as a physicist would (GeV with one decimal, not float32 noise)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from .execute import execute
from .figure_checks import problems

CHECKS = (
    "{'n_electrons': n_electrons, 'target': target, 'z0': electron_track_z0.to_list(), "
    "'identical': identical, 'timings': timings, 'ylabel': speed_figure.axes[0].get_ylabel(), "
    "'panels': figure_checks.panels(speed_figure)}"
)


def first_track_z0_by_hand(path: Path, target: str, key: int) -> list[list[float | None]]:
    """Each electron's first track link followed with uproot and plain Python loops."""
    tree = uproot.open(path)["CollectionTree"]
    links = tree["AnalysisElectronsAuxDyn.trackParticleLinks"].array(library="ak").to_list()
    z0 = tree[f"{target}AuxDyn.z0"].array(library="ak").to_list()
    result = []
    for event_links, event_z0 in zip(links, z0, strict=True):
        result.append(
            [
                event_z0[links_of[0]["m_persIndex"]] if links_of and links_of[0]["m_persKey"] == key else None
                for links_of in event_links
            ]
        )
    return result


@pytest.mark.parametrize("release", ["r21", "r22"])
def test_physlite(release, data_env, r21_path, r22_path):
    path = {"r21": r21_path, "r22": r22_path}[release]
    run = execute(
        "02_physlite",
        env=data_env,
        parameters={"FILE_NAME": path.name, "REPEAT": 2},
        checks=CHECKS,
        label=f"02_physlite[{release}]",
    )
    pt = uproot.open(path)["CollectionTree"]["AnalysisElectronsAuxDyn.pt"].array(library="ak")
    assert run.checks["n_electrons"] == int(ak.sum(ak.num(pt))) > 0
    assert run.checks["target"] == "GSFTrackParticles"
    from physlite.events.sgkey import sgkey

    expected = first_track_z0_by_hand(
        path, "GSFTrackParticles", sgkey("GSFTrackParticles", "xAOD::TrackParticle")
    )
    got = run.checks["z0"]
    assert [len(event) for event in got] == [len(event) for event in expected]
    flat_got = [v for event in got for v in event]
    flat_expected = [v for event in expected for v in event]
    assert [v is None for v in flat_got] == [v is None for v in flat_expected]
    assert np.allclose([v for v in flat_got if v is not None], [v for v in flat_expected if v is not None])
    assert sum(v is not None for v in flat_got) > 0
    assert run.checks["identical"] == {"variables": True, "ElementLinks": True}
    assert all(t > 0 for reader in run.checks["timings"].values() for t in reader.values())
    assert "[ms]" in run.checks["ylabel"]
    assert run.images == 1
    assert problems(run.checks["panels"]) == []
    assert run.float_noise() == []
    assert " GeV" in run.text()
