"""The fault matrix's rows for the run file itself, each out of process (a real
``labrig`` subprocess, its exit code and output checked, the file read back):

* a full disk (the file-size limit, ``ulimit -f``, set in the child: no root needed)
  stops the run as failed with the reason, never crashes labrig, and keeps every row
  that reached the disk readable; a run is not started without room;

* damaged files never hang a reader: files cut at many offsets are read within seconds
  each, showing exactly the intact rows (never padding) with equal-length columns, and
  ``labrig inspect/report/export`` and ``--resume`` on a cut file answer in one line;
* one writer per file: ``--resume`` of a file a live run is writing is refused with one
  line naming that process, and the live run goes on untouched;
* names read from a file never become paths outside ``-o`` (``labrig report`` and
  ``labrig export`` of files crafted with ``/entry/procedure = ../../../x``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from labrig.config import shipped_config_dir
from labrig.procedure import Column
from labrig.store import RunStore, load_run, read_run
from labrig.store.access import WriterLock, lock_path, note_path

# process limits live next to this file; importable in any pytest import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))
from limits import file_size_limit  # noqa: E402

WRITER = Path(__file__).parent / "labrig" / "writer_proc.py"

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


# ------------------------------------------------------------------ damaged files
@pytest.fixture(scope="module")
def source_files(tmp_path_factory) -> dict[str, Path]:
    """A finished J-V-L run with spectra (a real ``labrig run``) and a file left by a
    writer killed with SIGKILL (flagged as still open for writing)."""
    out = tmp_path_factory.mktemp("damaged")
    done = _labrig("run", "jvl", "--simulate", "-o", out / "jvl", "--set", "stop_voltage=2.5")
    assert done.returncode == 0, done.stderr
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(out / "crash"), "burst"],
        stdout=subprocess.PIPE,
        text=True,
    )
    crashed = Path(writer.stdout.readline().strip())
    assert writer.stdout.readline().strip() == "appended"
    time.sleep(1.2)  # the background flush brings the 1000 rows to disk
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    writer.stdout.close()
    return {"jvl": next((out / "jvl").glob("*.h5")), "crashed": crashed}


SWEEP = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from labrig.errors import UserInputError
    from labrig.store import load_run

    source, cut_dir = Path(sys.argv[1]), Path(sys.argv[2])
    data = source.read_bytes()
    for cut in json.loads(sys.argv[3]):
        path = cut_dir / f"cut_{cut}.h5"
        path.write_bytes(data[:cut])
        began = time.monotonic()
        try:
            loaded = load_run(path)
        except UserInputError as exc:
            result = {"error": str(exc)}
        else:
            result = {
                "problems": loaded.problems,
                "columns": {
                    g: {n: c[0].tolist() for n, c in cols.items()}
                    for g, cols in loaded.run.columns.items()
                },
                "spectra": None if loaded.run.spectra is None
                else loaded.run.spectra.counts.tolist(),
            }
        result.update(cut=cut, seconds=time.monotonic() - began)
        print(json.dumps(result), flush=True)
        path.unlink()
    """
)


@pytest.mark.parametrize("kind", ["jvl", "crashed"])
def test_files_cut_at_many_offsets_are_read_quickly_showing_only_intact_rows(
    tmp_path, source_files, kind
):
    source = source_files[kind]
    size = source.stat().st_size
    full = read_run(source)
    cuts = sorted({0, 8, 47, 48, 200, 1000, size - 1, *np.linspace(2000, size - 2, 30).astype(int)})
    sweep = subprocess.run(
        [
            sys.executable,
            "-c",
            SWEEP,
            str(source),
            str(tmp_path),
            json.dumps([int(c) for c in cuts]),
        ],
        capture_output=True,
        text=True,
        timeout=240,  # a hang anywhere fails here instead of blocking the suite
    )
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    results = [json.loads(line) for line in sweep.stdout.splitlines()]
    assert [r["cut"] for r in results] == cuts
    readable = 0
    for r in results:
        assert r["seconds"] < 5, r["cut"]
        if "error" in r:  # a cut through the superblock or the root: one readable line
            assert "\n" not in r["error"] and str(tmp_path) in r["error"], r
            assert r["cut"] < size // 2, r  # only cuts near the start lose everything
            continue
        readable += 1
        assert r["problems"][0].startswith(f"file truncated ({r['cut']} of {size} bytes)")
        for group, cols in r["columns"].items():
            lengths = {len(v) for v in cols.values()}
            assert len(lengths) <= 1, (r["cut"], group, lengths)  # never unequal columns
            for name, values in cols.items():  # exactly the original's first rows
                original = full.columns[group][name][0][: len(values)]
                values = np.asarray(values, original.dtype)
                nan = original.dtype.kind == "f"
                assert np.array_equal(values, original, equal_nan=nan), (r["cut"], name)
        if r["spectra"] is not None and full.spectra is not None and r["spectra"]:
            n = len(r["spectra"])
            np.testing.assert_array_equal(r["spectra"], full.spectra.counts[:n])
    assert readable >= 25  # most cuts keep something to show
    last = results[-1]  # one byte short: every row is still there
    assert len(next(iter(last["columns"]["data"].values()))) == len(
        next(iter(full.columns["data"].values()))[0]
    )


def test_commands_on_a_cut_file_answer_in_one_line_or_show_what_is_intact(tmp_path, source_files):
    data = source_files["crashed"].read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    began = time.monotonic()
    inspect = _labrig("inspect", cut, timeout=60)
    assert inspect.returncode == 0, inspect.stderr
    assert "status:     running" in inspect.stdout
    assert f"note:       file truncated ({cut.stat().st_size} of {len(data)} bytes)" in (
        inspect.stdout
    )
    rows = int(inspect.stdout.split("columns (data, ")[1].split(" rows")[0])
    assert 0 < rows <= 1000

    export = _labrig("export", cut, "-o", tmp_path / "csv", timeout=60)
    assert export.returncode == 0, export.stderr
    table = (tmp_path / "csv" / "cut_data.csv").read_text().splitlines()
    assert table[0] == "index,t [s],voltage_v [V]" and len(table) == rows + 1
    assert [int(line.split(",")[0]) for line in table[1:]] == list(range(rows))

    config = _lifetime_config(tmp_path, max_duration=0.01)
    resume = _labrig("run", "lifetime", "--config", config, "--resume", cut, timeout=60)
    assert resume.returncode == 2, resume.stderr
    assert resume.stderr.strip() == (
        f"labrig: error: {cut}: truncated ({cut.stat().st_size} of {len(data)} bytes); "
        "labrig report/export/inspect show what it still holds"
    )
    assert time.monotonic() - began < 60
    assert cut.read_bytes() == data[: int(len(data) * 0.8)]  # nothing touched


# ------------------------------------------------------------------ one writer per file
LIFETIME = {
    "channels": "1,2",
    "drive": "current density",
    "levels": "1",
    "first_interval": 1.0,
    "max_interval": 1.0,
    "settle_time": 0.0,
}


def _lifetime_config(tmp_path: Path, max_duration: float) -> Path:
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {"lifetime": dict(data["instruments"]["lifetime"], channels=2)}
    data["simulation"]["clock_speed"] = 20.0
    path = tmp_path / "lifetime.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_resume_of_a_file_a_live_run_is_writing_is_refused_naming_the_process(tmp_path):
    config = _lifetime_config(tmp_path, max_duration=100)
    out = tmp_path / "runs"
    args = ["run", "lifetime", "--config", config, "-o", out, "--set", "max_duration=100"]
    for name, value in LIFETIME.items():
        args += ["--set", f"{name}={value}"]
    live = subprocess.Popen(
        [sys.executable, "-m", "labrig", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        path = _wait_for_rows(out, live, group="channel_01", rows=3)
        before = read_run(path).columns["channel_01"]["time"][0]
        second = _labrig("run", "lifetime", "--config", config, "--resume", path, timeout=60)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr
        assert lines[0].startswith(f"labrig: error: resume {path}: refused, process {live.pid} ")
        assert f"(lock {path.name}.lock)" in lines[0]
        # the live run was not disturbed: still running, still writing the same file
        _wait_for_rows(out, live, group="channel_01", rows=len(before) + 3)
        after = read_run(path)
        assert after.status == "running"
        np.testing.assert_array_equal(after.columns["channel_01"]["time"][0][: len(before)], before)
        # the lock dies with its holder, however it dies: kill -9, then resume may go on
        os.kill(live.pid, signal.SIGKILL)
        live.wait(timeout=10)
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
        live.stderr.close()
    assert lock_path(path).exists()  # left behind, naming the dead writer: stale, harmless
    lock = WriterLock(path).acquire("resume")
    lock.release()
    assert not lock_path(path).exists()


def _wait_for_rows(out: Path, proc: subprocess.Popen, group: str, rows: int) -> Path:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for path in out.glob("*.h5"):
            try:
                if len(read_run(path).columns[group]["time"][0]) >= rows:
                    return path
            except Exception:  # noqa: BLE001 - still being laid out
                pass
        time.sleep(0.2)
    raise AssertionError(f"no {rows} rows in {group} after 90 s")


# ------------------------------------------------------------------ a full disk
@pytest.mark.parametrize(
    "batch, failing_write",
    [(2000, False), (60000, True)],
    ids=["stopped-before-the-limit", "write-failed-at-the-limit"],
)
def test_file_size_limit_stops_the_run_failed_and_keeps_every_written_row(
    tmp_path, batch, failing_write
):
    """Small flushes: the store sees the limit coming and stops with the file intact
    (status in the file).  Flushes bigger than its reserve: a write fails; the store
    never writes to that file again, closes without crashing and records the status
    beside it; readers show exactly the rows flushed before."""
    writer = subprocess.run(
        [sys.executable, str(WRITER), str(tmp_path), "fill", str(batch)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(4_150_000),
    )
    assert writer.returncode == 1, writer.stderr  # not -11: no crash at close or exit
    assert "Traceback" not in writer.stderr and "Exception ignored" not in writer.stderr
    path = Path(writer.stdout.splitlines()[0])
    stopped = int(writer.stdout.split("stopped ")[1])
    assert stopped >= 2 * batch  # rows reached the disk before the limit
    loaded = load_run(path)
    assert loaded.run.status == "failed"
    assert "file-size limit (ulimit -f)" in loaded.run.abort_reason
    assert f"data {stopped} rows" in loaded.run.abort_reason
    index = loaded.run.columns["data"]["index"][0]
    np.testing.assert_array_equal(index, np.arange(stopped))  # all kept, nothing invented
    assert len(loaded.run.columns["data"]["t"][0]) == stopped
    assert note_path(path).exists() == failing_write
    assert not lock_path(path).exists()
    if failing_write:
        assert loaded.run.abort_reason.startswith("writing the run file failed")
        with pytest.raises(Exception, match="its writes failed"):  # never reopened
            RunStore.resume(path)
    else:
        assert loaded.run.abort_reason.startswith("stopped before the disk filled")
        with h5py.File(path, "r") as f:  # a clean file, its status inside
            assert f["entry/status"][()] == b"failed"


def test_labrig_run_on_a_filling_disk_exits_1_with_the_reason_and_a_readable_file(tmp_path):
    out = tmp_path / "runs"
    args = ["run", "jvl", "--simulate", "-o", out, "--set", "step_voltage=0.002"]
    run = subprocess.run(
        [sys.executable, "-m", "labrig", *map(str, args), "--set", "spectra=every_step"],
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=file_size_limit(2_150_000),  # spectra outrun the reserve: a write fails
    )
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
    path = Path(run.stdout.splitlines()[0].removeprefix("failed: "))
    # how close to the limit a flush gets depends on the spectra's pace (the machine's
    # load): either the store stops in time (status in the file) or a write fails
    # (status beside it); both say why
    reason = run.stdout.splitlines()[1].removeprefix("reason: ")
    failed_write = reason.startswith("writing the run file failed (file-size limit (ulimit -f)")
    assert failed_write or reason.startswith("stopped before the disk filled: ")
    assert "file-size limit (ulimit -f)" in reason
    assert note_path(path).exists() == failed_write
    inspect = _labrig("inspect", path)
    assert inspect.returncode == 0, inspect.stderr
    assert f"status:     failed — {reason}" in inspect.stdout
    loaded = load_run(path)
    lengths = {len(c[0]) for c in loaded.run.columns["data"].values()}
    assert len(lengths) == 1
    spectra = loaded.run.spectra
    assert spectra is not None and len(spectra.counts) == len(spectra.step) > 0
    assert np.isfinite(spectra.counts).all() and spectra.counts.max() > 0  # real, not padding

    # and no run starts where it could not even be closed
    refused = subprocess.run(
        [sys.executable, "-m", "labrig", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=file_size_limit(1_000_000),
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"labrig: error: output directory {out}: only 976 kB can be written (file-size "
        "limit (ulimit -f) of 1000000 bytes); a run needs at least 2 MB"
    ]
    assert sorted(p.name for p in out.iterdir()) == [path.name] + [path.name + ".failed"] * (
        failed_write
    )
