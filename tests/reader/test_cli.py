"""The physlite command: inspect and read."""

from __future__ import annotations

import subprocess
import sys

from physlite.cli import collection_of, main


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
