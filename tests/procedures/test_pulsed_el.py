"""PulsedELProcedure: validation before any output, and the full chain on the simulated
bench (2400 auto-off pulses and a Trigger-Link-triggered 6485 over TCP -> procedure ->
HDF5) against the device model's truth and the simulated instruments' own timing."""

from __future__ import annotations

import math
import os
import signal

import h5py
import numpy as np
import pytest

from labrig.bench import Bench
from labrig.config import load_config, parse_config
from labrig.errors import ParameterError, SafetyLimitError
from labrig.procedures.pulsed_el import PulsedELProcedure
from labrig.runner import run_procedure

AREA_CM2 = 0.04


# ------------------------------------------------------------------ validation (no bench)
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"widths": "2", "period": 1.0}, ParameterError, r"period: width 2 ms is not shorter"),
        ({"widths": "1", "duty_cycle": 100.0}, ParameterError, "duty_cycle: width 1 ms"),
        ({"widths": "10", "duty_cycle": 60.0}, ParameterError, "pulsed-mode limit 50 %"),
        (
            {"widths": "1", "period": 1.05},
            ParameterError,
            "less than the 2400's trigger latency",
        ),
        ({"drive_levels": "0.01, 0.2"}, SafetyLimitError, r"limits.max_current_a \(0.1 A\)"),
        (
            {"drive_levels": "1.5"},
            SafetyLimitError,
            "drive_levels: Keithley 2400: source current 1.5 A is beyond the ±1.05 A range",
        ),
        ({"compliance": 15.0}, SafetyLimitError, r"limits.max_voltage_v \(12 V\)"),
        (
            {"drive": "voltage", "drive_levels": "5, 13"},
            SafetyLimitError,
            r"drive_levels: the highest level is 13 V, beyond limits.max_voltage_v \(12 V\)",
        ),
        (
            {"drive": "voltage", "drive_levels": "5", "compliance": 0.5},
            SafetyLimitError,
            r"compliance=0.5 A exceeds limits.max_current_a \(0.1 A\)",
        ),
        (
            {"widths": "0.15"},
            ParameterError,
            r"shorter than the 2400 can make at smu_nplc=0.01 \(0.2 ms",
        ),
        ({"widths": "5", "smu_nplc": 1.0}, ParameterError, "smu_nplc=1 .20 ms integration"),
        ({"widths": "5", "photometer_nplc": 1.0}, ParameterError, "photometer_nplc=1 integrates"),
        ({"widths": "200"}, ParameterError, "outside the allowed 0.1–100 ms"),
        ({"widths": "1, x"}, ParameterError, "widths='1, x'"),
        ({"mode": "sideways"}, ParameterError, "mode='sideways'"),
        ({"photometer_range": 3e-4}, ParameterError, "not a 6485 range"),
        ({"dc_reference": "file"}, ParameterError, "dc_file: empty"),
        ({"dc_reference": "file", "dc_file": "/no/such.h5"}, ParameterError, "no such file"),
    ],
)
def test_bad_input_rejected_naming_the_limit(kwargs, error, match):
    with pytest.raises(error, match=match):
        PulsedELProcedure(**kwargs).validate(load_config("sim"))


def test_bad_input_touches_no_instrument(tmp_path):
    class Refuses(Bench):
        def open(self):  # pragma: no cover - must not be reached
            raise AssertionError("an instrument was opened")

    with pytest.raises(ParameterError, match="not shorter than the period"):
        run_procedure(
            PulsedELProcedure(widths="5", period=2.0),
            load_config("sim"),
            output_dir=tmp_path,
            progress=False,
            bench_factory=Refuses,
        )
    assert not list(tmp_path.iterdir())


def test_defaults_validate_and_plan():
    p = PulsedELProcedure(drive_levels="0.001, 0.004", dc_reference="none")
    p.validate(load_config("sim"))
    # each width after the first is followed by the reference (shortest) width: drift
    assert p.points()[:5] == [
        (0.001, 0.5e-3, False),
        (0.001, 1e-3, False),
        (0.001, 0.5e-3, True),
        (0.001, 2e-3, False),
        (0.001, 0.5e-3, True),
    ]
    assert p.points()[10:12] == [(0.001, 0.5e-3, True), (0.004, 0.5e-3, False)]
    assert len(p.points()) == 22 and p.estimated_points() == 22
    r = PulsedELProcedure(widths="5, 1, 2, 1", drive_levels="0.004")
    assert [w for _, w, _ in r.points()] == pytest.approx([1e-3, 5e-3, 1e-3, 2e-3, 1e-3])
    assert PulsedELProcedure(widths="2", drive_levels="0.004").points() == [(0.004, 2e-3, False)]
    q = PulsedELProcedure(mode="drive sweep", drive_levels="0.001, 0.004", widths="1, 2")
    assert q.points() == [
        (0.001, 1e-3, False),
        (0.004, 1e-3, False),
        (0.001, 2e-3, False),
        (0.004, 2e-3, False),
    ]
    assert q.period_s(1e-3) == pytest.approx(0.1)  # 1 % duty
    q.period = 50.0
    assert q.period_s(1e-3) == pytest.approx(0.05)


# ------------------------------------------------------------------ the full chain
def _recording_bench():
    """A Bench that keeps its simulated lab and records every on/off of the device's drive
    (the simulated instruments' true pulse timing) and the truth at each pulse's end."""

    class Recording(Bench):
        lab = None
        edges: list[tuple[float, bool]] = []
        pulse_eqe: list[float] = []
        pulse_truth: list[dict[str, float]] = []

        def open(self):
            super().open()
            cls = type(self)
            cls.lab = self.simulation
            sim = self.simulation.physics
            on_v, on_i, off = sim.source_voltage, sim.source_current, sim.output_off

            def source_voltage(*a, **k):
                cls.edges.append((sim.clock.time(), True))
                return on_v(*a, **k)

            def source_current(*a, **k):
                cls.edges.append((sim.clock.time(), True))
                return on_i(*a, **k)

            def output_off():
                truth = sim.truth()
                if truth["output_on"] and truth["current_a"] > 0:
                    cls.pulse_eqe.append(truth["eqe"])  # the light at the end of the pulse
                    cls.pulse_truth.append(truth)
                cls.edges.append((sim.clock.time(), False))
                return off()

            sim.source_voltage, sim.source_current, sim.output_off = (
                source_voltage,
                source_current,
                output_off,
            )

    Recording.edges = []
    Recording.pulse_eqe = []
    Recording.pulse_truth = []
    return Recording


def _on_times(edges):
    """Durations the drive was on (each on-edge to the next off-edge)."""
    out, start = [], None
    for t, on in edges:
        if on and start is None:
            start = t
        elif not on and start is not None:
            out.append(t - start)
            start = None
    return np.array(out)


def _run(tmp_path, config=None, factory=None, **params):
    factory = factory or _recording_bench()
    result = run_procedure(
        PulsedELProcedure(**params),
        config or load_config("sim"),
        output_dir=tmp_path,
        progress=False,
        bench_factory=factory,
    )
    with h5py.File(result.path, "r") as f:
        data = {k: f["entry/data"][k][()] for k in f["entry/data"]}
        analysis = {k: f["entry/analysis"][k][()] for k in f.get("entry/analysis", {})}
        log = [m.decode() for m in f["entry/log/message"][()]]
    if "mode" in data:
        data["mode"] = np.array([m.decode() for m in data["mode"]])
    return result, data, analysis, log, factory


def _device(config):
    from labrig.simulators.led import LEDDevice

    return LEDDevice(config.device.model, config.device.active_area_cm2)


def test_width_sweep_el_falls_with_width_as_the_film_heats(tmp_path):
    config = load_config("sim")
    result, data, analysis, log, factory = _run(
        tmp_path, drive_levels="0.008", pulses_per_point=5, rest=5.0, dc_reference="none"
    )
    assert result.status == "finished", result.reason
    assert list(data["set_width"]) == [0.5, 1, 0.5, 2, 0.5, 5, 0.5, 10, 0.5, 20, 0.5]
    assert list(data["reference"]) == [0] + [0, 1] * 5
    assert np.all(data["mode"] == "width sweep")
    all_el = data["el_intensity"]
    sweep = data["reference"] == 0
    data = {k: v[sweep] for k, v in data.items()}
    widths = data["set_width"]
    # EL falls monotonically with width, recorded as such
    assert np.all(np.diff(data["photodiode_current"]) < 0)
    flag = analysis["el_monotonic_with_width"]
    assert isinstance(flag, (bool, np.bool_)) and flag  # a flag, shown as yes/no
    # ... by what the film's heating predicts (end of each pulse, from ambient)
    dev = _device(config)
    amps = 0.008
    volts = data["voltage"]
    alpha = config.device.model.eqe_temperature_coefficient_per_k
    factor = np.array(
        [
            math.exp(-alpha * (dev.pulse_temperature_k(v, amps, w * 1e-3) - 298.15))
            for v, w in zip(volts, widths, strict=True)
        ]
    )
    film_drop = 100 * (1 - factor[-1] / factor[0])
    assert 1.0 < film_drop < 4.0
    # measured: the film's heating plus a little substrate warming and ageing at 1 % duty
    assert film_drop * 0.95 < analysis["el_drop"] < film_drop + 1.5
    # ... and exactly what the simulated device emitted at the end of its pulses
    truth = np.array(factory.pulse_eqe).reshape(11, 5).mean(axis=1)
    assert all_el == pytest.approx(truth / truth[0], abs=0.002)
    # EQE at the shortest pulse is the device's intrinsic EQE (film barely warm)
    eqe_truth = dev.intrinsic_eqe(amps / AREA_CM2) * factor[0]
    assert data["eqe"][0] / 100 == pytest.approx(eqe_truth, rel=0.02)
    # achieved widths within 10 % of the simulated 2400's true on-times
    on = _on_times(factory.edges)
    for w, achieved in zip(widths, data["achieved_width"], strict=True):
        true = on[np.argmin(np.abs(on - w * 1e-3))]  # pulses of this width
        assert abs(true - w * 1e-3) < 1e-6  # the sim made what was asked (epoch-clock float)
        assert achieved * 1e-3 == pytest.approx(true, rel=0.10)
        assert achieved * 1e-3 == pytest.approx(true, rel=0.01)  # in fact much closer
    # period and duty from timestamps: 1 % duty by default
    assert data["achieved_period"] == pytest.approx(widths * 100, rel=0.01)
    assert data["duty_cycle"] == pytest.approx(1.0, rel=0.01)
    assert data["mean_current"] == pytest.approx(data["peak_current"] * 0.01, rel=0.01)
    assert data["peak_current"] == pytest.approx(amps, rel=1e-3)
    assert data["current_density"] == pytest.approx(amps / AREA_CM2 * 1e3, rel=1e-3)
    assert any("achieved" in m for m in log)
    assert abs(analysis["width_deviation_worst"]) < 1.0  # %
    # the output was left off
    assert factory.lab.instruments["smu"].output is False
    assert not factory.lab.physics.operating_point.output_on


def test_width_sweep_reports_heating_apart_from_ageing(tmp_path):
    """A 4 mA width sweep (20 pulses, 2 s rest): about half the raw EL drop over the
    widths is the device ageing.  The bracketed sweep's heating drop matches the
    simulator's two-node thermal model and its drift the degradation model, both read at
    the end of every pulse with degradation on.  Tolerances: heating within 0.1 and
    drift within 0.15 percentage points (the substrate's warmth left from a long train,
    2 s rest against its 3 s time constant, dims the next reference by ~0.1 %)."""
    config = load_config("sim")
    result, data, analysis, log, factory = _run(tmp_path, drive_levels="0.004", dc_reference="none")
    assert result.status == "finished", result.reason
    pulses = 20
    trains = len(data["set_width"])
    assert trains == 11
    truth = factory.pulse_truth
    tf = np.array([p["thermal_factor"] for p in truth]).reshape(trains, pulses).mean(axis=1)
    re = np.array([p["relative_efficiency"] for p in truth]).reshape(trains, pulses).mean(axis=1)
    sweep = data["reference"] == 0
    ref = data["set_width"] == 0.5
    heating_truth = 100 * (1 - tf[sweep][-1] / tf[sweep][0])
    drift_truth = 100 * (1 - re[ref][-1] / re[ref][0])
    assert 0.8 < heating_truth < 1.1 and 1.2 < drift_truth < 1.6
    assert analysis["heating_drop"] == pytest.approx(heating_truth, abs=0.1)
    assert analysis["el_drift"] == pytest.approx(drift_truth, abs=0.15)
    # the drift is the degradation model's over the drive on-time between the references
    dev = _device(config)
    j = 0.004 / AREA_CM2
    on = data["on_time"][ref]
    assert analysis["el_drift_on_time"] == pytest.approx(on[-1] - on[0], rel=1e-9)
    assert on[-1] == pytest.approx(
        pulses * (0.5 * 6 + 1 + 2 + 5 + 10 + 20) * 1e-3 - 0.005, rel=0.01
    )
    model = 100 * (
        1 - dev.relative_efficiency_after(on[-1], j) / dev.relative_efficiency_after(on[0], j)
    )
    assert model == pytest.approx(drift_truth, abs=0.01)
    # the raw drop (as before: sweep points only) holds the ageing too
    assert analysis["el_drop"] > heating_truth + 0.8
    assert analysis["el_drift_references"] == 6
    assert analysis["heating_method"].decode().startswith("bracketed")


def test_default_run_compares_pulsed_and_dc_eqe_at_each_level(tmp_path):
    """The default run: a bracketed width sweep at 1, 2, 4 and 8 mA (25-200 mA/cm²), each
    level's DC point right after its last reference-width train.  Per level, the stored
    pulsed EQE is the simulated device's EQE at the end of those 0.5 ms pulses -- its
    heating-free EQE (intrinsic × ageing, within 0.7 %) -- and the DC EQE the
    device's at the end of the DC dwell, so their ratio is the device's; ageing between
    them is the DC dwell's alone.  Tolerances: pulsed 2 % (reference-spectrum photometry
    and the photodiode aperture), DC 1.5 % (the readings come ~0.1 s before the truth is
    taken at output off, while the device still heats)."""
    config = load_config("sim")
    result, data, analysis, log, factory = _run(tmp_path)
    assert result.status == "finished", result.reason
    levels = [0.001, 0.002, 0.004, 0.008]
    pulses, trains = 20, 11
    assert list(data["mode"]) == (["width sweep"] * trains + ["dc"]) * 4
    assert list(analysis["levels_drive"]) == levels
    assert analysis["levels_j"] == pytest.approx(np.array(levels) / AREA_CM2 * 1e3, rel=1e-3)
    # the truth at each pulse's end and at the DC point's end, in the run's order
    truth = factory.pulse_truth
    per_level = pulses * trains + 1
    assert len(truth) == 4 * per_level
    dev = _device(config)
    pulsed_truth, dc_truth = [], []
    for k, amps in enumerate(levels):
        last_train = truth[k * per_level + pulses * (trains - 1) : (k + 1) * per_level - 1]
        dc = truth[(k + 1) * per_level - 1]
        assert all(p["current_a"] == pytest.approx(amps, rel=1e-6) for p in last_train)
        assert dc["current_a"] == pytest.approx(amps, rel=1e-3)
        eqe = np.mean([p["eqe"] for p in last_train])
        # heating-free: the device's intrinsic EQE times its ageing, within 0.7 % (at
        # 200 mA/cm² the film warms 0.4 K in 0.5 ms, the 1 % duty and the 20 ms train
        # before leave the substrate 1 K warm); DC: 1-14 % lower from heating alone
        heating_free = dev.intrinsic_eqe(amps / AREA_CM2) * last_train[-1]["relative_efficiency"]
        assert min(p["thermal_factor"] for p in last_train) > 0.993
        assert eqe == pytest.approx(heating_free, rel=0.007)
        assert dc["thermal_factor"] < last_train[-1]["thermal_factor"] - 0.005
        pulsed_truth.append(100 * eqe)
        dc_truth.append(100 * dc["eqe"])
    pulsed_truth, dc_truth = np.array(pulsed_truth), np.array(dc_truth)
    assert analysis["levels_eqe_pulsed"] == pytest.approx(pulsed_truth, rel=0.02)
    assert analysis["levels_eqe_dc"] == pytest.approx(dc_truth, rel=0.015)
    ratio = analysis["levels_eqe_ratio"]
    assert ratio == pytest.approx(pulsed_truth / dc_truth, rel=0.02)
    assert ratio == pytest.approx(analysis["levels_eqe_pulsed"] / analysis["levels_eqe_dc"])
    # DC heats the device more at every higher level: 1 % at 25, > 15 % at 200 mA/cm²
    assert np.all(np.diff(ratio) > 0)
    assert ratio[0] == pytest.approx(1.0, abs=0.03) and ratio[-1] > 1.15
    assert analysis["pulsed_dc_eqe_ratio"] == pytest.approx(ratio[-1], rel=1e-9)
    # heating, drift and EL drop per level, the top level's being the run's own figures
    assert np.all(np.diff(analysis["levels_heating_drop"]) > 0)
    assert analysis["levels_heating_drop"][-1] == pytest.approx(analysis["heating_drop"])
    assert analysis["levels_el_drift"][-1] == pytest.approx(analysis["el_drift"])
    assert analysis["levels_el_drop"][-1] == pytest.approx(analysis["el_drop"])
    assert factory.lab.instruments["smu"].output is False


def test_drive_sweep_pulsed_eqe_above_dc_at_high_j(tmp_path):
    config = load_config("sim")
    levels = "0.0004, 0.001, 0.002, 0.004, 0.008, 0.012"
    result, data, analysis, log, factory = _run(
        tmp_path,
        mode="drive sweep",
        drive_levels=levels,
        widths="1",
        pulses_per_point=10,
        dc_reference="measure",
        photometer_range=2e-5,
    )
    assert result.status == "finished", result.reason
    pulsed = data["mode"] == "drive sweep"
    dc = data["mode"] == "dc"
    assert pulsed.sum() == 6 and dc.sum() == 6
    j = data["current_density"]
    assert j[pulsed] == pytest.approx(j[dc], rel=1e-3)  # current drive: the same J
    ratio = data["eqe"][pulsed] / data["eqe"][dc]
    assert ratio[0] == pytest.approx(1.0, abs=0.02)  # low J: no heating, same EQE
    assert ratio[-1] > 1.2  # high J: the DC device runs hot
    assert np.all(np.diff(ratio) > -0.01)
    assert analysis["pulsed_dc_eqe_ratio"] == pytest.approx(ratio[-1], rel=1e-6)
    assert analysis["highest_common_j"] == pytest.approx(300.0, rel=1e-3)
    assert 25.0 < analysis["divergence_j"] < 200.0
    # pulsed EQE follows the intrinsic (published) curve within the film's small warming
    dev = _device(config)
    truth = np.array([dev.intrinsic_eqe(x * 1e-3) for x in j[pulsed]])
    assert data["eqe"][pulsed] / 100 == pytest.approx(truth, rel=0.03)
    assert np.all(data["duty_cycle"][dc] == 100.0)
    assert factory.lab.instruments["smu"].output is False


def test_dc_dwell_shorter_than_the_settling_is_said_once_in_log_and_file(tmp_path, caplog):
    result, data, analysis, log, _ = _run(
        tmp_path,
        mode="drive sweep",
        drive_levels="0.001, 0.002",
        widths="1",
        pulses_per_point=2,
        dc_reference="measure",
        dc_dwell=0.05,
    )
    assert result.status == "finished", result.reason
    said = [m for m in log if "dc_dwell" in m]
    assert said == [
        "dc_dwell=0.05 s is shorter than the instruments' settling (0.1 s): the DC "
        "reference is read before it has settled"
    ]
    with h5py.File(result.path, "r") as f:
        kinds = [k.decode() for k in f["entry/log/kind"][()]]
    assert kinds.count("bad input") == 1
    assert sum("dc_dwell=0.05 s" in r.getMessage() for r in caplog.records) == 1
    assert (data["mode"] == "dc").sum() == 2


#: from the end of a DC dwell to the DC reading: the 2400's :READ? at 1 PLC with autozero
#: (3 x 20 ms + 12.6 ms firmware) and the middle of the 6485's 10-reading burst
DC_READ_AFTER_DWELL_S = 0.0785
#: DC EQE against the device model: the photometry's reference-spectrum approximation
#: (~0.4 %) and the drift while the readings are taken at the top level (~0.2 %)
DC_EQE_TOLERANCE = 0.01


def test_dc_reference_eqe_at_each_level_matches_the_device_model(tmp_path):
    """Each DC level is applied before its dwell starts: the device heats and ages for the
    whole dwell at that level (a late level was up to 24 % off at the top levels)."""
    from labrig.clock import SimulatedClock
    from labrig.simulators.physics import CoupledPhysics

    config = load_config("sim")
    levels = [0.0004, 0.002, 0.008, 0.012]
    dwell = 0.5
    result, data, analysis, log, _ = _run(
        tmp_path,
        mode="drive sweep",
        drive_levels=", ".join(map(str, levels)),
        widths="1",
        pulses_per_point=5,
        dc_reference="measure",
        dc_dwell=dwell,
        photometer_range=2e-5,
    )
    assert result.status == "finished", result.reason
    dc = data["mode"] == "dc"
    # the device model, driven through the intended history: each level from the moment
    # it is set, for the dwell and the reading (a rising DC sweep, as the procedure runs)
    model = CoupledPhysics(config, clock=SimulatedClock(start=0.0))
    expected = []
    for amps in levels:
        model.source_current(amps, compliance_v=12.0)
        model.clock.advance(dwell + DC_READ_AFTER_DWELL_S)
        expected.append(100 * model.truth()["eqe"])
    assert data["eqe"][dc] == pytest.approx(expected, rel=DC_EQE_TOLERANCE)
    # the top level is where heating and ageing within the dwell matter most
    assert expected[-1] < 0.8 * 100 * _device(config).intrinsic_eqe(levels[-1] / AREA_CM2)


def test_voltage_drive_and_dc_from_a_jvl_file(tmp_path):
    from labrig.procedures.jvl import JVLProcedure

    jvl = run_procedure(
        JVLProcedure(spectra="none", start_voltage=3.0, stop_voltage=9.0, step_voltage=0.5),
        load_config("sim"),
        output_dir=tmp_path / "jvl",
        progress=False,
    )
    assert jvl.status == "finished", jvl.reason
    result, data, analysis, log, _ = _run(
        tmp_path / "pulsed",
        mode="drive sweep",
        drive="voltage",
        drive_levels="4, 5, 6, 7, 8",
        widths="2",
        pulses_per_point=5,
        dc_reference="file",
        dc_file=str(jvl.path),
    )
    assert result.status == "finished", result.reason
    from_file = data["mode"] == "dc file"
    assert from_file.sum() == 13 and np.all(np.isnan(data["set_width"][from_file]))
    pulsed = data["mode"] == "drive sweep"
    assert data["drive_level"][pulsed] == pytest.approx([4, 5, 6, 7, 8])
    assert data["voltage"][pulsed] == pytest.approx([4, 5, 6, 7, 8], abs=1e-3)
    assert data["achieved_width"][pulsed] == pytest.approx(2.0, rel=0.01)
    assert analysis["pulsed_dc_eqe_ratio"] > 1.0
    assert any("from" in m and "DC reference" in m for m in log)


# ------------------------------------------------------------------ faults and aborts
def _assert_output_off(factory):
    assert factory.lab.instruments["smu"].output is False
    assert not factory.lab.physics.operating_point.output_on
    assert factory.lab.instruments["smu"].auto_clear is False


def test_smu_timeout_mid_run_fails_with_output_off(tmp_path):
    data_cfg = load_config("sim").model_dump(exclude={"source_text", "source_path"}, mode="json")
    data_cfg["device"]["preset"] = "red_cspbi3"
    data_cfg["instruments"]["smu"]["timeout_s"] = 0.5
    data_cfg["simulation"]["faults"] = {"smu": [{"kind": "timeout", "after": 60}]}
    result, data, _, log, factory = _run(
        tmp_path, config=parse_config(data_cfg), drive_levels="0.004", pulses_per_point=5
    )
    assert result.status == "failed", result.reason
    assert 0 < len(data["set_width"]) < 6
    _assert_output_off(factory)


class _Interrupted(PulsedELProcedure):
    """Sends itself SIGINT (like Ctrl-C) or raises while the third point is pulsing."""

    how = "sigint"

    def _pulsed_point(self, level, width, reference=False):
        self._count = getattr(self, "_count", 0) + 1
        if self._count == 3:
            if self.how == "sigint":
                os.kill(os.getpid(), signal.SIGINT)
            else:
                raise RuntimeError("boom mid-run")
        super()._pulsed_point(level, width, reference)


@pytest.mark.parametrize(("how", "status"), [("sigint", "aborted"), ("error", "failed")])
def test_abort_and_exception_mid_run_leave_the_output_off(tmp_path, how, status):
    factory = _recording_bench()
    proc = _Interrupted(drive_levels="0.004", pulses_per_point=5)
    proc.how = how
    result = run_procedure(
        proc, load_config("sim"), output_dir=tmp_path, progress=False, bench_factory=factory
    )
    assert result.status == status, result.reason
    with h5py.File(result.path, "r") as f:
        n = len(f["entry/data/set_width"][()])
    assert 2 <= n <= 3
    _assert_output_off(factory)


def test_unplugged_trigger_link_fails_the_run_with_output_off(tmp_path):
    """No trigger reaches the 6485: its buffer stays empty, the run fails (it never
    reports light it did not see) and the 2400 is left off."""
    recording = _recording_bench()

    class Unplugged(recording):
        def open(self):
            super().open()
            self.simulation.physics.trigger_link.pulse = lambda line: None

    data_cfg = load_config("sim").model_dump(exclude={"source_text", "source_path"}, mode="json")
    data_cfg["device"]["preset"] = "red_cspbi3"
    data_cfg["instruments"]["photometer"]["timeout_s"] = 0.5
    result, data, _, log, factory = _run(
        tmp_path,
        config=parse_config(data_cfg),
        factory=Unplugged,
        drive_levels="0.004",
        pulses_per_point=3,
    )
    assert result.status == "failed", result.reason
    assert len(data["set_width"]) == 0
    _assert_output_off(factory)


# ------------------------------------------------------------------ driver methods it uses
@pytest.fixture
def linked():
    """The 2400 and 6485 drivers over TCP on one simulated bench (noise off)."""
    from labrig.clock import SimulatedClock
    from labrig.drivers import keithley2400, keithley6485
    from labrig.simulators.keithley2400 import SimulatedKeithley2400
    from labrig.simulators.keithley6485 import SimulatedKeithley6485
    from labrig.simulators.physics import CoupledPhysics
    from labrig.simulators.server import SCPIServer

    data = load_config("sim").model_dump(exclude={"source_text", "source_path"}, mode="json")
    data["simulation"]["noise"] = False
    sim = CoupledPhysics(parse_config(data), SimulatedClock(start=0.0))
    with (
        SCPIServer(SimulatedKeithley2400(sim)) as s1,
        SCPIServer(SimulatedKeithley6485(sim)) as s2,
    ):
        smu = keithley2400.connect(s1.resource, timeout_s=1.0)
        pico = keithley6485.connect(s2.resource, timeout_s=1.0)
        try:
            yield sim, smu, pico
        finally:
            smu.close()
            pico.close()


def test_driver_trigger_link_methods_refuse_bad_settings_before_scpi(linked):
    from labrig.errors import InstrumentSettingError

    _, smu, pico = linked
    with pytest.raises(InstrumentSettingError, match="'later'; allowed 'source'"):
        smu.set_trigger_output(("source", "later"))
    with pytest.raises(InstrumentSettingError, match="line 5; allowed 1–4"):
        smu.set_trigger_output(("source",), line=5)
    with pytest.raises(InstrumentSettingError, match="line 7; allowed 1–6"):
        pico.arm_link_burst(3, line=7)
    with pytest.raises(InstrumentSettingError, match="trigger delay -1"):
        pico.arm_link_burst(3, delay_s=-1.0)
    with pytest.raises(InstrumentSettingError, match="burst of 2501"):
        pico.arm_link_burst(2501)


def test_driver_arm_pulse_fetch_over_tcp(linked):
    sim, smu, pico = linked
    smu.configure_source("current", 12.0, nplc=0.01, source_delay=0.0, autozero=False)
    pico.configure(nplc=0.01, current_range=2e-5)
    pico.zero_correct()
    pico.arm_link_burst(4, line=3, delay_s=0.7e-3)
    smu.set_trigger_output(("source",), line=3)
    smu.reset_timestamp()
    pulses = smu.pulsed_cycles(0.004, 4, source_delay=0.8e-3, nplc=0.01, off_time=0.05)
    smu.set_trigger_output((), line=3)
    light = pico.fetch_link_burst(4)
    assert pulses[0].time == pytest.approx(0.0511, abs=1e-6)  # restarted at the reset
    assert np.diff([r.time for r in pulses]) == pytest.approx(0.0511, abs=1e-6)
    sim.source_current(0.004, 12.0)
    steady = sim.photodiode_current()
    sim.output_off()
    assert [r.current for r in light] == pytest.approx([steady] * 4, rel=0.01)
    assert pico.read().current < 1e-8  # back to immediate triggering: a dark reading
    # triggers that never come: the buffer is short and the fetch says why
    pico.arm_link_burst(3, line=4)
    smu.set_trigger_output(("source",), line=3)  # the wrong line
    smu.pulsed_cycles(0.004, 3, source_delay=0.8e-3, nplc=0.01)
    with pytest.raises(Exception, match="no reply|triggers reached"):
        pico.fetch_link_burst(3)
