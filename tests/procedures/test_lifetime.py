"""The lifetime procedure end to end: runner -> bench -> rig driver -> pyserial socket:// ->
simulated rig on an accelerated clock -> HDF5 store, checked against the simulated
devices' ground truth."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from labrig.analysis import lifetime as lt
from labrig.bench import Bench
from labrig.config import parse_config, shipped_config_dir
from labrig.errors import ParameterError, SafetyLimitError
from labrig.procedures.lifetime import LifetimeProcedure, parse_channels, parse_levels
from labrig.runner import read_context, run_procedure
from labrig.store import read_run

AREA = 0.04


def _config(channels: int = 8, faults: list[dict] | None = None, **lifetime):
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["lifetime"].update(channels=channels, **lifetime)
    if faults:
        data["simulation"]["faults"] = {"lifetime": faults}
    return parse_config(data)


class _Capture(Bench):
    """A Bench that keeps its simulated lab so the test can read the ground truth."""

    labs: list = []

    def open(self) -> None:
        super().open()
        _Capture.labs.append(self.simulation)


def _run(tmp_path: Path, config, **params):
    proc = LifetimeProcedure()
    params.setdefault("ramp_dwell", 0.5)
    proc.set_parameters(params)
    _Capture.labs = []
    result = run_procedure(
        proc, config, output_dir=tmp_path, progress=False, bench_factory=_Capture
    )
    rig = _Capture.labs[0].instruments["lifetime"]
    return result, read_run(result.path), rig


def _truth_t50(rig, data, group: str) -> float:
    n = int(group.split("_")[1])
    j = float(data.columns[group]["current_set"][0][0]) / AREA
    return rig.device(n).t_fraction_s(0.5, j)


# --------------------------------------------------------------------- done-when tests
def test_eight_channels_reach_t50_within_2_percent_of_truth(tmp_path):
    result, data, rig = _run(tmp_path, _config(8), drive="luminance", levels="1000")
    assert result.status == "finished", result.reason
    groups = [f"channel_{n:02d}" for n in range(1, 9)]
    assert [g for g in data.groups if g.startswith("channel_")] == groups
    truths = []
    for g in groups:
        a = data.analysis[g]
        truth = _truth_t50(rig, data, g)
        truths.append(truth)
        assert a["end_reason"][0].startswith("T50 reached"), a["end_reason"]
        assert a["end_kind"][0] == "T50 reached"
        assert a["T50"][0] * 3600 == pytest.approx(truth, rel=0.02), g
        assert a["initial_luminance"][0] == pytest.approx(1000, rel=0.02)
        cols = data.columns[g]
        t = cols["time"][0]
        assert t[0] == 0.0 and np.all(np.diff(t) > 0)
        assert cols["relative_luminance"][0][0] == 1.0
        assert cols["time"][1] == "s" and cols["luminance"][1] == "cd/m^2"
        # dense start resolves T95, and no gap wider than the maximum interval
        assert np.sum(t < a["T95"][0] * 3600) >= 10
        assert np.max(np.diff(t)) <= 600 + 1e-6
    # the unit-to-unit spread is real: the channels' T50 differ
    assert np.std(truths) / np.mean(truths) > 0.01
    ends = [e for e in data.log if e.kind == "channel_end"]
    assert len(ends) == 8
    # all eight share one L0: no exponent, and one line in the log and the file says why
    note = result.analysis["acceleration_exponent_note"][0]
    assert note.startswith("acceleration exponent not fitted: the 8 channel(s) with a T50 share")
    assert [e.message for e in data.log if e.kind == "scaling"] == [note]
    assert "acceleration_exponent" not in result.analysis


def test_fitted_acceleration_exponent_from_three_l0_within_0_1_of_truth(tmp_path):
    levels = "300,300,1000,1000,3000,3000"
    result, data, rig = _run(
        tmp_path,
        _config(6),
        drive="luminance",
        levels=levels,
        max_interval=3600.0,
        points_per_decade=12,
    )
    assert result.status == "finished", result.reason
    l0, truth = [], []
    for n in range(1, 7):
        g = f"channel_{n:02d}"
        l0.append(data.analysis[g]["initial_luminance"][0])
        truth.append(_truth_t50(rig, data, g))
    # the model's exponent in luminance: the log-log slope of the true T50s against L0
    slope, intercept = np.polyfit(np.log(l0), np.log(truth), 1)
    n_true = -slope
    n_fit = result.analysis["acceleration_exponent"][0]
    assert n_fit == pytest.approx(n_true, abs=0.1)
    assert result.analysis["acceleration_exponent_err"][0] > 0
    # the 95 % interval includes the channels' scatter and holds the model's n
    low = result.analysis["acceleration_exponent_low"][0]
    high = result.analysis["acceleration_exponent_high"][0]
    assert low <= n_true <= high
    assert result.analysis["scaling_law_describes_data"][0] in ("yes", "no")
    assert [e.kind for e in data.log].count("scaling") == 1
    # T50 at 1000 cd/m² from the scaling fit: on the truth's power-law line (EQE roll-off
    # bends the true curve, so the individual channels scatter about that line)
    t1000 = result.analysis["T50_at_1000_cd_m2"][0] * 3600
    assert t1000 == pytest.approx(math.exp(intercept + slope * math.log(1000)), rel=0.05)
    assert "T50_at_100_cd_m2" in result.analysis
    assert result.analysis["T50_at_100_cd_m2_extrapolated"][0]  # 300 cd/m² is the lowest L0
    assert not result.analysis["T50_at_1000_cd_m2_extrapolated"][0]
    t100 = [result.analysis[f"T50_at_100_cd_m2{k}"][0] for k in ("_low", "", "_high")]
    assert t100[0] < t100[1] < t100[2]


def test_early_prediction_from_first_third_and_early_stop(tmp_path):
    result, data, rig = _run(
        tmp_path, _config(3), drive="luminance", levels="1000", early_stop_width=0.05
    )
    assert result.status == "finished", result.reason
    for n in range(1, 4):
        g = f"channel_{n:02d}"
        truth = _truth_t50(rig, data, g)
        cols = data.columns[g]
        t, lum = cols["time"][0], cols["luminance"][0]
        first_third = t <= truth / 3
        pred = lt.predict_t_fraction(t[first_third], lum[first_third], 0.5)
        assert pred.value_s == pytest.approx(truth, rel=0.15), g
        assert pred.low_s <= truth <= pred.high_s, g
        # the procedure stopped this channel early, before T50, with a prediction close to
        # the truth (the truth is for a fresh device; the ~minute of drive before t = 0
        # lengthens the remaining T50 by ~0.5 %, which this tight band can resolve)
        a = data.analysis[g]
        assert a["end_reason"][0].startswith("early stop"), a["end_reason"]
        assert a["end_kind"][0] == "early stop (T50 predicted)"
        assert t[-1] < truth
        assert a["T50_best"][0] * 3600 == pytest.approx(truth, rel=0.02)
        width = (a["T50_best_high"][0] - a["T50_best_low"][0]) / a["T50_best"][0]
        assert 0 < width < 0.05
    assert any(e.kind == "prediction" for e in data.log)


def test_channel_ended_before_there_is_data_to_fit_says_so(tmp_path):
    # the rig's 5th reading opens: dark, switch-on, then three points of data
    faults = [{"kind": "open", "after": 4, "channel": 1}]
    result, data, _ = _run(tmp_path, _config(1, faults), drive="current density", levels="5")
    assert result.status == "finished", result.reason
    a = data.analysis["channel_01"]
    note = a["T50_best_note"][0]
    assert note == "no T50 fit: T50 prediction needs at least 4 points from the reference on, has 3"
    assert "T50_best" not in a
    assert [e.message for e in data.log if e.kind == "prediction"] == [f"channel_01: {note}"]


def test_faulted_channel_ends_alone_with_its_reason(tmp_path):
    faults = [{"kind": "open", "after": 31, "channel": 2}]
    result, data, _ = _run(
        tmp_path, _config(3, faults), drive="current density", levels="5", stop_at="T80"
    )
    assert result.status == "finished", result.reason
    ends = {e.message.split(" ended: ")[0]: e.message for e in data.log if e.kind == "channel_end"}
    assert "open circuit" in ends["channel_02"]
    assert "T80 reached" in ends["channel_01"] and "T80 reached" in ends["channel_03"]
    assert data.columns["channel_02"]["status"][0][-1] == "OPEN"
    # 30 readings after the dark and switch-on ones: the 33rd CH2 reading found it open
    assert len(data.columns["channel_02"]["time"][0]) == 30
    assert len(data.columns["channel_01"]["time"][0]) > 30
    assert data.analysis["channel_02"]["end_reason"][0].startswith("open circuit")
    assert data.analysis["channel_02"]["end_kind"][0] == "open circuit"


def test_link_drop_is_survived_and_logged(tmp_path):
    faults = [{"kind": "disconnect", "after": 60}]
    result, data, _ = _run(
        tmp_path, _config(2, faults), drive="current density", levels="5", stop_at="T90"
    )
    assert result.status == "finished", result.reason
    kinds = [e.kind for e in data.log]
    assert "link_lost" in kinds and "link_restored" in kinds
    for g in ("channel_01", "channel_02"):
        assert np.all(np.diff(data.columns[g]["time"][0]) > 0)
        assert data.analysis[g]["end_reason"][0].startswith("T90 reached")


def test_unreachable_l0_ends_that_channel_only(tmp_path):
    result, data, _ = _run(
        tmp_path, _config(2), drive="luminance", levels="1000,1e7", stop_at="T95"
    )
    assert result.status == "finished", result.reason
    assert "not reachable" in data.analysis["channel_02"]["end_reason"][0]
    assert data.analysis["channel_02"]["end_kind"][0] == "L0 not reachable"
    assert data.analysis["channel_01"]["end_reason"][0].startswith("T95 reached")


# ------------------------------------------------------------------------- bad input
def test_validate_rejects_bad_input_before_anything_runs():
    config = _config(4)
    proc = LifetimeProcedure()
    proc.set_parameters({"drive": "current", "levels": "200", "channels": "1-2"})
    with pytest.raises(SafetyLimitError, match="limits.max_current_a"):
        proc.validate(config)
    proc.set_parameters({"drive": "current", "levels": "1", "channels": "3-6"})
    with pytest.raises(ParameterError, match="channel 6 does not exist"):
        proc.validate(config)
    proc.set_parameters({"channels": "1-2", "levels": "1,2,3"})
    with pytest.raises(ParameterError, match="one per channel"):
        proc.validate(config)
    proc.set_parameters({"levels": "1", "first_interval": 100.0, "max_interval": 10.0})
    with pytest.raises(ParameterError, match="first_interval"):
        proc.validate(config)


def test_resume_refuses_finished_runs_and_other_procedures(tmp_path):
    result, _, _ = _run(tmp_path, _config(1), drive="current density", levels="5", stop_at="T95")
    proc = LifetimeProcedure()
    proc.set_parameters({"drive": "current density", "levels": "5"})
    proc.context = read_context(proc, result.path)
    with pytest.raises(ParameterError, match="finished; nothing to resume"):
        proc.validate(_config(1))


@pytest.mark.parametrize(
    "text, expected",
    [("all", [1, 2, 3, 4]), ("1-3", [1, 2, 3]), ("4,1-2", [1, 2, 4]), (" 2 ", [2])],
)
def test_parse_channels(text, expected):
    assert parse_channels(text, 4) == expected


@pytest.mark.parametrize("text", ["0", "3-1", "a", "1,,x", "5"])
def test_parse_channels_rejects(text):
    with pytest.raises(ParameterError, match="channel"):
        parse_channels(text, 4)


def test_parse_levels():
    assert parse_levels("5", 3) == [5.0, 5.0, 5.0]
    assert parse_levels("1,2", 2) == [1.0, 2.0]
    with pytest.raises(ParameterError, match="positive"):
        parse_levels("-1", 1)
    assert math.isclose(parse_levels("1e3", 1)[0], 1000.0)


# ------------------------------------------------------------------ crash and resume
RIG_SCRIPT = """
import sys, time
from labrig.clock import Clock
from labrig.config import load_preset
from labrig.devices import DeviceConfig
from labrig.simulators.lifetime_rig import RigServer, SimulatedLifetimeRig


class FreeRunningClock(Clock):
    # a rig's own clock runs whether or not anyone talks to it; accelerated here, at a
    # rate the test may change (a line "speed X" on stdin) without a jump in rig time
    def __init__(self, speed):
        self.speed, self.t0, self.m0 = speed, 1e9, time.monotonic()

    def time(self):
        return self.t0 + self.speed * (time.monotonic() - self.m0)

    def set_speed(self, speed):
        self.t0, self.m0, self.speed = self.time(), time.monotonic(), speed

    def sleep(self, seconds):
        time.sleep(max(seconds, 0) / self.speed)


dev = DeviceConfig.model_validate(load_preset("red_cspbi3"))
rig = SimulatedLifetimeRig(dev.model, dev.active_area_cm2, channels=2,
                           clock=FreeRunningClock(float(sys.argv[1])), seed=7)
server = RigServer(rig).start()
print(server.url, flush=True)
for line in sys.stdin:
    if line.startswith("speed "):
        rig.clock.set_speed(float(line.split()[1]))
server.stop()
"""

RUN_SCRIPT = """
import sys
from pathlib import Path
from labrig.config import load_config
from labrig.procedures.lifetime import LifetimeProcedure
from labrig.runner import run_procedure

proc = LifetimeProcedure()
proc.set_parameters({"drive": "current density", "levels": "3", "settle_time": 0.01,
                     "first_interval": 0.05, "max_interval": 0.2, "points_per_decade": 10})
resume = Path(sys.argv[3]) if len(sys.argv) > 3 else None
result = run_procedure(proc, load_config(sys.argv[1]), output_dir=Path(sys.argv[2]),
                       progress=False, resume=resume)
print(result.status, result.path, result.reason)
"""

RIG_SPEED = 3600.0


def _rig_config(tmp_path: Path, url: str) -> Path:
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {
        "lifetime": {"driver": "lifetime_rig", "resource": url, "channels": 2, "timeout_s": 5}
    }
    data.pop("simulation", None)
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_kill_9_then_resume_gives_one_continuous_dataset_per_channel(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "rig.py").write_text(RIG_SCRIPT)
    (tmp_path / "run.py").write_text(RUN_SCRIPT)
    out = tmp_path / "runs"
    out.mkdir()
    rig_proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "rig.py"), str(RIG_SPEED)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = rig_proc.stdout.readline().strip()
        assert url.startswith("socket://")
        config = _rig_config(tmp_path, url)
        run = subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(config), str(out)])
        deadline = time.monotonic() + 60
        rows = 0
        while time.monotonic() < deadline and rows < 12:
            time.sleep(0.2)
            files = list(out.glob("*.h5"))
            if files:
                try:
                    data = read_run(files[0])
                    rows = min(
                        len(data.columns[g]["time"][0]) for g in ("channel_01", "channel_02")
                    )
                except Exception:  # noqa: BLE001 - the file may be mid-creation
                    rows = 0
        assert rows >= 12, "the run did not get going"
        # While the PC is down the rig keeps ageing the devices, but the test slows its
        # clock so that how long Python takes to restart on a loaded machine does not
        # decide how much of the curve is left to measure after the resume.
        _rig_speed(rig_proc, RIG_SPEED / 100)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        path = files[0]
        before = read_run(path)
        assert before.status == "running"  # a crashed run
        n_before = {g: len(before.columns[g]["time"][0]) for g in ("channel_01", "channel_02")}
        age_before = {g: before.analysis[g]["age_at_t0"][0] for g in n_before}

        resumed = subprocess.Popen(
            [sys.executable, str(tmp_path / "run.py"), str(config), str(out), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and resumed.poll() is None:
            time.sleep(0.2)
            try:
                now = read_run(path)
                if all(len(now.columns[g]["time"][0]) > n_before[g] for g in n_before):
                    break
            except Exception:  # noqa: BLE001 - the resumed writer may hold it mid-flush
                pass
        _rig_speed(rig_proc, RIG_SPEED)
        stdout, stderr = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, stderr[-2000:]
        assert stdout.startswith("finished"), stdout + stderr[-2000:]
    finally:
        rig_proc.stdin.close()
        rig_proc.wait(timeout=10)

    data = read_run(path)
    assert data.status == "finished"
    assert list(out.glob("*.h5")) == [path]  # the same file, no second one
    assert any(e.kind == "resumed" for e in data.log)
    truth_rig = _same_rig_as_the_subprocess()
    for n, g in ((1, "channel_01"), (2, "channel_02")):
        cols = {k: v[0] for k, v in data.columns[g].items()}
        t, rel = cols["time"], cols["relative_luminance"]
        assert len(t) > n_before[g] + 5
        assert np.all(np.diff(t) > 0)  # one time axis, no restart, no duplicates
        assert np.ptp(cols["rig_time"] - t) < 1e-6  # the same t = 0 before and after
        assert np.all(np.diff(rel) < 2e-3)  # the device kept ageing through the crash
        assert rel[n_before[g]] < rel[n_before[g] - 1]
        # t = 0 comes after the settle: the device had aged by then, on the rig's clock
        # (>= settle_time of real time at the rig's speed), and the resume kept that age
        age = data.analysis[g]["age_at_t0"][0]
        assert age == age_before[g] >= 0.01 * RIG_SPEED
        j = float(cols["current_set"][0]) / AREA
        truth = truth_rig.device(n).t_fraction_s(0.5, j, age_s=age)
        # measured within 0.13 % quiet and at load 7 (the fresh device's T50 is 0.4-0.7 %
        # shorter at this rig's 3600x clock, 2.3 % under heavy load: why this test flaked)
        assert data.analysis[g]["T50"][0] * 3600 == pytest.approx(truth, rel=0.01)
        assert any(e.kind == "channel_resumed" and g in e.message for e in data.log)


def _rig_speed(rig_proc, speed: float) -> None:
    rig_proc.stdin.write(f"speed {speed}\n")
    rig_proc.stdin.flush()


def _same_rig_as_the_subprocess():
    from labrig.config import load_preset
    from labrig.devices import DeviceConfig
    from labrig.simulators.lifetime_rig import SimulatedLifetimeRig

    dev = DeviceConfig.model_validate(load_preset("red_cspbi3"))
    return SimulatedLifetimeRig(dev.model, dev.active_area_cm2, channels=2, seed=7)


def test_resume_continues_with_the_parameters_the_run_started_with(tmp_path):
    config = _config(1, [{"kind": "disconnect", "after": 0}])
    proc = LifetimeProcedure()
    proc.set_parameters(
        {"drive": "current density", "levels": "7", "stop_at": "T90", "reconnect_timeout": 0.0}
    )
    result = run_procedure(proc, config, output_dir=tmp_path, progress=False)
    assert result.status == "failed"  # the rig link was gone from the start
    again = LifetimeProcedure()  # defaults, as `labrig run lifetime --resume FILE` makes it
    again.context = read_context(again, result.path)
    again.validate(_config(1))
    assert (again.drive, again.levels, again.stop_at) == ("current density", "7", "T90")


def test_cli_resume_continues_a_failed_run(tmp_path):
    from click.testing import CliRunner

    from labrig.cli import main

    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["lifetime"]["channels"] = 1
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(data))
    data["simulation"]["faults"] = {"lifetime": [{"kind": "disconnect", "after": 0}]}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    runs = tmp_path / "runs"
    sets = ["--set", "drive=current density", "--set", "levels=7", "--set", "stop_at=T90"]
    sets += ["--set", "reconnect_timeout=0"]
    first = CliRunner().invoke(
        main, ["run", "lifetime", "--config", str(broken), "-o", str(runs), *sets]
    )
    assert first.exit_code == 1, first.output
    (path,) = runs.glob("*.h5")
    second = CliRunner().invoke(
        main, ["run", "lifetime", "--config", str(good), "--resume", str(path)]
    )
    assert second.exit_code == 0, second.output
    data = read_run(path)
    assert data.status == "finished"
    assert data.analysis["channel_01"]["end_reason"][0].startswith("T90 reached")


def test_smu_photometer_backend_runs_one_channel(tmp_path):
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["lifetime"] = {"driver": "smu_photometer", "simulated": True}
    config = parse_config(data)
    proc = LifetimeProcedure()
    proc.set_parameters({"drive": "current density", "levels": "5", "stop_at": "T95"})
    result = run_procedure(proc, config, output_dir=tmp_path, progress=False)
    assert result.status == "finished", result.reason
    run = read_run(result.path)
    assert [g for g in run.groups if g.startswith("channel")] == ["channel_01"]
    assert run.analysis["channel_01"]["end_reason"][0].startswith("T95 reached")
    cols = run.columns["channel_01"]
    assert cols["current"][0][-1] == pytest.approx(5e-3 * AREA, rel=1e-3)
    assert set(run.instruments) >= {"smu", "photometer", "lifetime"}


def _t50_after_settle(device, j_a_cm2: float, settle_s: float) -> float:
    """Truth for an uninterrupted run: L0 is taken after ``settle_s`` at J, so T50 is when
    the device falls to half its efficiency *then*."""
    from scipy.optimize import brentq

    def rel(t: float) -> float:
        return device.relative_efficiency_after(t, j_a_cm2)

    hi = 10 * device.t_fraction_s(0.5, j_a_cm2)
    return brentq(lambda t: rel(settle_s + t) - 0.5 * rel(settle_s), 0.0, hi, xtol=1e-3)


#: a resumed run's T50 against the uninterrupted truth: the data's own T50 (interpolated
#: between samples up to 10 min apart) and the stress lost while the rig was down
RESUMED_T50_TOLERANCE = 0.01


def test_resumed_simulated_run_continues_the_devices_ageing(tmp_path):
    """A simulated run that died part-way and is resumed on a fresh simulated rig carries
    on from the ageing its file records: no jump of L/L0, T50 as if uninterrupted."""
    settle = 30.0
    faults = [{"kind": "disconnect", "after": 56}]  # rig commands: both channels read in one
    params = {"drive": "current density", "levels": "10", "settle_time": settle}
    result, data, _ = _run(tmp_path, _config(2, faults), reconnect_timeout=1.0, **params)
    assert result.status == "failed" and "link lost" in result.reason
    n_before = {g: len(data.columns[g]["time"][0]) for g in ("channel_01", "channel_02")}
    rel_before = {g: data.columns[g]["relative_luminance"][0][-1] for g in n_before}
    assert all(0.8 < rel < 0.95 for rel in rel_before.values())  # well into the decay

    proc = LifetimeProcedure()
    _Capture.labs = []
    resumed = run_procedure(
        proc,
        _config(2),
        output_dir=tmp_path,
        progress=False,
        resume=result.path,
        bench_factory=_Capture,
    )
    assert resumed.status == "finished", resumed.reason
    rig = _Capture.labs[0].instruments["lifetime"]
    after = read_run(result.path)
    assert not any(e.kind == "resume_jump" for e in after.log)
    for n, g in ((1, "channel_01"), (2, "channel_02")):
        cols = after.columns[g]
        rel = cols["relative_luminance"][0]
        k = n_before[g]
        # the first point after the resume continues the decay (it was 0.98 from a
        # pristine simulated device)
        assert rel[k - 1] - 0.02 < rel[k] < rel[k - 1], (rel[k - 1], rel[k])
        j = float(cols["current_set"][0][0]) / AREA
        truth = _t50_after_settle(rig.device(n), j, settle)
        assert after.analysis[g]["end_reason"][0].startswith("T50 reached")
        assert after.analysis[g]["T50"][0] * 3600 == pytest.approx(truth, rel=RESUMED_T50_TOLERANCE)


def test_an_upward_jump_of_l_at_the_resume_point_is_a_warning_in_the_file(tmp_path):
    """A device does not un-age: a rig that lost its state (here a simulated one told
    nothing of the recorded stress, like a swapped pixel) is flagged in the file."""
    faults = [{"kind": "disconnect", "after": 50}]
    params = {"drive": "current density", "levels": "10", "stop_at": "T80"}
    result, data, _ = _run(tmp_path, _config(1, faults), reconnect_timeout=1.0, **params)
    assert result.status == "failed"
    last = data.columns["channel_01"]["relative_luminance"][0][-1]
    assert last < 0.95

    class Forgetful(Bench):
        def open(self) -> None:
            self.resumed = None  # the simulated rig starts a pristine device
            super().open()

    proc = LifetimeProcedure()
    resumed = run_procedure(
        proc,
        _config(1),
        output_dir=tmp_path,
        progress=False,
        resume=result.path,
        bench_factory=Forgetful,
    )
    assert resumed.status == "finished", resumed.reason
    jumps = [e for e in read_run(result.path).log if e.kind == "resume_jump"]
    assert len(jumps) == 1
    assert jumps[0].level == logging.WARNING
    assert jumps[0].message.startswith(f"channel_01: L/L0 rose from {last:.3f} to ")


def test_rig_gone_for_good_fails_the_run_resumably(tmp_path):
    faults = [{"kind": "disconnect", "after": 40}]
    result, data, rig = _run(
        tmp_path,
        _config(2, faults),
        drive="current density",
        levels="5",
        stop_at="T90",
        reconnect_timeout=10.0,
        link_loss="off",
        link_watchdog=120.0,
    )
    assert result.status == "failed"
    assert "link lost" in result.reason
    assert rig.watchdog_s == 120.0  # link_loss=off: the rig switches itself off
    assert any(e.kind == "link_lost" for e in data.log)
    n_before = len(data.columns["channel_01"]["time"][0])
    assert n_before > 5

    proc = LifetimeProcedure()
    resumed = run_procedure(
        proc, _config(2), output_dir=tmp_path, progress=False, resume=result.path
    )
    assert resumed.status == "finished", resumed.reason
    after = read_run(result.path)
    t = after.columns["channel_01"]["time"][0]
    assert len(t) > n_before and np.all(np.diff(t) > 0)
    # a fresh simulated rig restarts its clock: detected, logged, the axis continues
    assert any(e.kind == "rig_time_reset" for e in after.log)
    assert after.analysis["channel_01"]["end_reason"][0].startswith("T90 reached")


def test_maximum_duration_ends_every_channel(tmp_path):
    result, data, _ = _run(
        tmp_path, _config(2), drive="current density", levels="5", max_duration=0.5
    )
    assert result.status == "finished", result.reason
    for g in ("channel_01", "channel_02"):
        assert data.analysis[g]["end_reason"][0] == "maximum duration 0.5 h reached"
        assert data.analysis[g]["end_kind"][0] == "maximum duration"
        t = data.columns[g]["time"][0]
        assert 1800 <= t[-1] < 1800 + 600
        # not reached: T50 is extrapolated, with an open or finite band above the data
        flag = data.analysis[g]["T50_extrapolated"][0]
        assert isinstance(flag, (bool, np.bool_)) and flag
        assert data.analysis[g]["T50_best_low"][0] * 3600 >= t[-1]
    from labrig.headline import headline

    lines = headline(result.analysis, result.path)
    assert lines[0] == "  channels: 2 (2 maximum duration)"
    assert lines[1].startswith("  T50: median ") and lines[1].endswith(
        " h (2 channels; 2 extrapolated)"
    )
    assert lines[-1] == f"  all figures per channel: labrig inspect {result.path}"
    assert len(lines) < 10


def test_voltage_rise_and_fault_statuses_end_a_channel():
    from labrig.interfaces import ChannelReading
    from labrig.procedures.lifetime import _Channel

    proc = LifetimeProcedure()
    proc.set_parameters({"voltage_rise_limit": 0.5})
    proc._fraction = 0.5
    ch = _Channel(1, "channel_01", 5.0, l0=100.0, v0=4.0, lums=[100.0, 90.0])
    ok = ChannelReading(1, 4.4, 1e-4, 1e-7, 10.0, "OK")
    assert proc._stop_reason(ch, ok, 10.0) is None
    risen = ChannelReading(1, 4.6, 1e-4, 1e-7, 10.0, "OK")
    assert proc._stop_reason(ch, risen, 10.0) == (
        "voltage rose by 0.6 V (limit 0.5 V)",
        "voltage rise",
    )
    for status, words in (("SHORT", "short circuit"), ("OPEN", "open circuit")):
        bad = ChannelReading(1, 0.0, 1e-4, 1e-12, 10.0, status)
        reason, kind = proc._stop_reason(ch, bad, 10.0)
        assert words in reason and kind == words


def test_memory_per_channel_stays_bounded():
    from labrig.procedures.lifetime import MAX_POINTS_IN_MEMORY, _Channel

    ch = _Channel(1, "channel_01", 1.0)
    for k in range(20 * MAX_POINTS_IN_MEMORY):
        ch.keep(float(k), 1.0)
    assert len(ch.times) <= MAX_POINTS_IN_MEMORY
    head = MAX_POINTS_IN_MEMORY // 4
    assert ch.times[:head] == [float(k) for k in range(head)]  # the dense start is whole
    assert ch.times[-1] == 20 * MAX_POINTS_IN_MEMORY - 1
    assert np.all(np.diff(ch.times) > 0)
