"""JVLProcedure: parameter validation, and the full chain on the simulated bench
(drivers over TCP -> procedure -> HDF5 store -> analysis) against the device model's truth."""

from __future__ import annotations

import importlib.util
import itertools

import h5py
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from labrig.config import load_config, parse_config
from labrig.errors import ConfigError, ParameterError, SafetyLimitError
from labrig.procedures.jvl import JVLProcedure

NEEDED = (
    "labrig.runner",
    "labrig.simulators.keithley2400",
    "labrig.simulators.keithley6485",
    "labrig.simulators.spectrometer",
    "labrig.simulators.server",
    "labrig.drivers.keithley2400",
    "labrig.drivers.keithley6485",
    "labrig.drivers.usb2000plus",
    "labrig.instruments",
)
MISSING = [m for m in NEEDED if importlib.util.find_spec(m) is None]
needs_bench = pytest.mark.skipif(
    bool(MISSING), reason=f"simulated bench incomplete: missing {', '.join(MISSING)}"
)


def _config_data(**device):
    data = load_config("sim").model_dump(exclude={"source_text", "source_path"}, mode="json")
    data["device"]["preset"] = None
    if device:
        data["device"] = {**data["device"], **device}
    return data


# ------------------------------------------------------------------ validation (no bench)
def test_levels_directions_and_list():
    p = JVLProcedure(start_voltage=0.0, stop_voltage=1.0, step_voltage=0.25)
    assert p.levels() == [0.0, 0.25, 0.5, 0.75, 1.0]
    p.direction = "reverse"
    assert p.levels() == [1.0, 0.75, 0.5, 0.25, 0.0]
    p.direction = "both"
    assert p.levels() == [0.0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25, 0.0]
    q = JVLProcedure(voltages="2, 3.5,4")
    assert q.levels() == [2.0, 3.5, 4.0]
    r = JVLProcedure(start_voltage=1.0, stop_voltage=-1.0, step_voltage=-0.5)
    assert r.levels() == [1.0, 0.5, 0.0, -0.5, -1.0]
    assert JVLProcedure().estimated_points() == 61  # 0 -> 6 V in 0.1 V


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"step_voltage": 0.0}, ParameterError, "step_voltage=0"),
        ({"step_voltage": -0.1}, ParameterError, "step_voltage=-0.1: must have the sign"),
        ({"stop_voltage": 15.0}, SafetyLimitError, r"15 V, beyond limits.max_voltage_v \(12 V\)"),
        ({"voltages": "1, 2, 13"}, SafetyLimitError, "voltages: the sweep reaches 13 V"),
        ({"voltages": "1, two"}, ParameterError, "voltages='1, two'"),
        ({"compliance_current": 0.5}, SafetyLimitError, "limits.max_current_a"),
        (
            {"mode": "buffered", "step_voltage": 0.001},
            ParameterError,
            "6001 points, the 2400 holds at most 2500",
        ),
        ({"smu_nplc": 50.0}, ParameterError, "smu_nplc=50.0.*allowed 0.01 to 10"),
        ({"direction": "sideways"}, ParameterError, "direction='sideways'"),
        ({"stop_voltage": float("nan")}, ParameterError, "stop_voltage=nan: must be a finite"),
    ],
)
def test_bad_parameters_rejected_with_a_clear_line(kwargs, error, match):
    with pytest.raises(error, match=match):
        JVLProcedure(**kwargs).validate(load_config("sim"))


def test_default_parameters_validate_on_sim():
    JVLProcedure().validate(load_config("sim"))
    JVLProcedure(mode="buffered", direction="both").validate(load_config("sim"))


def test_missing_or_malformed_responsivity_rejected(tmp_path):
    data = _config_data()
    data["calibration"]["photodiode"]["responsivity"] = None
    data["calibration"]["photodiode"]["responsivity_file"] = str(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="file not found"):
        JVLProcedure().validate(parse_config(data))
    bad = tmp_path / "bad.csv"
    bad.write_text("wavelength_nm,a_per_w\n500,0.3\n")
    data["calibration"]["photodiode"]["responsivity_file"] = str(bad)
    with pytest.raises(ConfigError, match="two numeric columns"):
        JVLProcedure().validate(parse_config(data))


def test_reference_spectrum_outside_responsivity_rejected_when_spectra_off():
    data = _config_data()
    data["calibration"]["reference_peak_nm"] = 380.0
    data["calibration"]["reference_fwhm_nm"] = 20.0
    with pytest.raises(ConfigError, match="outside"):
        JVLProcedure(spectra="none").validate(parse_config(data))


def test_reference_spectrum_needed_only_where_spectra_cannot_stand_in():
    data = _config_data()
    data["device"]["model"] = None  # a real bench: no model, no reference configured
    config = parse_config(data)
    for spectra in ("none", "above_threshold"):
        with pytest.raises(ConfigError, match="reference_peak_nm"):
            JVLProcedure(spectra=spectra).validate(config)
    JVLProcedure(spectra="every_step").validate(config)
    JVLProcedure(spectra="every_n_steps").validate(config)


def test_a_step_without_reference_or_spectrum_has_nan_photometry():
    """The reference spectrum is worked out once per sweep; without one (and before any
    usable spectrum) a step's photometric columns are NaN, its electrical ones kept."""
    from labrig.procedures.jvl import _Step, _SweepPhotometry

    data = _config_data()
    data["device"]["model"] = None
    photometry = _SweepPhotometry(parse_config(data))
    assert photometry.reference is None and not photometry.has_spectra
    row = photometry.row(photometry.weigh(_Step(3, 2.5, 1e-3, 2e-9, 0.1, False)))
    assert (row["voltage"], row["current"], row["photodiode_current"]) == (2.5, 1e-3, 2e-9)
    assert row["current_density"] == pytest.approx(1e-3 / data["device"]["active_area_cm2"] * 1e3)
    assert np.isnan(row["luminance"]) and np.isnan(row["eqe"]) and row["spectrum_index"] == -1
    with_reference = _SweepPhotometry(load_config("sim"))
    assert with_reference.reference is not None
    weighed = with_reference.weigh(_Step(3, 2.5, 1e-3, 2e-9, 0.1, False))
    assert with_reference.row(weighed)["luminance"] == weighed.light.luminance_cd_m2 > 0


# ------------------------------------------------------------------ spectra
# ------------------------------------------------------------------ the full chain
def _truth_recording_bench():
    """A Bench whose simulated device's ground truth is recorded at every photodiode
    reading (what the luminance of each row must match; heating included)."""
    from labrig.bench import Bench

    class TruthRecordingBench(Bench):
        truths: list[dict[str, float]] = []

        def open(self):
            super().open()
            sim = self.simulation.physics
            read = sim.photodiode_current
            record = type(self).truths

            def photodiode_current(*args, **kwargs):
                value = read(*args, **kwargs)
                record.append(sim.truth())
                return value

            sim.photodiode_current = photodiode_current

    TruthRecordingBench.truths = []
    return TruthRecordingBench


def _run(tmp_path, config, **params):
    from labrig.runner import run_procedure

    factory = _truth_recording_bench()
    result = run_procedure(
        JVLProcedure(**params), config, output_dir=tmp_path, progress=False, bench_factory=factory
    )
    with h5py.File(result.path, "r") as f:
        data = {k: f["entry/data"][k][()] for k in f["entry/data"]}
        analysis = {k: f["entry/analysis"][k][()] for k in f.get("entry/analysis", {})}
        log = [m.decode() if isinstance(m, bytes) else str(m) for m in f["entry/log/message"][()]]
        spectra = f["entry/spectra/counts"].shape[0] if "entry/spectra/counts" in f else 0
        nx = (f["entry/data"].attrs["NX_class"], f["entry/data"].attrs["signal"])
    data["truth_luminance"] = np.array(
        [tr["luminance_cd_m2"] for tr in factory.truths[-len(data["voltage"]) :]]
    )
    return result, data, analysis, log, spectra, nx


def _truth(config):
    """Intrinsic (ambient, fresh) figures of the configured LED model."""
    from labrig.simulators.led import LEDDevice

    dev = LEDDevice(config.device.model, config.device.active_area_cm2)
    best = minimize_scalar(
        lambda lj: -dev.intrinsic_eqe(10**lj),
        bounds=(-7, 0),
        method="bounded",
        options={"xatol": 1e-6},
    )
    j_peak = 10**best.x
    j_on = dev.current_density_for_luminance(1.0)
    return {
        "device": dev,
        "peak_eqe": dev.intrinsic_eqe(j_peak),
        "j_peak": j_peak,
        "turn_on_v": dev.voltage_at_density(j_on),
        "cie": dev.cie_xy(j_peak * dev.area_cm2),
    }


def _check_against_truth(config, data, analysis):
    truth = _truth(config)
    dev = truth["device"]
    assert analysis["peak_eqe"] == pytest.approx(100 * truth["peak_eqe"], rel=0.03)
    assert analysis["turn_on_voltage"] == pytest.approx(truth["turn_on_v"], abs=0.05)
    assert analysis["cie_x"] == pytest.approx(truth["cie"][0], abs=0.005)
    assert analysis["cie_y"] == pytest.approx(truth["cie"][1], abs=0.005)
    # luminance at every lit step against the device's true luminance when it was read
    lit = data["luminance"] > 1
    assert lit.sum() >= 10
    rel = data["luminance"][lit] / data["truth_luminance"][lit] - 1
    assert np.max(np.abs(rel)) < 0.03, rel
    # and, where Joule heating is negligible (< 0.3 %), against the published curve
    j_a_cm2 = data["current_density"] * 1e-3
    model = config.device.model
    heating = model.thermal_resistance_k_cm2_w * data["voltage"] * j_a_cm2
    cool = lit & (model.eqe_temperature_coefficient_per_k * heating < 0.003)
    assert cool.sum() >= 5
    expected = np.array([dev.intrinsic_luminance_cd_m2(j) for j in j_a_cm2[cool]])
    assert np.max(np.abs(data["luminance"][cool] / expected - 1)) < 0.03


@needs_bench
@pytest.mark.parametrize("preset", ["red_cspbi3", "green_cspbbr3", "blue_cspbbr3"])
def test_point_by_point_recovers_preset_truth(tmp_path, preset):
    data_cfg = _config_data()
    data_cfg["device"] = {"preset": preset, "sample": f"sim-{preset}"}
    config = parse_config(data_cfg)
    result, data, analysis, log, n_spectra, nx = _run(tmp_path, config)
    assert result.status == "finished", result.reason
    assert nx[0] in ("NXdata", b"NXdata")
    assert n_spectra > 5
    _check_against_truth(config, data, analysis)
    assert np.all(data["spectrum_index"] >= 0)  # every row weighted by a measured spectrum


@needs_bench
def test_config_given_device_parameters(tmp_path):
    data_cfg = _config_data()
    model = dict(data_cfg["device"]["model"])
    model.update(eqe_max=0.12, j_on_a_cm2=1e-4, peak_nm=545.0, fwhm_nm=25.0, k_a_cm2_vm=4e-3)
    data_cfg["device"] = {**data_cfg["device"], "sample": "custom", "model": model}
    config = parse_config(data_cfg)
    result, data, analysis, _, _, _ = _run(tmp_path, config)
    assert result.status == "finished", result.reason
    _check_against_truth(config, data, analysis)


@needs_bench
def test_buffered_agrees_with_point_by_point(tmp_path):
    config = load_config("sim")
    _, pbp, a_pbp, _, _, _ = _run(tmp_path / "p", config)
    result, buf, a_buf, log, _, _ = _run(tmp_path / "b", config, mode="buffered")
    assert result.status == "finished", result.reason
    assert any("list sweep" in m for m in log)
    n = min(len(pbp["voltage"]), len(buf["voltage"]))
    assert np.allclose(buf["voltage"][:n], pbp["voltage"][:n])
    lit = pbp["luminance"][:n] > 10
    assert np.allclose(buf["current"][:n][lit], pbp["current"][:n][lit], rtol=0.02)
    assert np.allclose(buf["luminance"][:n][lit], pbp["luminance"][:n][lit], rtol=0.03)
    assert a_buf["peak_eqe"] == pytest.approx(a_pbp["peak_eqe"], rel=0.01)
    assert a_buf["turn_on_voltage"] == pytest.approx(a_pbp["turn_on_voltage"], abs=0.02)


@needs_bench
def test_spectra_off_uses_reference_spectrum(tmp_path):
    config = load_config("sim")
    result, data, analysis, log, n_spectra, _ = _run(tmp_path, config, spectra="none")
    assert result.status == "finished", result.reason
    assert n_spectra == 0 and np.all(data["spectrum_index"] == -1)
    truth = _truth(config)
    assert analysis["peak_eqe"] == pytest.approx(100 * truth["peak_eqe"], rel=0.03)
    assert "cie_x" not in analysis and any("no spectrum" in m for m in log)
    # the light criterion as data, for the report: 20 sigma of the dark readings
    assert 0 < analysis["photodiode_noise"] < 1e-12
    assert analysis["light_threshold"] == pytest.approx(20 * analysis["photodiode_noise"])


@needs_bench
def test_compliance_ends_the_sweep_cleanly(tmp_path):
    config = load_config("sim")
    result, data, _, log, _, _ = _run(
        tmp_path, config, compliance_current=1e-3, spectra="none", stop_voltage=8.0
    )
    assert result.status == "finished", result.reason
    assert data["compliance"][-1] == 1 and data["compliance"][:-1].sum() == 0
    assert len(data["voltage"]) < 81
    assert any("compliance" in m and "sweep ended" in m for m in log)


def test_a_step_is_emitted_before_the_event_that_ends_the_sweep(tmp_path):
    """A step's row and progress are emitted while the 2400 measures the next step, yet
    a subscriber sees every row, each followed by its progress, and the step that ended
    the sweep before the event that says why."""
    from labrig.records import Event, Progress, Row
    from labrig.runner import run_procedure

    seen: list = []
    proc = JVLProcedure(compliance_current=1e-3, spectra="none", stop_voltage=8.0)
    result = run_procedure(
        proc, load_config("sim"), output_dir=tmp_path, progress=False, subscribers=[seen.append]
    )
    assert result.status == "finished", result.reason
    sweep = [
        r
        for r in seen
        if isinstance(r, Row | Progress) or (isinstance(r, Event) and r.kind == "compliance")
    ]
    assert isinstance(sweep[-1], Event) and [type(r) for r in sweep[-3:-1]] == [Row, Progress]
    steps = len(proc.levels())
    at = [n for n, r in enumerate(sweep) if isinstance(r, Row)] + [len(sweep) - 1]
    rows = [sweep[n] for n in at[:-1]]
    for k, (row_at, next_at) in enumerate(itertools.pairwise(at)):
        # the step's own progress is the last before the next row (the first row also
        # gives the runner's estimate)
        assert sweep[next_at - 1] == Progress(100 * (k + 1) / steps), (k, sweep[row_at:next_at])
    assert rows[-1].values["compliance"] and not any(r.values["compliance"] for r in rows[:-1])
    with h5py.File(result.path, "r") as f:
        assert f["entry/data/voltage"].shape == (len(rows),)


def test_a_row_that_cannot_be_stored_fails_the_run_with_the_2400_off(tmp_path):
    """A step's row is stored while the 2400 measures the next step: when storing fails
    there (a critical subscriber, as the file's writer is, raises), the run fails with
    the reason, the rows stored before it are in the file, and the 2400 served in
    another process says its output is off and its source back at 0 V."""
    import yaml

    from labrig.config import shipped_config_dir
    from labrig.records import Row
    from labrig.runner import run_procedure
    from labrig.simulators.served import ask, sim_serve

    class StoreFailsAtTheFifthRow:
        critical = True
        rows = 0

        def __call__(self, record) -> None:
            if isinstance(record, Row):
                self.rows += 1
                if self.rows == 5:
                    raise OSError("no space left on device")

    with sim_serve("sim") as served:
        data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
        data["instruments"] = {
            "smu": {"driver": "keithley2400", "resource": served.resources["smu"]},
            "photometer": {"driver": "keithley6485", "resource": served.resources["photometer"]},
        }
        result = run_procedure(
            JVLProcedure(spectra="none", start_voltage=2.0),
            parse_config(data),
            output_dir=tmp_path,
            progress=False,
            subscribers=[StoreFailsAtTheFifthRow()],
        )
        assert ask(served.resources["smu"], ":OUTP?") == "0"
        assert float(ask(served.resources["smu"], ":SOUR:VOLT?")) == 0.0
    assert result.status == "failed" and "no space left on device" in (result.reason or "")
    with h5py.File(result.path, "r") as f:
        assert f["entry/data/voltage"][()].tolist() == pytest.approx([2.0, 2.1, 2.2, 2.3, 2.4])


@needs_bench
def test_max_current_density_stop(tmp_path):
    config = load_config("sim")
    result, data, _, log, _, _ = _run(tmp_path, config, max_current_density=5.0, spectra="none")
    assert result.status == "finished"
    assert data["current_density"][-1] > 5.0 and np.all(data["current_density"][:-1] <= 5.0)
    assert any("max_current_density" in m for m in log)


@needs_bench
def test_breakdown_stops_the_sweep(tmp_path):
    from labrig.bench import Bench

    class BreaksDown(Bench):
        """The device fails open once the SMU has sourced 4 V or more."""

        def open(self):
            super().open()
            lab_bench = self.simulation.physics
            original = lab_bench.source_voltage

            def source_voltage(volts, compliance_a):
                if volts >= 4.0 - 1e-9:
                    lab_bench.set_device_fault("open")
                return original(volts, compliance_a)

            lab_bench.source_voltage = source_voltage

    from labrig.runner import run_procedure

    config = load_config("sim")
    result = run_procedure(
        JVLProcedure(spectra="none"),
        config,
        output_dir=tmp_path,
        progress=False,
        bench_factory=BreaksDown,
    )
    assert result.status == "finished", result.reason
    with h5py.File(result.path, "r") as f:
        volts = f["entry/data/voltage"][()]
        log = [m.decode() for m in f["entry/log/message"][()]]
    assert any("breakdown" in m and "sweep ended" in m for m in log), log
    assert volts[-1] == pytest.approx(4.0) and len(volts) == 41


@needs_bench
def test_every_n_steps_weights_each_row_with_the_nearest_spectrum(tmp_path):
    config = load_config("sim")
    result, data, _, log, n_spectra, nx = _run(
        tmp_path, config, spectra="every_n_steps", spectrum_interval=10
    )
    assert result.status == "finished", result.reason
    assert n_spectra == 7  # steps 0, 10, ..., 60
    assert nx == ("NXdata", "luminance") or nx == (b"NXdata", b"luminance")
    with h5py.File(result.path, "r") as f:
        spectrum_step = f["entry/spectra/step"][()]
    assert list(spectrum_step) == list(range(0, 61, 10))
    assert any("spectrum 0 at 0 V too weak" in m for m in log)  # no light at 0 V
    used = sorted(set(data["spectrum_index"]))
    assert 0 not in used
    log_j = np.log10(np.maximum(np.abs(data["current_density"]), 1e-9))
    for row, si in enumerate(data["spectrum_index"]):
        distance = {u: abs(log_j[row] - log_j[spectrum_step[u]]) for u in used}
        assert distance[si] == pytest.approx(min(distance.values()))
    assert np.all(np.diff(data["timestamp"]) > 0)


@needs_bench
def test_forward_and_back_sweep_is_not_taken_for_breakdown(tmp_path):
    config = load_config("sim")
    result, data, analysis, log, _, _ = _run(
        tmp_path, config, direction="both", spectra="none", stop_voltage=5.0
    )
    assert result.status == "finished", result.reason
    assert len(data["voltage"]) == 101 and data["voltage"][-1] == pytest.approx(0.0)
    assert not any("breakdown" in m for m in log)
    assert analysis["turn_on_voltage"] == pytest.approx(_truth(config)["turn_on_v"], abs=0.05)


@needs_bench
def test_rows_waiting_for_a_spectrum_are_kept_when_an_instrument_fails(tmp_path):
    data_cfg = _config_data()
    data_cfg["device"] = {"preset": "red_cspbi3"}
    data_cfg["instruments"]["photometer"]["timeout_s"] = 0.5
    data_cfg["simulation"]["faults"] = {"photometer": [{"kind": "timeout", "after": 60}]}
    config = parse_config(data_cfg)
    # one spectrum at step 0 (no light: unusable), so every row waits for the end
    result, data, _, log, n_spectra, _ = _run(
        tmp_path, config, spectra="every_n_steps", spectrum_interval=2500
    )
    assert result.status == "failed" and "no reply" in (result.reason or ""), result.reason
    assert n_spectra == 1
    assert 5 < len(data["voltage"]) < 61
    assert np.all(data["spectrum_index"] == -1)  # weighted with the reference spectrum
    assert np.all(np.diff(data["voltage"]) > 0)
