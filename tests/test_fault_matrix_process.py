"""The faults that need a second process: kill -9 of a run, and signals to a run whose
instruments live in another process (``labrig sim serve``), as at a real bench.

* kill -9: nothing can run in the dying process, so the file must already hold every row
  older than about a second (the store's background flush) and open with status
  ``running``.  The run prints each row as the procedure hands it to the store, with the
  wall time, so the test knows exactly what was emitted before the kill.
* out of process: the run reaches the simulated 2400 over TCP with a real-bench config
  (``simulated: false``); after SIGINT or SIGTERM the test asks the simulator itself, over
  pyvisa, whether the output is off (``:OUTP?`` -> 0).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import pyvisa
import yaml

from labrig.config import shipped_config_dir
from labrig.simulators.served import sim_serve
from labrig.store import read_run

#: a J-V-L sweep at real instrument timing: a row every ~50 ms for far longer than the test
SLOW_JVL = {
    "stop_voltage": 3.0,
    "step_voltage": 0.005,
    "spectra": "none",
    "source_delay": 0.04,
    "smu_nplc": 0.01,
    "photometer_nplc": 0.01,
    "dark_readings": 2,
}


def _sim_yaml(tmp_path: Path, *, clock_speed: float, **instruments) -> Path:
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = instruments or {r: data["instruments"][r] for r in ("smu", "photometer")}
    data["simulation"]["clock_speed"] = clock_speed
    path = tmp_path / f"bench-{len(list(tmp_path.glob('bench-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _wait_for_rows(out: Path, proc: subprocess.Popen, rows: int, timeout: float = 60) -> Path:
    """The run file in ``out`` once it holds ``rows`` rows (read live, as a viewer would)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        files = list(out.glob("*.h5"))
        if files:
            try:
                data = read_run(files[0]).columns["data"]
                if len(next(iter(data.values()))[0]) >= rows:
                    return files[0]
            except Exception:  # noqa: BLE001 - the file is still being laid out
                pass
        time.sleep(0.1)
    raise AssertionError(f"no run file with {rows} rows in {out} after {timeout} s")


# ----------------------------------------------------------------------------- kill -9
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from labrig.config import load_config
    from labrig.procedures import load
    from labrig.runner import run_procedure

    class Printing(load({name!r})):
        def emit_row(self, values, group=None):
            super().emit_row(values, group)  # returned: the store has the row
            print("rows", group or "data", 1, time.time(), flush=True)

        def emit_rows(self, columns, group=None):
            super().emit_rows(columns, group)
            n = len(next(iter(columns.values())))
            print("rows", group or "data", n, time.time(), flush=True)

    proc = Printing()
    proc.set_parameters({params!r})
    run_procedure(proc, load_config(sys.argv[1]), output_dir=Path(sys.argv[2]), progress=False)
    """
)

#: lifetime on a 20x clock: both channels sampled once a (simulated) second
LIFETIME_1HZ = {
    "channels": "1,2",
    "drive": "current density",
    "levels": "1",
    "first_interval": 1.0,
    "max_interval": 1.0,
    "settle_time": 0.0,
    "max_duration": 10.0,
}


@pytest.mark.parametrize(
    "name, params, clock_speed, roles, axis",
    [
        ("jvl", SLOW_JVL, 1.0, ("smu", "photometer"), "voltage"),
        ("lifetime", LIFETIME_1HZ, 20.0, ("lifetime",), "time"),
    ],
    ids=["jvl", "lifetime"],
)
def test_kill_9_leaves_a_readable_file_with_the_rows_up_to_a_second_before(
    tmp_path: Path, name, params, clock_speed, roles, axis
):
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    instruments = {r: dict(data["instruments"][r]) for r in roles}
    if "lifetime" in instruments:
        instruments["lifetime"]["channels"] = 2
    config = _sim_yaml(tmp_path, clock_speed=clock_speed, **instruments)
    out = tmp_path / "runs"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(name=name, params=params), str(config), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    emitted: dict[str, list[tuple[int, float]]] = {}  # group -> (rows so far, wall time)
    try:
        t_start = None
        for line in child.stdout:
            _, group, n, stamp = line.split()
            rows = emitted.setdefault(group, [(0, 0.0)])
            rows.append((rows[-1][0] + int(n), float(stamp)))
            t_start = t_start or time.time()
            if time.time() - t_start > 2.5:
                break
        t_kill = time.time()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    run = read_run(next(out.glob("*.h5")))
    assert run.status == "running" and run.end_time is None  # it never closed
    assert emitted, "the run emitted nothing before the kill"
    for group, rows in emitted.items():
        column = run.columns[group][axis][0]
        kept = len(column)
        due = max(n for n, stamp in rows if stamp <= t_kill - 1.0)
        assert due > 10, f"{group}: too few rows before the kill to test anything"
        assert kept >= due, f"{group}: {kept} rows on disk, {due} emitted over 1 s before kill"
        assert kept <= rows[-1][0] + 1  # nothing invented
        assert (column == sorted(column)).all()  # no torn or repeated batch


# ----------------------------------------------------------------------------- out of process
@pytest.fixture
def served(tmp_path: Path):
    """``labrig sim serve`` in its own process at real instrument timing; its resources."""
    with sim_serve(_sim_yaml(tmp_path, clock_speed=1.0)) as served:
        yield served.resources


def _query(resource: str, command: str) -> str:
    rm = pyvisa.ResourceManager("@py")
    try:
        inst = rm.open_resource(
            resource, read_termination="\n", write_termination="\n", timeout=5000
        )
        try:
            return inst.query(command).strip()
        finally:
            inst.close()
    finally:
        rm.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_a_run_on_served_instruments_leaves_the_2400_off(tmp_path, served, sig):
    real = {
        "smu": {"driver": "keithley2400", "resource": served["smu"], "timeout_s": 5},
        "photometer": {"driver": "keithley6485", "resource": served["photometer"]},
    }
    config = _sim_yaml(tmp_path, clock_speed=1.0, **real)
    out = tmp_path / "runs"
    args = [sys.executable, "-m", "labrig", "run", "jvl", "--config", str(config), "-o", str(out)]
    for name, value in SLOW_JVL.items():
        args += ["--set", f"{name}={value}"]
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = _wait_for_rows(out, run, rows=5)
        run.send_signal(sig)
        stdout, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    # the simulated 2400 itself, asked by a third party over pyvisa
    assert _query(served["smu"], ":OUTP?") == "0"
    data = read_run(path)
    assert (data.status, data.abort_reason) == ("aborted", f"interrupted by {sig.name}")
    assert not data.simulated  # a real-bench config: the run could not tell
    assert data.instruments["smu"].resource == served["smu"]
    current = data.columns["data"]["current"][0]
    assert len(current) >= 5 and current.max() > 0  # the output was on while it ran
