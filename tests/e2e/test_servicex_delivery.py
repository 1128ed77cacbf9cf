"""The facility's own ServiceX from a user's server, as `make up` runs it: the real `servicex` client in alice's
kernel delivers an UprootRaw query over the example file (through the hub's proxy, with the server's token from
``~/servicex.yaml``), the Parquet it gets equals uproot's read with the same cut, and bob cannot see alice's
request."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_isolation import run, start_server, stop_server

MARKER = "SERVICEX-E2E "
DELIVER = """\
import json, os
import awkward as ak, uproot, servicex
from servicex.servicex_client import ServiceXClient
from servicex import dataset, query

path = os.path.join(os.environ["AF_EXAMPLE_DATA"], "PHYSLITE_example.root")
columns = ["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.eta"]
cut = "ak.num(AnalysisElectronsAuxDyn.pt) >= 1"
spec = {
    "General": {"OutputFormat": "parquet", "Delivery": "LocalCache"},
    "Sample": [{"Name": "e2e-electrons", "Dataset": dataset.FileList([path]),
                "Query": query.UprootRaw([{"treename": "CollectionTree", "filter_name": columns, "cut": cut}])}],
}
[delivered] = servicex.deliver(spec, ignore_local_cache=True, progress_bar="none")["e2e-electrons"]
got = ak.from_parquet(delivered)
with uproot.open(path) as f:
    direct = f["CollectionTree"].arrays(columns, library="ak")
direct = direct[ak.num(direct[columns[0]]) >= 1]
ids = [t.request_id for t in ServiceXClient().get_transforms()]
print(MARKER + json.dumps({
    "events": len(got), "direct_events": len(direct),
    "equal": all(ak.to_list(got[c]) == ak.to_list(direct[c]) for c in columns),
    "file": delivered, "requests": ids,
}))
"""
PEEK = """\
import json
from servicex.servicex_client import ServiceXClient
sx = ServiceXClient()
mine = [t.request_id for t in sx.get_transforms()]
try:
    sx.get_transform_status(OTHER)
    other = "visible"
except Exception as error:
    other = f"{type(error).__name__}: {error}"
print(MARKER + json.dumps({"requests": mine, "other": other}))
"""


def reported(output: str) -> dict:
    line = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    assert line is not None, f"the kernel printed no result:\n{output}"
    return json.loads(line[len(MARKER) :])


@pytest.mark.e2e
def test_alice_delivers_parquet_equal_to_uproot_and_bob_cannot_see_it(facility, hub):
    assert start_server(hub, "alice").status_code in (201, 202)
    try:
        alice = reported(
            run(f"{facility.url}/user/alice", hub.user_token("alice"), f"MARKER = {MARKER!r}\n" + DELIVER)
        )
    finally:
        stop_server(hub, "alice")
    print("alice's client delivered:", alice)
    assert alice["equal"], alice
    assert alice["events"] == alice["direct_events"] > 0
    assert alice["file"].endswith(".parquet")
    assert len(alice["requests"]) >= 1
    request_id = alice["requests"][-1]

    assert start_server(hub, "bob").status_code in (201, 202)
    try:
        bob = reported(
            run(
                f"{facility.url}/user/bob",
                hub.user_token("bob"),
                f"MARKER = {MARKER!r}\nOTHER = {request_id!r}\n" + PEEK,
            )
        )
    finally:
        stop_server(hub, "bob")
    print("bob's client:", bob)
    assert request_id not in bob["requests"]
    assert bob["other"].startswith("ValueError") and "not found" in bob["other"], bob  # the client on a 404


def test_up_without_seaweedfs_names_the_make_target(tmp_path, monkeypatch):
    from af.tools.local.ports import Ports
    from af.tools.local.runner import FacilityError, LocalFacility

    monkeypatch.setenv("AF_SEAWEEDFS_ENV", str(tmp_path / "no-seaweedfs"))
    facility = LocalFacility(tmp_path / "state", ports=Ports.free())
    with pytest.raises(FacilityError, match="make seaweedfs-env"):
        facility.up()
    assert facility.pids() == {}, "nothing may have been started"
