"""The batch file: what is written reads back (rows in plan order, statuses, reasons,
figures with units, absolute run files), its external links open the run files, HDF5
1.10's h5dump reads it, and it is always whole: a write that fails, or a writer killed
with SIGKILL mid-rewrite, leaves the previous state readable."""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from labrig.batch.file import (
    BATCH_FORMAT,
    BatchFile,
    DeviceResult,
    NotABatchFileError,
    read_batch,
    read_batch_record,
    write_batch,
)
from labrig.procedure import Column
from labrig.store import FILE_FORMAT, RunStore


def _run_file(folder: Path, sample: str, status: str = "finished") -> Path:
    store = RunStore.create(
        folder,
        procedure="jvl",
        sample=sample,
        columns=[Column("voltage", "V", "voltage")],
        signal="voltage",
        axis="voltage",
        parameters={},
        config_text="",
        simulated=True,
    )
    store.append_row({"voltage": 1.0})
    store.close(status)
    return store.path


def _rows(folder: Path) -> list[DeviceResult]:
    a = _run_file(folder, "S1-A")
    b = _run_file(folder, "S1-B")
    return [
        DeviceResult(
            "S1", "A", "NSA 0.6 M", "jvl", "finished", "", a,
            {"peak_eqe": (21.3, "%"), "turn_on_voltage": (2.1, "V"), "cie_x": (0.7, "")},
        ),
        DeviceResult("S1", "A", "NSA 0.6 M", "spectrum", "pending", "", None, {}),
        DeviceResult(
            "S1", "B", "", "jvl", "skipped", "shorted: 2.5 A/cm^2 at 0.05 V", b,
            {"peak_eqe": (math.nan, "%"), "contact_defect": ("short", "")},  # type: ignore[dict-item]
        ),
    ]  # fmt: skip


def test_what_is_written_reads_back_in_plan_order(tmp_path):
    rows = _rows(tmp_path)
    path = tmp_path / "batch.h5"
    write_batch(path, "QD LEDs", "running", rows, plan_text="name: QD LEDs\n")
    batch = read_batch(path)
    assert batch.name == "QD LEDs" and batch.status == "running"
    assert batch.path == path
    assert [(d.substrate, d.pixel, d.measurement, d.status) for d in batch.devices] == [
        ("S1", "A", "jvl", "finished"),
        ("S1", "A", "spectrum", "pending"),
        ("S1", "B", "jvl", "skipped"),
    ]
    first, second, third = batch.devices
    assert first.condition == "NSA 0.6 M" and third.condition == ""
    assert first.figures == {
        "peak_eqe": (21.3, "%"),
        "turn_on_voltage": (2.1, "V"),
        "cie_x": (0.7, ""),
    }
    assert first.run_file == rows[0].run_file and first.run_file.is_absolute()
    assert second.run_file is None and second.figures == {}
    # NaN and text figures are left to the run file
    assert third.figures == {} and third.reason == "shorted: 2.5 A/cm^2 at 0.05 V"
    assert read_batch_record(path).plan_text == "name: QD LEDs\n"


def test_the_layout_links_each_run_and_tables_figures_with_units(tmp_path):
    rows = _rows(tmp_path)
    path = tmp_path / "batch.h5"
    write_batch(path, "b", "finished", rows)
    with h5py.File(path, "r") as f:
        assert f.attrs["file_format"] == BATCH_FORMAT
        entry = f["batch"]
        assert entry.attrs["devices_planned"] == 2 and entry.attrs["devices_skipped"] == 1
        peak = entry["figures/jvl/peak_eqe"]
        assert peak.attrs["units"] == "%"
        assert peak[0] == 21.3 and math.isnan(peak[1]) and math.isnan(peak[2])
        assert list(entry["devices/run_file"].asstr()[()]) == [
            rows[0].run_file.name,
            "",
            rows[2].run_file.name,
        ]
        link = entry["runs"].get("0000_S1_A_jvl", getlink=True)
        assert isinstance(link, h5py.ExternalLink) and link.path == "/entry"
        assert entry["runs/0000_S1_A_jvl/status"].asstr()[()] == "finished"  # followed
        assert entry["runs/0002_S1_B_jvl/sample"].asstr()[()] == "S1-B"
        assert sorted(entry["runs"]) == ["0000_S1_A_jvl", "0002_S1_B_jvl"]


def test_a_moved_folder_keeps_its_links(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    rows = _rows(folder)
    write_batch(folder / "batch.h5", "b", "finished", rows)
    moved = shutil.move(folder, tmp_path / "b")
    batch = read_batch(Path(moved) / "batch.h5")
    assert batch.devices[0].run_file == Path(moved) / rows[0].run_file.name
    with h5py.File(Path(moved) / "batch.h5", "r") as f:
        assert f["batch/runs/0000_S1_A_jvl/status"].asstr()[()] == "finished"


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="hdf5-tools not installed")
def test_hdf5_1_10_h5dump_reads_it(tmp_path):
    path = tmp_path / "batch.h5"
    write_batch(path, "b", "finished", _rows(tmp_path))
    done = subprocess.run(["h5dump", "-H", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'EXTERNAL_LINK "0000_S1_A_jvl"' in done.stdout


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    rows = _rows(tmp_path)
    path = tmp_path / "batch.h5"
    bf = BatchFile(path, "b", "", rows)
    bf.write()
    import labrig.batch.file as module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module, "_write", broken)
    with pytest.raises(OSError, match="disk full"):
        bf.end("finished")
    assert read_batch(path).status == "running"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


WRITER = """
import sys
from pathlib import Path
from labrig.batch.file import DeviceResult, write_batch
path = Path(sys.argv[1])
rows = [DeviceResult("S1", str(k), "", "jvl", "pending", "", None, {}) for k in range(24)]
print("ready", flush=True)
n = 0
while True:
    n += 1
    rows[n % 24] = DeviceResult("S1", str(n % 24), "", "jvl", "finished", "", None,
                                {"peak_eqe": (float(n), "%")})
    write_batch(path, f"write {n}", "running", rows)
"""


def test_a_writer_killed_mid_rewrite_leaves_a_whole_file(tmp_path):
    path = tmp_path / "batch.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # many rewrites in flight
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    batch = read_batch(path)
    n = int(batch.name.split()[1])
    assert n >= 1 and len(batch.devices) == 24
    assert batch.devices[n % 24].figures == {"peak_eqe": (float(n), "%")}


def test_not_a_batch_file_is_one_line(tmp_path):
    run = _run_file(tmp_path, "S1-A")
    with pytest.raises(NotABatchFileError) as info:
        read_batch(run)
    assert str(info.value) == (
        f"{run.absolute()}: not a labrig batch file (a {FILE_FORMAT} file; a batch file "
        "has labrig-batch/1)"
    )
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(NotABatchFileError, match=r"notes.h5: not an HDF5 file$"):
        read_batch(text)
    with pytest.raises(NotABatchFileError, match=r"missing.h5: no such file$"):
        read_batch(tmp_path / "missing.h5")


def test_statuses_outside_the_vocabulary_are_refused(tmp_path):
    row = DeviceResult("S1", "A", "", "jvl", "done", "", None, {})
    with pytest.raises(ValueError, match="device status 'done'; allowed: finished, skipped"):
        write_batch(tmp_path / "b.h5", "b", "running", [row])
    with pytest.raises(ValueError, match="batch status 'ok'"):
        write_batch(tmp_path / "b.h5", "b", "ok", [])
