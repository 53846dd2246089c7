"""The fault matrix's rows for the run file itself, each out of process (a real
``labrig`` subprocess, its exit code and output checked, the file read back):

* names read from a file never become paths outside ``-o`` (``labrig report`` and
  ``labrig export`` of files crafted with ``/entry/procedure = ../../../x``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import h5py

from labrig.procedure import Column
from labrig.store import RunStore

COLUMNS = [
    Column("index", "", "row number", "i8"),
    Column("voltage", "V", "voltage"),
    Column("current", "A", "current"),
]


def _labrig(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labrig", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _small_run(out: Path, rows: int = 50, sample: str = "dev") -> Path:
    """A closed run file written by the real store (no instruments needed for a file)."""
    store = RunStore.create(
        out,
        procedure="jvl",
        sample=sample,
        columns=COLUMNS,
        signal="current",
        axis="voltage",
        parameters={"rows": (rows, "")},
        config_text="name: test\n",
        simulated=True,
    )
    store.append_rows(
        {
            "index": list(range(rows)),
            "voltage": [0.1 * i for i in range(rows)],
            "current": [1e-3 * i for i in range(rows)],
        }
    )
    store.close("finished")
    return store.path


# ------------------------------------------------------------------ names from files
def test_report_and_export_keep_crafted_names_inside_the_output_dir(tmp_path: Path):
    deep = tmp_path / "a" / "b" / "c"
    files = [_small_run(deep / "runs", sample=f"dev{i}") for i in range(2)]
    time.sleep(0.01)
    for path in files:
        with h5py.File(path, "r+") as f:
            del f["entry/procedure"]
            f["entry/procedure"] = "../../../x"
            f["entry"].attrs["data_groups"] = ["data", ".."]
            f["entry"].create_group("..").attrs["columns"] = ["index"]
            f["entry/.."]["index"] = [7, 8]
    before = set(tmp_path.rglob("*"))
    out = deep / "out"
    result = _labrig("report", *files, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    made = set(tmp_path.rglob("*")) - before
    assert made == {out, out / "x_compare_2_runs.png", out / "summary.txt"}, made

    result = _labrig("export", files[0], "-o", out / "csv")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (out / "csv").iterdir())
    stem = files[0].stem
    assert written == [f"{stem}_data.csv", f"{stem}_group.csv"]
    assert (out / "csv" / f"{stem}_group.csv").read_text().split() == ["index", "7", "8"]
    assert set(tmp_path.rglob("*")) - before - made == {out / "csv"} | {
        out / "csv" / n for n in written
    }
