"""Notebook 7 (ServiceX) against the local facility's own ServiceX service: the real client, configured by a
``servicex.yaml`` like the one in every user's server (the facility's endpoint, a hub token of alice with the
scope access:services!service=servicex), delivers the skimmed electrons; they equal a direct uproot read with the
same cut, and the notebook plots them."""

from __future__ import annotations

import awkward as ak
import uproot

from hub_config.servicex import endpoint, servicex_yaml
from hub_config.settings import validate_settings

from .execute import BUILD, execute

COLUMNS = ["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.eta"]
CHECKS = (
    "{'n_events': n_events, 'n_electrons': n_electrons, 'files': len(files), "
    "'pt_sum': float(ak.sum(pt)), 'labels': [ax.get_xlabel() for ax in figure.axes]}"
)


def test_servicex(facility_user_env, local_facility, r22_path):
    workdir = BUILD / "work" / "07_servicex"
    workdir.mkdir(parents=True, exist_ok=True)
    # the client finds servicex.yaml in its working folder (in a server: the home, where the facility writes it)
    url = endpoint(validate_settings(local_facility.settings()))
    (workdir / "servicex.yaml").write_text(servicex_yaml(url, facility_user_env["JUPYTERHUB_API_TOKEN"]))
    run = execute(
        "07_servicex",
        env=facility_user_env,
        parameters={"FILE_NAME": r22_path.name},
        checks=CHECKS,
        workdir=workdir,
        timeout=300,
    )
    with uproot.open(r22_path) as f:
        direct = f["CollectionTree"].arrays(COLUMNS, library="ak")
    direct = direct[ak.num(direct[COLUMNS[0]]) >= 1]
    checks = run.checks
    assert checks["files"] == 1
    assert checks["n_events"] == len(direct) > 0
    assert checks["n_electrons"] == int(ak.sum(ak.num(direct[COLUMNS[0]])))
    assert abs(checks["pt_sum"] - float(ak.sum(direct[COLUMNS[0]])) / 1000.0) < 1e-6 * checks["pt_sum"]
    assert checks["labels"] == ["electron $p_T$ [GeV]", "electron $\\eta$"]
    assert run.images == 1
