"""Notebook 6 (coffea): a processor run by coffea's Runner through our PhysliteSchema on both releases' files
gives the counts and masses of a direct read."""

from __future__ import annotations

import numpy as np

from . import direct
from .execute import execute
from .figure_checks import problems

R22, R21 = "release 22 example (Zee)", "release 21 example"
CHECKS = (
    "{'events': output['events'], 'pairs': output['pairs'], 'chunks': metrics['chunks'], "
    "'mee': {d: float(output['mee'][d, :].sum(flow=True)) for d in fileset}, "
    "'mee_in_range': {d: float(output['mee'][d, :].sum()) for d in fileset}, "
    "'jets': {d: float(output['jet_pt'][d, :].sum(flow=True)) for d in fileset}, "
    "'labels': [ax.get_xlabel() for ax in coffea_figure.axes], 'z0': electrons.trackParticle.z0.to_list(), "
    "'panels': figure_checks.panels(coffea_figure)}"
)


def test_coffea(data_env, r21_path, r22_path):
    run = execute(
        "06_coffea",
        env=data_env,
        parameters={"FILESET_FILES": {R22: [r22_path.name], R21: [r21_path.name]}, "CHUNK_SIZE": 50},
        checks=CHECKS,
    )
    checks = run.checks
    assert checks["events"] == {R22: 100, R21: 40}
    assert checks["chunks"] == 2 + 1
    for dataset, path in ((R22, r22_path), (R21, r21_path)):
        masses = direct.dielectron_masses(path)
        assert checks["pairs"][dataset] == checks["mee"][dataset] == len(masses)
        assert checks["mee_in_range"][dataset] == np.count_nonzero((masses >= 60) & (masses < 120))
        assert checks["jets"][dataset] == direct.jet_count(path, 20e3) > 0
    assert checks["pairs"][R22] > 10
    direct.assert_same_jagged(checks["z0"], direct.first_track_z0(r22_path))
    assert checks["labels"] == [r"$m_{ee}$ [GeV]", r"jet $p_{T}$ [GeV]"]
    assert run.images == 1
    assert problems(checks["panels"]) == []
    assert run.float_noise() == []
