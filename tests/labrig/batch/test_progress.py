"""The batch's progress: one display over the runs still to do, named after the device
being measured (k of n), moved by each run's Progress records, with an ETA."""

from __future__ import annotations

from labrig.batch.runner import BatchProgress
from labrig.records import Progress


def test_device_k_of_n_and_an_eta_over_the_runs_to_do(capsys):
    shown = BatchProgress(None, runs=4)  # no terminal: a line at each tenth
    shown.device(1, 8, "S1/A jvl")
    shown(Progress(50.0))  # half of the first of 4 runs: 12.5 %
    shown.run_done()  # 25 %
    shown.device(2, 8, "S1/B jvl")
    shown(Progress(100.0))  # 50 %
    shown.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" done,")[0] for line in lines] == [
        "labrig: batch: device 1 of 8 (S1/A jvl): 12%",
        "labrig: batch: device 1 of 8 (S1/A jvl): 25%",
        "labrig: batch: device 2 of 8 (S1/B jvl): 50%",
    ]
    assert all(" elapsed, ETA " in line for line in lines)
    # the ETA: the rest of the runs at the pace so far
    assert shown.display.line(25.0, 30.0) == (
        "labrig: batch: device 2 of 8 (S1/B jvl): 25% done, 00:30 elapsed, ETA 01:30"
    )
