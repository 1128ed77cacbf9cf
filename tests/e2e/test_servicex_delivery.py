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

# in the user's server too: ROOT output, an expression following ElementLinks, a bad query's error text, and a
# file list with an unreadable file (that file fails alone); each compared with a direct read in the same kernel
MORE = """\
import json, os
import awkward as ak, numpy as np, uproot, physlite, servicex
from servicex import dataset, query

path = os.path.join(os.environ["AF_EXAMPLE_DATA"], "PHYSLITE_example.root")
columns = ["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.eta"]
cut = "ak.num(AnalysisElectronsAuxDyn.pt) >= 1"

def deliver(name, files, selection, fmt="parquet", **options):
    spec = {"General": {"OutputFormat": fmt, "Delivery": "LocalCache"},
            "Sample": [{"Name": name, "Dataset": dataset.FileList(files),
                        "Query": query.UprootRaw([{"treename": "CollectionTree", **selection}])}]}
    return list(servicex.deliver(spec, ignore_local_cache=True, progress_bar="none", **options)[name])

with uproot.open(path) as f:
    direct = f["CollectionTree"].arrays(columns, library="ak")
direct = direct[ak.num(direct[columns[0]]) >= 1]
[root_file] = deliver("e2e-root", [path], {"filter_name": columns, "cut": cut}, fmt="root-ttree")
with uproot.open(root_file) as f:
    tree = f[f.keys(cycle=False)[0]]
    got = tree.arrays(columns, library="ak")
root_equal = all(ak.to_list(got[c]) == ak.to_list(direct[c]) for c in columns)

[linked] = deliver("e2e-links", [path], {"expressions": ["Electrons.trackParticles.z0"],
                                         "cut": "ak.num(Electrons.pt) >= 1"})
events = physlite.events(path)
expected = events.Electrons.trackParticles.z0[ak.num(events.Electrons.pt) >= 1]
links_equal = ak.to_list(ak.from_parquet(linked)["Electrons.trackParticles.z0"]) == ak.to_list(expected)

try:
    deliver("e2e-bad", [path], {"expressions": ["Electrons.pt +* 2"]}, return_exceptions=False)
    bad = "no error"
except Exception as error:
    bad = f"{type(error).__name__}: {error}"

missing = os.path.join(os.path.dirname(path), "no_such_file.root")
partial = deliver("e2e-partial", [path, missing], {"filter_name": columns, "cut": cut}, fail_if_incomplete=False)
print(MARKER + json.dumps({"root_equal": root_equal, "root_file": root_file, "links_equal": links_equal,
                           "linked_electrons": int(ak.sum(ak.num(expected))), "bad": bad, "partial": partial}))
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


@pytest.mark.e2e
def test_root_output_links_bad_query_and_an_unreadable_file_in_a_users_server(facility, hub):
    assert start_server(hub, "alice").status_code in (201, 202)
    try:
        got = reported(
            run(f"{facility.url}/user/alice", hub.user_token("alice"), f"MARKER = {MARKER!r}\n" + MORE)
        )
    finally:
        stop_server(hub, "alice")
    print("alice's client, ROOT / links / bad query / unreadable file:", got)
    assert got["root_equal"] and got["root_file"].endswith(".root"), got
    assert got["links_equal"] and got["linked_electrons"] > 0, got
    assert "not a valid Python expression" in got["bad"], got
    [delivered] = got["partial"]  # the readable file's output only
    assert "PHYSLITE_example" in delivered and "no_such_file" not in delivered, got


def test_up_without_seaweedfs_names_the_make_target(tmp_path, monkeypatch):
    from af.tools.local.ports import Ports
    from af.tools.local.runner import FacilityError, LocalFacility

    monkeypatch.setenv("AF_SEAWEEDFS_ENV", str(tmp_path / "no-seaweedfs"))
    facility = LocalFacility(tmp_path / "state", ports=Ports.free())
    with pytest.raises(FacilityError, match="make seaweedfs-env"):
        facility.up()
    assert facility.pids() == {}, "nothing may have been started"
