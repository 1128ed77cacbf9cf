"""Notebook 1 (welcome) runs top to bottom and reports what the files hold."""

from __future__ import annotations

import uproot

from .execute import execute


def test_welcome(data_env, r21_path, r22_path):
    run = execute(
        "01_welcome",
        env=data_env,
        checks="{'entries': entries, 'cores': cores, 'largest': largest[0][0], "
        "'xlabel': size_figure.axes[0].get_xlabel(), 'git_log': git('log', '--format=%s')}",
    )
    expected = {path.name: uproot.open(path)["CollectionTree"].num_entries for path in (r21_path, r22_path)}
    assert run.checks["entries"] == expected == {r21_path.name: 40, r22_path.name: 100}
    assert run.checks["cores"] >= 1
    assert run.checks["git_log"].strip() == "Start my analysis"
    assert "[kB]" in run.checks["xlabel"]
    assert run.images == 1
    # the `physlite inspect` shell command ran inside the notebook
    assert "tree         CollectionTree, 100 entries" in run.text()
