"""The physlite command: inspect and read."""

from __future__ import annotations

import subprocess
import sys

import pytest

import physlite
from physlite.cli import collection_of, main
from physlite.errors import UnsupportedTypeError


def test_inspect_lists_collections_entries_and_compression(r21_path, capsys):
    assert main(["inspect", str(r21_path)]) == 0
    out = capsys.readouterr().out
    assert "CollectionTree, 40 entries" in out
    assert "ZLIB level" in out
    assert "AnalysisElectrons" in out and "AnalysisJets" in out
    assert "ElementLink" in out


def test_read_summarises_values(r22_path, capsys):
    assert main(["read", str(r22_path), "EventInfoAuxDyn.eventNumber", "--entry-stop", "10"]) == 0
    out = capsys.readouterr().out
    assert "10 * uint64" in out and "10 values" in out


def test_console_script_exit_status(r22_path):
    ok = subprocess.run(
        [sys.executable, "-m", "physlite.cli", "read", str(r22_path), "AnalysisMuonsAuxDyn.pt"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "physlite.cli", "read", str(r22_path), "AnalysisElectrons"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "AnalysisElectrons" in bad.stderr


def test_collection_of():
    assert collection_of("AnalysisElectronsAuxDyn.pt") == "AnalysisElectrons"
    assert collection_of("EventInfoAux.runNumber") == "EventInfo"
    assert collection_of("index_ref") == "index_ref"


def test_events_and_analysis_are_reachable_from_the_package(r22_path):
    code = (
        "import physlite, sys; e = physlite.events(sys.argv[1]); "
        "print(len(e), callable(physlite.analysis.run))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(r22_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["100", "True"]


def test_inspect_tells_branches_without_data_from_unreadable_ones(r21_path, r22_path, capsys):
    assert main(["inspect", str(r22_path)]) == 0
    out = capsys.readouterr().out
    assert "482 hold no data, 0 unreadable" in out and "unsupported" not in out
    assert "x interface container" in out and "x base of an auxiliary store\n" in out
    assert main(["inspect", str(r21_path)]) == 0
    out = capsys.readouterr().out
    assert "1 unreadable" in out and "unreadable   McEventInfo: no decoder for type PileUpEventInfo_p5" in out


@pytest.mark.parametrize("release", ["r21", "r22"])
def test_branches_said_to_hold_no_data_carry_only_bookkeeping(release, r21_path, r22_path):
    path = r21_path if release == "r21" else r22_path
    with physlite.open(path) as f:
        infos = [f.info(name) for name in f.keys()]
        empty = [info for info in infos if info.holds_no_data]
        assert len(empty) > 450
        # a few bytes of object headers per entry, where a data branch of the same objects holds values
        assert max(info.uncompressed_bytes for info in empty) / f.num_entries < 80
        assert {"AnalysisElectrons", "AnalysisElectronsAux."} <= {info.name for info in empty}
        with pytest.raises(
            UnsupportedTypeError, match=rf"{path.name}: branch AnalysisElectrons: holds no data"
        ):
            f.arrays(["AnalysisElectrons"])
        mc_event_info = [info for info in infos if info.layout is None and not info.holds_no_data]
        assert [info.name for info in mc_event_info] == (["McEventInfo"] if release == "r21" else [])
        if mc_event_info:
            assert (
                mc_event_info[0].uncompressed_bytes / f.num_entries > 1000
            )  # real data, of a type not decoded
