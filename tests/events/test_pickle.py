"""physlite.events is a callable module that pickles by reference: functions written in a notebook that call
physlite.events(...) can be sent to dask workers (cloudpickle), which run them in another process."""

from __future__ import annotations

import pickle
import subprocess
import sys

import cloudpickle

import physlite.events

# A notebook cell: its functions live in __main__, so cloudpickle sends them by value, together with the
# modules they use (physlite.events among them, as a submodule of physlite touched by the code).
NOTEBOOK_CELL = """
import physlite.events

def electrons_per_event(path):
    events = physlite.events(path, collections=["Electrons"])
    return [len(e) for e in events.Electrons.pt.tolist()]
"""

RUN_IN_A_FRESH_PROCESS = """
import sys, cloudpickle
function, path = cloudpickle.loads(sys.stdin.buffer.read())
print(sum(function(path)))
"""


def test_the_module_pickles_as_a_reference_to_itself():
    assert pickle.loads(pickle.dumps(physlite.events)) is physlite.events
    assert cloudpickle.loads(cloudpickle.dumps(physlite.events)) is physlite.events


def test_a_notebook_function_calling_physlite_events_runs_in_another_process(r22_path):
    namespace = {"__name__": "__main__"}
    exec(compile(NOTEBOOK_CELL, "<notebook cell>", "exec"), namespace)
    function = namespace["electrons_per_event"]
    blob = cloudpickle.dumps((function, str(r22_path)))
    worker = subprocess.run(
        [sys.executable, "-c", RUN_IN_A_FRESH_PROCESS], input=blob, capture_output=True, timeout=120
    )
    assert worker.returncode == 0, worker.stderr.decode()
    here = physlite.events(r22_path, collections=["Electrons"])
    expected = int(sum(len(e) for e in here.Electrons.pt.tolist()))
    assert expected > 0
    assert int(worker.stdout.decode().split()[-1]) == expected
