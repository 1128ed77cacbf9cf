"""The tutorials find the example PHYSLITE files through ``AF_EXAMPLE_DATA``, the facility's setting for users
(``PHYSLITE_TEST_DATA`` is the test suite's own setting and appears in no tutorial), and say clearly what to do
when it is not set."""

from __future__ import annotations

import pytest
from nbclient.exceptions import CellExecutionError

from .execute import execute
from .test_stored_notebooks import STORED


@pytest.mark.parametrize("path", STORED, ids=[path.stem for path in STORED])
def test_tutorials_read_the_facility_setting(path):
    text = path.read_text()
    assert "PHYSLITE_TEST_DATA" not in text
    assert 'os.environ.get(\\"AF_EXAMPLE_DATA\\"' in text  # the parameters cell, as stored in JSON


@pytest.mark.parametrize("path", STORED, ids=[path.stem for path in STORED])
def test_a_missing_setting_is_explained(path):
    # the kernel gets neither AF_EXAMPLE_DATA nor PHYSLITE_TEST_DATA (kernel_environment drops both)
    with pytest.raises(CellExecutionError) as raised:
        execute(path.stem, env={}, label=f"{path.stem}[no AF_EXAMPLE_DATA]", timeout=120)
    assert raised.value.ename == "RuntimeError"
    assert raised.value.evalue == (
        "AF_EXAMPLE_DATA is not set: put the folder of your PHYSLITE files in DATA_DIR above"
    )
