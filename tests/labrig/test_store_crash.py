"""kill -9 of the writing process: the file opens and holds every row older than ~1 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from labrig.store import RunStore, read_run

WRITER = Path(__file__).with_name("writer_proc.py")


def _start(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(tmp_path), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    path = Path(proc.stdout.readline().strip())
    assert path.exists(), path
    return proc, path


def _kill(proc: subprocess.Popen) -> float:
    t_kill = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return t_kill


def test_kill_9_mid_run_keeps_every_row_older_than_a_second(tmp_path: Path) -> None:
    proc, path = _start(tmp_path, "forever")
    time.sleep(2.0)  # rows stream in at a few thousand per second
    t_kill = _kill(proc)

    run = read_run(path)  # opens the crashed file (SWMR read) with a clear status
    assert run.status == "running" and run.end_time is None
    index, units, _ = run.columns["data"]["index"]
    t = run.columns["data"]["t"][0]
    assert len(index) > 1000
    np.testing.assert_array_equal(index, np.arange(len(index)))  # no hole, no torn batch
    assert not np.isnan(t).any()
    assert t[-1] >= t_kill - 1.0, f"newest row on disk is {t_kill - t[-1]:.2f} s old"
    assert run.columns["data"]["voltage_v"][1] == "V"
    with h5py.File(path, "r", libver="latest", swmr=True) as f:  # plain h5py opens it too
        assert f["entry/data/index"].shape[0] == len(index)

    # and the run can be resumed: copied into a clean file, appended to, closed
    store = RunStore.resume(path)
    store.append_row({"index": len(index), "t": time.time(), "voltage_v": 0.0})
    store.close("finished")
    again = read_run(path)
    assert again.status == "finished"
    np.testing.assert_array_equal(again.columns["data"]["index"][0], np.arange(len(index) + 1))
    with h5py.File(path, "r") as f:  # a clean file again: opens without SWMR
        assert f["entry/status"][()] == b"finished"


def test_kill_9_while_blocked_keeps_rows_flushed_in_the_background(tmp_path: Path) -> None:
    """A procedure blocked in an instrument call appends nothing; the rows it appended
    before must still reach disk within a second."""
    proc, path = _start(tmp_path, "burst")
    assert proc.stdout.readline().strip() == "appended"
    time.sleep(1.2)
    _kill(proc)
    run = read_run(path)
    np.testing.assert_array_equal(run.columns["data"]["index"][0], np.arange(1000))
