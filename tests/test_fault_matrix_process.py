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
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from labrig.config import shipped_config_dir
from labrig.simulators.served import ask, sim_serve
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
    from labrig.registry import measurement
    from labrig.runner import run_procedure

    class Printing(measurement({name!r}).procedure_class()):
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


def _real_bench(tmp_path: Path, served: dict[str, str], smu_timeout_s: float = 5) -> Path:
    """A real-bench config (``simulated: false``) on the served 2400 and 6485."""
    real = {
        "smu": {"driver": "keithley2400", "resource": served["smu"], "timeout_s": smu_timeout_s},
        "photometer": {"driver": "keithley6485", "resource": served["photometer"]},
    }
    return _sim_yaml(tmp_path, clock_speed=1.0, **real)


def _start_run(config: Path, out: Path, procedure: str = "jvl", params=SLOW_JVL, **popen):
    args = [sys.executable, "-m", "labrig", "run", procedure, "--config", str(config)]
    args += ["-o", str(out)]
    for name, value in params.items():
        args += ["--set", f"{name}={value}"]
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen(args, text=True, **popen)


def _finish(run: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    try:
        return run.communicate(timeout=timeout)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


@pytest.mark.parametrize(
    "sig",
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"],
)
def test_signal_to_a_run_on_served_instruments_leaves_the_2400_off(tmp_path, served, sig):
    """Every catchable termination signal (closing the terminal or losing the SSH
    session is SIGHUP) ramps down, turns the output off and records which signal."""
    out = tmp_path / "runs"
    run = _start_run(_real_bench(tmp_path, served), out)
    try:
        path = _wait_for_rows(out, run, rows=5)
        run.send_signal(sig)
    finally:
        stdout, stderr = _finish(run)
    assert run.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    # the simulated 2400 itself, asked by a third party over pyvisa
    assert ask(served["smu"], ":OUTP?") == "0"
    assert float(ask(served["smu"], ":SOUR:VOLT?")) == 0.0  # ramped down to 0 V
    data = read_run(path)
    assert (data.status, data.abort_reason) == ("aborted", f"interrupted by {sig.name}")
    assert not data.simulated  # a real-bench config: the run could not tell
    assert data.instruments["smu"].resource == served["smu"]
    current = data.columns["data"]["current"][0]
    assert len(current) >= 5 and current.max() > 0  # the output was on while it ran


def test_a_storm_of_signals_still_ends_130_with_the_output_off(tmp_path, served):
    """Signals keep coming through the shutdown and after it: the exit status stays 130
    (not -SIGTERM), the output is off and the file closed, one notice per phase."""
    out = tmp_path / "runs"
    run = _start_run(_real_bench(tmp_path, served), out)
    storm = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT] * 40
    try:
        path = _wait_for_rows(out, run, rows=5)
        for sig in storm:
            if run.poll() is not None:
                break
            run.send_signal(sig)
            time.sleep(0.01)
    finally:
        stdout, stderr = _finish(run)
    assert run.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    assert stderr.count("finishing safely, please wait") <= 1
    assert ask(served["smu"], ":OUTP?") == "0"
    data = read_run(path)
    assert (data.status, data.abort_reason) == ("aborted", "interrupted by SIGINT")
    assert data.end_time is not None


def test_safe_off_after_kill_9_turns_the_served_2400_off(tmp_path, served):
    """SIGKILL cannot be caught: the 2400 stays on, and `labrig safe-off` is the remedy."""
    out = tmp_path / "runs"
    config = _real_bench(tmp_path, served)
    run = _start_run(config, out)
    try:
        _wait_for_rows(out, run, rows=5)
        run.kill()
    finally:
        _finish(run)
    assert run.returncode == -signal.SIGKILL
    assert ask(served["smu"], ":OUTP?") == "1"  # left on: nothing could run
    left_at = float(ask(served["smu"], ":SOUR:VOLT?"))
    assert left_at > 0
    done = subprocess.run(
        [sys.executable, "-m", "labrig", "safe-off", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.splitlines() == [
        f"smu        off (confirmed)  keithley2400 @ {served['smu']}"
    ]
    assert ask(served["smu"], ":OUTP?") == "0"
    assert float(ask(served["smu"], ":SOUR:VOLT?")) == 0.0  # ramped from left_at


def test_a_dead_server_mid_sweep_is_noticed_at_once_and_reported_unconfirmed(tmp_path):
    """The instruments' process dies mid-run: the run notices within a few seconds (not
    after a stretched time-out), cannot confirm the output off, and says so first: file
    status failed with the reason, exit 1, one line telling the user to check."""
    out = tmp_path / "runs"
    with sim_serve(_sim_yaml(tmp_path, clock_speed=1.0)) as server:
        served = server.resources
        # a long time-out, so that "at once" (the peer's death seen on the socket) and
        # "after a time-out" stay seconds apart even on a loaded machine
        run = _start_run(_real_bench(tmp_path, served, smu_timeout_s=30), out)
        path = _wait_for_rows(out, run, rows=5)
        os.kill(server.pid, signal.SIGKILL)
        t_kill = time.time()
        stdout, stderr = _finish(run)
    assert run.returncode == 1, (stdout, stderr)
    data = read_run(path)
    # the file is closed (status written) within seconds of the death, on a busy machine
    assert datetime.fromisoformat(data.end_time).timestamp() - t_kill < 10.0
    assert "Traceback" not in stderr
    check = [line for line in stderr.splitlines() if "CHECK THE INSTRUMENTS" in line]
    assert len(check) == 1 and "labrig safe-off" in check[0]
    # the terminal names the role and what happened, not Python's class names
    assert f"(smu: {served['smu']}: output state unknown" in check[0]
    assert "Error" not in check[0] and "Error" not in stdout
    assert data.status == "failed"
    assert data.abort_reason.startswith(
        f"safe shutdown incomplete: smu: OutputStateUnknownError: {served['smu']}: output "
        "state unknown: the instrument could not be reached (the run had failed: "
        "InstrumentDisconnectedError"
    )
    assert [e.kind for e in data.log if e.level >= 40][:1] == ["shutdown"]


def test_a_mute_2400_is_never_a_finished_run(tmp_path):
    """The 2400 obeys but stops answering (a talker fault): shutdown cannot read the
    output state back, so the run is failed with 'output state unknown', exit 1."""
    data = yaml.safe_load(_sim_yaml(tmp_path, clock_speed=1.0).read_text())
    data["simulation"]["faults"] = {"smu": [{"kind": "timeout", "after": 60}]}
    serve = tmp_path / "serve-mute.yaml"
    serve.write_text(yaml.safe_dump(data))
    out = tmp_path / "runs"
    with sim_serve(serve) as server:
        run = _start_run(_real_bench(tmp_path, server.resources), out)
        stdout, stderr = _finish(run, timeout=60)
    assert run.returncode == 1, (stdout, stderr)
    assert stderr.count("CHECK THE INSTRUMENTS") == 1
    data = read_run(next(out.glob("*.h5")))
    assert data.status == "failed"
    assert data.abort_reason.startswith("safe shutdown incomplete: smu: OutputStateUnknownError")
    # the :READ? that timed out may still answer: shutdown could not get back in step
    assert "output state unknown: a late reply is still pending" in data.abort_reason
    assert "(the run had failed: InstrumentTimeoutError" in data.abort_reason


def test_a_closed_stderr_pipe_does_not_fail_the_run(tmp_path):
    """`labrig run ... 2>&1 | head -1`: the reader goes after one line, every later
    progress line and the result meet a closed pipe; the run still finishes, exit 0."""
    out = tmp_path / "runs"
    params = {"stop_voltage": 3.0, "step_voltage": 0.05, "spectra": "none"}
    run = _start_run(
        Path("sim"), out, params=params, stderr=subprocess.STDOUT, stdout=subprocess.PIPE
    )
    try:
        first = run.stdout.readline()
        run.stdout.close()  # what `head -1` does after its line
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert first.startswith("labrig: jvl:")
    assert run.returncode == 0
    assert read_run(next(out.glob("*.h5"))).status == "finished"


#: one direction of a PbS solar-cell scan at real instrument timing: 81 points of ~0.17 s
SLOW_SOLAR = {
    "start_voltage": -0.7,
    "stop_voltage": 0.1,
    "step_voltage": 0.01,
    "settle_delay": 0.1,
    "nplc": 1.0,
    "mpp_duration": 0.0,
}


def test_ctrl_c_inside_a_buffered_sweep_reaches_the_2400_within_a_second(tmp_path):
    """solar-jv runs each scan as the 2400's own list sweep.  Sent in chunks of <= 0.5 s
    of instrument time, a Ctrl-C reaches the instrument within about a second even over a
    TCP socket (where no device clear reaches it): the run confirms the output off and
    closes the file soon after the signal, keeping every chunk read before it."""
    data = yaml.safe_load((shipped_config_dir() / "solar_sim.yaml").read_text())
    data["simulation"]["clock_speed"] = 1.0
    serve = tmp_path / "serve-solar.yaml"
    serve.write_text(yaml.safe_dump(data))
    out = tmp_path / "runs"
    with sim_serve(serve, roles=("smu",)) as server:
        data["instruments"] = {
            "smu": {"driver": "keithley2400", "resource": server.resources["smu"], "timeout_s": 5}
        }
        config = tmp_path / "run-solar.yaml"
        config.write_text(yaml.safe_dump(data))
        run = _start_run(config, out, procedure="solar-jv", params=SLOW_SOLAR)
        path = _wait_for_rows(out, run, rows=6)
        run.send_signal(signal.SIGINT)
        t_signal = time.time()
        stdout, stderr = _finish(run)
        assert run.returncode == 130, (stdout, stderr)
        assert ask(server.resources["smu"], ":OUTP?") == "0"
    result = read_run(path)
    assert (result.status, result.abort_reason) == ("aborted", "interrupted by SIGINT")
    # the output was confirmed off (OUTPUT? read back) before the file was closed
    closed_after = datetime.fromisoformat(result.end_time).timestamp() - t_signal
    assert closed_after < 2.0, f"the file closed {closed_after:.2f} s after the signal"
    volts = result.columns["data"]["voltage"][0]
    assert 6 <= len(volts) < 81  # the chunks read before the stop, and no more
    # the reverse scan first (device voltage falling) in 10 mV steps, none missing
    assert np.diff(volts) == pytest.approx(np.full(len(volts) - 1, -0.01), abs=2e-3)
