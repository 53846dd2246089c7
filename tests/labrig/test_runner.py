"""The runner and the safe-shutdown matrix: every way a run ends leaves every source
output off, every link closed, and the file closed with its status and reason."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pymeasure.experiment import FloatParameter, IntegerParameter

from labrig.bench import Bench
from labrig.errors import (
    ConfigError,
    InstrumentTimeoutError,
    SafetyLimitError,
    UserInputError,
)
from labrig.procedure import Column, LabrigProcedure
from labrig.runner import run_procedure
from labrig.store import read_run

# the recording fakes live next to this file; importable in any pytest import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fakes import FakePicoammeter, FakeSMU, fake_config, make_opener  # noqa: E402


class SweepProcedure(LabrigProcedure):
    """A small voltage sweep; ``hook(step)`` lets a test act in the middle of it."""

    NAME = "sweep-test"
    SUPPORTS_RESUME = True
    COLUMNS = (Column("voltage_v", "V", "voltage"), Column("current_a", "A", "current"))
    SIGNAL, AXIS = "current_a", "voltage_v"
    REQUIRED_ROLES = ("smu",)
    OPTIONAL_ROLES = ("photometer", "spectrometer")

    stop_voltage = FloatParameter("Stop voltage", units="V", default=2.0, minimum=0, maximum=200)
    points = IntegerParameter("Points", default=5, minimum=2, maximum=10_000)

    hook = None
    shutdown_calls = 0

    def validate(self, config) -> None:
        if self.stop_voltage > config.limits.max_voltage_v:
            raise SafetyLimitError(
                f"stop_voltage {self.stop_voltage} V exceeds limits.max_voltage_v "
                f"({config.limits.max_voltage_v} V)"
            )

    def startup(self) -> None:
        smu = self.bench.smu
        self.bench.check_drive(volts=self.stop_voltage)
        smu.configure_source("voltage", self.bench.limits.default_compliance_a)
        smu.set_level(0.0)
        smu.enable_output()
        self.log_event("start", "output on")

    def execute(self) -> None:
        smu = self.bench.smu
        levels = np.linspace(0.0, self.stop_voltage, self.points)
        currents = []
        for step, volts in enumerate(levels):
            if self.should_stop():
                self.log_event("stop", "stop requested")
                return
            smu.set_level(float(volts))
            reading = smu.measure()
            currents.append(reading.current)
            self.emit_row({"voltage_v": reading.voltage, "current_a": reading.current})
            self.emit_progress(100.0 * (step + 1) / self.points)
            if self.hook is not None:
                self.hook(step)
        self.emit_analysis({"max_current": (max(currents), "A")})

    def shutdown(self) -> None:
        type(self).shutdown_calls += 1


def _sweep(hook=None, **params) -> SweepProcedure:
    proc = SweepProcedure()
    proc.set_parameters({"stop_voltage": 2.0, "points": 5, **params})
    proc.hook = hook
    return proc


@pytest.fixture
def rig():
    events: list = []
    smu, pam = FakeSMU(events), FakePicoammeter(events)
    opener = make_opener({"smu": smu, "photometer": pam})
    return events, smu, pam, functools.partial(Bench, opener=opener), opener


def _run(proc, rig, tmp_path: Path, **kw):
    _, _, _, factory, _ = rig
    return run_procedure(
        proc, fake_config(), output_dir=tmp_path, bench_factory=factory, progress=False, **kw
    )


def _assert_safe(rig, result, status: str, reason: str | None) -> None:
    events, smu, pam, _, _ = rig
    assert (result.status, result.reason) == (status, reason)
    assert not smu.output_enabled and smu.level == 0.0
    assert smu.closed and pam.closed
    assert ("smu.shutdown", True) in events or ("smu.shutdown", False) in events
    run = read_run(result.path)
    assert (run.status, run.abort_reason) == (status, reason)
    assert run.end_time is not None


@pytest.fixture(autouse=True)
def _signals_restored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    assert {s: signal.getsignal(s) for s in before} == before


# ------------------------------------------------------------------ the matrix
def test_normal_end(rig, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="labrig.procedures"):
        result = _run(_sweep(), rig, tmp_path, sample="dev 1", operator="ada")
    _assert_safe(rig, result, "finished", None)
    assert result.analysis == {"max_current": (pytest.approx(2e-3), "A")}
    run = read_run(result.path)
    assert result.path.name.startswith("dev_1_sweep-test_")
    np.testing.assert_allclose(run.columns["data"]["voltage_v"][0], [0, 0.5, 1, 1.5, 2])
    assert run.columns["data"]["current_a"][1] == "A"
    assert run.parameters["stop_voltage"] == (2.0, "V")
    assert run.instruments["smu"].model == "2400" and run.instruments["photometer"].model == "6485"
    assert run.analysis[None]["max_current"][1] == "A"
    assert run.operator == "ada" and not run.simulated
    assert "start" in [e.kind for e in run.log]  # the procedure's log event, in the file...
    assert "start: output on" in caplog.text  # ...and in python logging
    assert SweepProcedure.shutdown_calls > 0
    assert rig[0].index(("smu.shutdown", True)) < rig[0].index(("photometer.shutdown",))


# ------------------------------------------------------------------ records to subscribers
def test_subscribers_get_every_record_in_order(rig, tmp_path: Path) -> None:
    from labrig import records

    seen: list = []
    result = _run(_sweep(), rig, tmp_path, subscribers=[seen.append])
    kinds = [type(r).__name__ for r in seen]
    assert kinds[:3] == ["RunStarted", "BenchOpened", "Event"]
    assert kinds[-1] == "RunEnded" and kinds.count("Row") == 5 and kinds.count("Figures") == 1
    started, ended = seen[0], seen[-1]
    config = fake_config()
    assert (started.procedure, started.path, started.config_name) == (
        "sweep-test",
        result.path,
        config.name,
    )
    assert started.config_sha256 == hashlib.sha256(config.source_text.encode()).hexdigest()
    assert started.parameters["points"] == (5, "") and started.groups == ("data",)
    assert not started.resumed
    assert set(seen[1].identities) == {"smu", "photometer"}
    assert (ended.status, ended.reason, ended.unsafe) == ("finished", None, ())
    # the procedure's own progress (it emits some): 20 % per row
    assert [r.percent for r in seen if isinstance(r, records.Progress)] == [20, 40, 60, 80, 100]
    assert [r.values["voltage_v"] for r in seen if isinstance(r, records.Row)] == [
        0,
        0.5,
        1,
        1.5,
        2,
    ]


def test_progress_is_made_only_when_a_subscriber_takes_it(rig, tmp_path: Path, monkeypatch) -> None:
    """A step's Progress goes to whoever takes it; with nobody taking Progress (the
    file's writer does not, ``--no-progress`` subscribes no display) none is made."""
    from labrig import procedure, records

    made: list[float] = []

    class Counted(records.Progress):
        def __init__(self, percent: float) -> None:
            made.append(percent)
            super().__init__(percent)

    monkeypatch.setattr(procedure, "Progress", Counted)
    rows: list = []

    def rows_only(record) -> None:
        rows.append(record)

    rows_only.kinds = (records.Row,)  # type: ignore[attr-defined]
    _run(_sweep(), rig, tmp_path / "quiet", subscribers=[rows_only])
    assert made == [] and len(rows) == 5
    seen: list = []
    _run(_sweep(), rig, tmp_path / "shown", subscribers=[seen.append])
    assert made == [20, 40, 60, 80, 100]
    assert [r.percent for r in seen if isinstance(r, records.Progress)] == made


def test_a_failing_subscriber_is_isolated_and_the_run_goes_on(rig, tmp_path: Path, caplog) -> None:
    calls = {"n": 0}

    def flaky_display(record) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("display gone")

    with caplog.at_level(logging.ERROR, logger="labrig.dispatch"):
        result = _run(_sweep(), rig, tmp_path, subscribers=[flaky_display])
    _assert_safe(rig, result, "finished", None)
    assert calls["n"] == 4  # unsubscribed after its failure
    run = read_run(result.path)
    assert len(run.columns["data"]["voltage_v"][0]) == 5  # no row lost
    failed = [e for e in run.log if e.kind == "subscriber_failed"]
    assert len(failed) == 1 and "flaky_display" in failed[0].message
    assert "RuntimeError: display gone" in failed[0].message
    assert len(caplog.records) == 1  # logged once (with its traceback)


def test_a_subscriber_failing_at_the_end_cannot_stop_the_safe_shutdown(rig, tmp_path: Path) -> None:
    from labrig.records import RunEnded

    def breaks_at_the_end(record) -> None:
        if isinstance(record, RunEnded):
            raise RuntimeError("catalogue unreachable")

    result = _run(_sweep(), rig, tmp_path, subscribers=[breaks_at_the_end])
    _assert_safe(rig, result, "finished", None)


def test_a_critical_subscriber_failing_fails_the_run_with_outputs_off(rig, tmp_path: Path) -> None:
    from labrig.records import Row

    class Publisher:
        critical = True
        failure = None

        def __call__(self, record) -> None:
            if isinstance(record, Row) and record.values["voltage_v"] == 1.0:
                self.failure = "catalogue refused the run"
                raise ConnectionError("catalogue refused the run")

    result = _run(_sweep(), rig, tmp_path, subscribers=[Publisher()])
    _assert_safe(rig, result, "failed", "catalogue refused the run")
    assert len(read_run(result.path).columns["data"]["voltage_v"][0]) == 3


def test_a_stop_request_from_another_thread_aborts_the_run(rig, tmp_path: Path) -> None:
    from labrig.run_state import RunState, StopControl

    control = StopControl()
    result = _run(
        _sweep(lambda step: step == 1 and control.request_stop("stopped from the GUI")),
        rig,
        tmp_path,
        stop=control,
    )
    _assert_safe(rig, result, "aborted", "stopped from the GUI")
    assert len(read_run(result.path).columns["data"]["voltage_v"][0]) == 2
    assert control.history == [
        RunState.IDLE,
        RunState.RUNNING,
        RunState.STOPPING,
        RunState.CLOSING,
        RunState.ABORTED,
    ]


def test_exception(rig, tmp_path: Path) -> None:
    def boom(step: int) -> None:
        if step == 2:
            raise ValueError("boom at step 2")

    result = _run(_sweep(boom), rig, tmp_path)
    _assert_safe(rig, result, "failed", "ValueError: boom at step 2")
    run = read_run(result.path)
    assert len(run.columns["data"]["voltage_v"][0]) == 3
    assert any(e.kind == "error" and "boom" in e.message for e in run.log)


def test_instrument_timeout(rig, tmp_path: Path) -> None:
    _, smu, _, _, _ = rig

    def timeout(level: float) -> None:
        if level > 1.0:
            raise InstrumentTimeoutError("smu FAKE::smu: no reply within 5 s to :READ?")

    smu.on_measure = timeout
    result = _run(_sweep(), rig, tmp_path)
    _assert_safe(
        rig,
        result,
        "failed",
        "InstrumentTimeoutError: smu FAKE::smu: no reply within 5 s to :READ?",
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_aborts_and_ramps_down(rig, tmp_path: Path, sig) -> None:
    def press(step: int) -> None:
        if step == 1:
            os.kill(os.getpid(), sig)

    result = _run(_sweep(press), rig, tmp_path)
    _assert_safe(rig, result, "aborted", f"interrupted by {sig.name}")
    assert ("smu.off", True) in rig[0]  # ramped down, then off
    assert len(read_run(result.path).columns["data"]["voltage_v"][0]) == 2


def test_sigint_interrupts_a_blocked_instrument_call(rig, tmp_path: Path) -> None:
    _, smu, _, _, _ = rig

    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))

    def hang(level: float) -> None:
        if level > 1.0:  # Ctrl-C 0.3 s into a call that never answers (long time-out)
            timer.start()
            time.sleep(30)

    smu.on_measure = hang
    t0 = time.monotonic()
    try:
        result = _run(_sweep(), rig, tmp_path)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 10
    _assert_safe(rig, result, "aborted", "interrupted by SIGINT")


def test_second_ctrl_c_skips_the_ramp_but_turns_outputs_off(rig, tmp_path: Path) -> None:
    events, smu, _, _, _ = rig
    smu.step_s = 0.05

    def press(step: int) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    def press_again(ramp_step: int) -> None:
        if ramp_step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    smu.on_ramp_step = press_again
    result = _run(_sweep(press), rig, tmp_path)
    _assert_safe(rig, result, "aborted", "interrupted by SIGINT")
    assert ("smu.off", True) not in events
    assert events.index(("smu.shutdown", True)) < events.index(("smu.shutdown", False))
    assert ("smu.off", False) in events and ("photometer.shutdown",) in events


def test_failing_procedure_shutdown_still_turns_the_bench_off(rig, tmp_path: Path) -> None:
    class Broken(SweepProcedure):
        def shutdown(self) -> None:
            raise RuntimeError("procedure shutdown broke")

    proc = Broken()
    proc.set_parameters({"stop_voltage": 1.0, "points": 2})
    result = _run(proc, rig, tmp_path)
    _assert_safe(rig, result, "finished", None)
    assert any("procedure shutdown broke" in e.message for e in read_run(result.path).log)


def test_failing_instrument_shutdown_marks_the_run_failed(rig, tmp_path: Path) -> None:
    _, _, pam, _, _ = rig
    pam.shutdown_error = InstrumentTimeoutError("6485 mute")
    result = _run(_sweep(), rig, tmp_path)
    assert result.status == "failed"
    assert (
        result.reason == "safe shutdown incomplete: photometer: InstrumentTimeoutError: 6485 mute"
    )
    assert not rig[1].output_enabled and rig[1].closed


# ------------------------------------------------------------------ before anything opens
def test_validation_error_touches_nothing(rig, tmp_path: Path) -> None:
    opener = rig[4]
    with pytest.raises(SafetyLimitError, match="stop_voltage"):
        _run(_sweep(stop_voltage=50.0), rig, tmp_path)
    assert opener.opened == [] and list(tmp_path.iterdir()) == []


def test_unwritable_output_dir_touches_nothing(rig, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(UserInputError, match="not-a-dir"):
        _run(_sweep(), rig, blocker / "runs")
    assert rig[4].opened == []


def test_missing_required_role_touches_nothing(rig, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs the role"):
        run_procedure(
            _sweep(),
            fake_config(["photometer"]),
            output_dir=tmp_path,
            bench_factory=rig[3],
            progress=False,
        )
    assert rig[4].opened == [] and list(tmp_path.iterdir()) == []


def test_optional_roles_only_when_configured(rig, tmp_path: Path) -> None:
    result = run_procedure(
        _sweep(), fake_config(["smu"]), output_dir=tmp_path, bench_factory=rig[3], progress=False
    )
    assert result.status == "finished" and rig[4].opened == ["smu"]


# ------------------------------------------------------------------ progress, groups, resume
def test_plain_progress_lines_when_not_a_terminal(rig, tmp_path: Path, capsys) -> None:
    run_procedure(
        _sweep(points=20), fake_config(), output_dir=tmp_path, bench_factory=rig[3], progress=None
    )
    err = capsys.readouterr().err
    assert "sweep-test: 50% done" in err and "ETA" in err and "100% done" in err
    assert err.count("% done") <= 11  # a line per 10 %, not one per point


def test_progress_bar_when_asked(rig, tmp_path: Path, capsys) -> None:
    run_procedure(_sweep(), fake_config(), output_dir=tmp_path, bench_factory=rig[3], progress=True)
    err = capsys.readouterr().err
    assert "sweep-test: 100%|" in err and "% done" not in err


def test_data_groups_declared_by_the_procedure(rig, tmp_path: Path) -> None:
    class TwoChannels(SweepProcedure):
        GROUPS = ("channel_01", "channel_02")

        def execute(self) -> None:
            for channel in self.data_groups():
                self.emit_rows({"voltage_v": [1.0, 2.0], "current_a": [0.1, 0.2]}, group=channel)

    proc = TwoChannels()
    proc.set_parameters({"stop_voltage": 1.0, "points": 2})
    run = read_run(_run(proc, rig, tmp_path).path)
    assert run.groups == ["data", "channel_01", "channel_02"]
    np.testing.assert_array_equal(run.columns["channel_02"]["current_a"][0], [0.1, 0.2])


def test_resume_appends_to_the_aborted_run(rig, tmp_path: Path) -> None:
    def press(step: int) -> None:
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    first = _run(_sweep(press), rig, tmp_path)
    assert first.status == "aborted"
    events, smu, pam = [], None, None
    events = []
    smu, pam = FakeSMU(events), FakePicoammeter(events)
    factory = functools.partial(Bench, opener=make_opener({"smu": smu, "photometer": pam}))
    second = run_procedure(
        _sweep(),
        fake_config(),
        output_dir=tmp_path,
        bench_factory=factory,
        progress=False,
        resume=first.path,
    )
    assert second.path == first.path and second.status == "finished"
    run = read_run(first.path)
    assert len(run.columns["data"]["voltage_v"][0]) == 2 + 5
    assert [e.kind for e in run.log].count("resumed") == 1
    assert list(tmp_path.iterdir()) == [first.path]


# ------------------------------------------------------------------ the simulated 2400 over TCP
@pytest.mark.parametrize("ending", ["finished", "exception", "sigint", "timeout"])
def test_matrix_against_the_simulated_2400(tmp_path: Path, ending: str) -> None:
    """The real driver over pyvisa-py/TCP to the simulated 2400: after every ending the
    simulator itself reports the output off (``:OUTP?`` -> 0)."""
    from labrig.config import load_config

    cfg = load_config("sim")
    smu_cfg = cfg.instruments["smu"].model_copy(update={"timeout_s": 0.5})
    cfg = cfg.model_copy(update={"instruments": {"smu": smu_cfg}})
    seen = {}

    def act(step: int) -> None:
        sim = proc.bench.simulation.instruments["smu"]
        seen["sim"], seen["lab"] = sim, proc.bench.simulation
        seen.setdefault("on_during_run", sim.handle(":OUTP?"))
        if step == 2:
            if ending == "exception":
                raise ValueError("boom")
            if ending == "sigint":
                os.kill(os.getpid(), signal.SIGINT)
            if ending == "timeout":
                sim.inject_fault("timeout")

    proc = _sweep(act, stop_voltage=3.0, points=6)
    result = run_procedure(proc, cfg, output_dir=tmp_path, progress=False)
    expected = {
        "finished": ("finished", None),
        "exception": ("failed", "ValueError: boom"),
        "sigint": ("aborted", "interrupted by SIGINT"),
        "timeout": ("failed", None),
    }[ending]
    assert result.status == expected[0]
    if ending != "timeout":
        assert result.reason == expected[1]
    else:
        # a mute 2400 obeys OUTPUT 0 but cannot say so: that outranks the time-out
        assert result.reason.startswith(
            "safe shutdown incomplete: smu: OutputStateUnknownError: "
        ) and result.reason.endswith("no reply within 0.5 s)")
        assert "(the run had failed: InstrumentTimeoutError: " in result.reason
    assert seen["on_during_run"] == "1"
    assert seen["sim"].handle(":OUTP?") == "0"
    assert not seen["lab"].physics.operating_point.output_on
    assert not seen["lab"].servers  # the simulated lab was stopped
    run = read_run(result.path)
    assert run.status == expected[0] and run.simulated
    assert run.instruments["smu"].resource.startswith("TCPIP::127.0.0.1::")


def test_resume_refuses_a_finished_or_different_run(rig, tmp_path: Path) -> None:
    done = _run(_sweep(), rig, tmp_path)
    with pytest.raises(UserInputError, match="already finished"):
        _run(_sweep(), rig, tmp_path, resume=done.path)

    class Other(SweepProcedure):
        NAME = "other-test"

    with pytest.raises(UserInputError, match="'sweep-test' run, not 'other-test'"):
        _run(Other(), rig, tmp_path, resume=done.path)
    assert read_run(done.path).status == "finished"


# ------------------------------------------------------------------ real signals from outside
RUNNER = Path(__file__).with_name("runner_proc.py")


def _wait_for(proc, prefix: str, lines: list[str]) -> None:
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(prefix):
            return
    raise AssertionError(f"{prefix!r} never came; output: {lines}")


@pytest.mark.parametrize("second_ctrl_c", [False, True])
def test_signals_from_another_process(tmp_path: Path, second_ctrl_c: bool) -> None:
    """A user's Ctrl-C (and a second one during the ramp) delivered from outside."""
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        _wait_for(proc, "step 3", lines)
        proc.send_signal(signal.SIGINT)
        _wait_for(proc, "ramp 1", lines)
        if second_ctrl_c:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines += out.splitlines()
    assert proc.returncode == 0, err
    result = next(line for line in lines if line.startswith("result "))
    assert result.startswith("result aborted interrupted by SIGINT ")
    events = next(line for line in lines if line.startswith("events "))
    assert "output_enabled False closed True" in lines
    if second_ctrl_c:
        assert "('smu.shutdown', False)" in events and "('smu.off', True)" not in events
        assert "skipping the ramp" in err
        assert sum(line.startswith("ramp ") for line in lines) < 20
    else:
        assert "('smu.off', True)" in events and "('smu.shutdown', False)" not in events
    run = read_run(Path(result.split()[-1]))
    assert (run.status, run.abort_reason) == ("aborted", "interrupted by SIGINT")


def test_resume_is_refused_by_a_procedure_that_cannot(rig, tmp_path: Path) -> None:
    class OneShot(SweepProcedure):
        SUPPORTS_RESUME = False

    first = _run(_sweep(), rig, tmp_path)
    with pytest.raises(UserInputError, match="cannot resume"):
        run_procedure(
            OneShot(), fake_config(), output_dir=tmp_path, progress=False, resume=first.path
        )
