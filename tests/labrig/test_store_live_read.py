"""A second process reads the run file while the run goes on (SWMR)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from labrig.store import read_run

WRITER = Path(__file__).with_name("writer_proc.py")


def test_live_read_by_another_process(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(tmp_path), "stream", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = Path(writer.stdout.readline().strip())
        counts = []
        # one long-lived SWMR handle, refreshed, as a live plot would use it
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            ds = f["entry/data/index"]
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                ds.refresh()
                counts.append(ds.shape[0])
                time.sleep(0.25)
            ds.refresh()
            head = ds[: counts[-1]]
            np.testing.assert_array_equal(head, np.arange(counts[-1]))
            assert counts[-1] > counts[0] and len(set(counts)) >= 3, counts
            # and read_run, opening afresh while the writer is still going
            mid = read_run(path)
            assert mid.status == "running"
            assert len(mid.columns["data"]["index"][0]) >= counts[-1]
            # the writer closes the run while this reader still holds the file open
            assert writer.wait(timeout=30) == 0
        total = int(writer.stdout.read().split()[1])
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()
    done = read_run(path)
    assert done.status == "finished"
    np.testing.assert_array_equal(done.columns["data"]["index"][0], np.arange(total))
