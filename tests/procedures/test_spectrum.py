"""SpectrumProcedure: validation, and end to end on the simulated bench (2400 over TCP,
simulated USB2000+ through the real driver, runner, HDF5 store) against the bench's truth."""

from __future__ import annotations

import importlib.util

import h5py
import numpy as np
import pytest

from labrig.config import load_config, parse_config
from labrig.errors import ConfigError, ParameterError, SafetyLimitError
from labrig.procedures.spectrum import SpectrumProcedure

NEEDED = (
    "labrig.runner",
    "labrig.bench",
    "labrig.instruments",
    "labrig.simulators.lab",
    "labrig.simulators.keithley2400",
    "labrig.simulators.keithley6485",
    "labrig.simulators.server",
    "labrig.drivers.keithley2400",
    "labrig.drivers.keithley6485",
)
MISSING = [m for m in NEEDED if importlib.util.find_spec(m) is None]
needs_bench = pytest.mark.skipif(
    bool(MISSING), reason=f"simulated bench incomplete: missing {', '.join(MISSING)}"
)
AREA_CM2 = 0.04  # the sim config's device


def config_with(**changes):
    """The shipped sim config with top-level sections updated (dicts merged one level)."""
    data = load_config("sim").model_dump(exclude={"source_text", "source_path"}, mode="json")
    data["device"]["preset"] = None
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return parse_config(data)


def truth_at(config, *, amps=None, volts=None) -> dict[str, float]:
    """Ground truth of a fresh simulated bench at the same drive."""
    from labrig.simulators.physics import CoupledPhysics

    bench = CoupledPhysics(config)
    if amps is not None:
        bench.source_current(amps, 10.0)
    else:
        bench.source_voltage(volts, 0.05)
    return bench.truth()


def run(procedure, config, tmp_path):
    from labrig.runner import run_procedure

    return run_procedure(procedure, config, output_dir=tmp_path, progress=False)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"drive_current": 200.0}, SafetyLimitError, r"drive_current=200 mA exceeds .*100 mA"),
        ({"compliance_voltage": 20.0}, SafetyLimitError, r"compliance_voltage=20 V exceeds"),
        (
            {"source_mode": "voltage", "drive_voltage": 15.0},
            SafetyLimitError,
            r"drive_voltage=15 V exceeds limits.max_voltage_v \(12 V\)",
        ),
        (
            {"source_mode": "voltage", "compliance_current": 0.2},
            SafetyLimitError,
            r"compliance_current=0.2 A exceeds limits.max_current_a \(0.1 A\)",
        ),
        ({"drive_current": 0.0}, ParameterError, "drive_current=0"),
    ],
)
def test_drive_is_checked_against_the_config_limits(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpectrumProcedure(**kwargs).validate(load_config("sim"))


def test_voltage_mode_defaults_to_the_configured_compliance():
    config = load_config("sim")
    assert SpectrumProcedure(source_mode="voltage", drive_voltage=3.5).drive(config) == (
        "voltage",
        3.5,
        config.limits.default_compliance_a,
    )
    assert SpectrumProcedure(drive_current=0.4).drive(config) == ("current", 4e-4, 10.0)


@needs_bench
def test_a_bench_without_a_spectrometer_is_refused_before_anything_is_written(tmp_path):
    data = load_config("sim").model_dump(exclude={"source_text", "source_path"}, mode="json")
    del data["instruments"]["spectrometer"]
    with pytest.raises(ConfigError, match="spectrometer"):
        run(SpectrumProcedure(), parse_config(data), tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ end to end
@needs_bench
def test_spectrum_end_to_end_recovers_the_device_truth(tmp_path):
    config = load_config("sim")
    result = run(SpectrumProcedure(drive_current=0.04), config, tmp_path)  # 1 mA/cm²
    assert result.status == "finished", result.reason
    truth = truth_at(config, amps=0.04e-3)

    with h5py.File(result.path, "r") as f:
        sp = f["entry/spectra"]
        counts, dark = sp["counts"][()], sp["dark"][()]
        wl = sp["wavelength_nm"][()]
        assert counts.shape == (1, 2048) and dark.shape == (1, 2048)
        assert sp["saturated"][()].tolist() == [0] and sp["dark_subtracted"][()].tolist() == [1]
        t_int = float(sp["integration_time_s"][0])
        assert sp["scans_averaged"][()].tolist() == [5]
        # auto-exposed: the peak (dark-subtracted, offset ~0) near 70 % of 65535
        assert counts.max() == pytest.approx(0.7 * 65535, rel=0.12)
        # the dark was taken with the source off: no emission in it
        assert dark[0].max() < 500
        assert 339 < wl[0] < 341 and np.all(np.diff(wl) > 0)

        an = f["entry/analysis"]
        assert an["peak_wavelength"].attrs["units"] == "nm"
        assert an["peak_wavelength"][()] == pytest.approx(truth["peak_nm"], abs=0.3)
        assert an["fwhm"][()] == pytest.approx(truth["fwhm_nm"], abs=0.5)
        assert an["centroid_wavelength"][()] == pytest.approx(truth["peak_nm"], abs=0.3)
        assert an["cie_x"][()] == pytest.approx(truth["cie_x"], abs=2e-3)
        assert an["cie_y"][()] == pytest.approx(truth["cie_y"], abs=2e-3)
        assert 600 < an["dominant_wavelength"][()] < 630
        assert an["color_purity"][()] == pytest.approx(1.0, abs=0.02)
        assert an["white_point"][()].decode().startswith("CIE illuminant E")
        assert an["integration_time"][()] == pytest.approx(t_int)
        assert an["spectral_power_from"][()].decode() == "photon counts"
        assert not an["saturated"][()]

        data = f["entry/data"]
        assert data["voltage"][0] == pytest.approx(truth["voltage_v"], rel=0.01)
        assert data["current"][0] == pytest.approx(0.04e-3, rel=1e-3)
        assert data["current_density"][0] == pytest.approx(1.0, rel=1e-3)
        assert data["current_density"].attrs["units"] == "mA/cm^2"
        # photodiode (dark-subtracted) close to the bench's noise-free photocurrent
        assert data["photodiode_current"][0] == pytest.approx(
            truth["photodiode_signal_a"], rel=0.02
        )
        assert f["entry/instruments/spectrometer"] is not None
    assert result.analysis["peak_wavelength"][1] == "nm"


@needs_bench
def test_spectral_response_calibration_is_used_when_configured(tmp_path):
    from labrig.simulators.spectrometer import write_response_calibration

    path = write_response_calibration(tmp_path / "sim_response.csv")
    config = config_with(
        calibration={"spectral_response_file": str(path)}, simulation={"noise": False}
    )
    out = tmp_path / "runs"
    out.mkdir()
    result = run(SpectrumProcedure(drive_current=0.04), config, out)
    assert result.status == "finished", result.reason
    truth = truth_at(config, amps=0.04e-3)
    figures = result.analysis
    assert figures["spectral_power_from"][0] == "spectral-response calibration"
    # the simulated unit's own response: the power shape is exact, so are the figures
    assert figures["peak_wavelength"][0] == pytest.approx(truth["peak_nm"], abs=0.05)
    assert figures["fwhm"][0] == pytest.approx(truth["fwhm_nm"], abs=0.1)
    assert figures["cie_x"][0] == pytest.approx(truth["cie_x"], abs=2e-4)
    assert figures["cie_y"][0] == pytest.approx(truth["cie_y"], abs=2e-4)


@needs_bench
def test_voltage_drive_and_d65_white_point(tmp_path):
    config = load_config("sim")
    result = run(
        SpectrumProcedure(source_mode="voltage", drive_voltage=3.5, white_point="D65"),
        config,
        tmp_path,
    )
    assert result.status == "finished", result.reason
    truth = truth_at(config, volts=3.5)
    with h5py.File(result.path, "r") as f:
        assert f["entry/data/voltage"][0] == pytest.approx(3.5, abs=1e-3)
        assert f["entry/data/current"][0] == pytest.approx(truth["current_a"], rel=0.05)
        assert f["entry/analysis/white_point"][()].decode().startswith("CIE illuminant D65")
        assert f["entry/analysis/peak_wavelength"][()] == pytest.approx(628.0, abs=0.3)


@needs_bench
def test_saturation_at_the_shortest_time_is_recorded_not_measured(tmp_path):
    config = config_with(simulation={"faults": {"spectrometer": [{"kind": "overrange"}]}})
    result = run(SpectrumProcedure(), config, tmp_path)
    assert result.status == "failed"
    assert "SaturationError" in result.reason and "shortest allowed" in result.reason
    with h5py.File(result.path, "r") as f:
        assert f["entry/spectra/saturated"][()].tolist() == [1]
        an = f["entry/analysis"]
        assert bool(an["saturated"][()])
        assert "peak_wavelength" not in an and "cie_x" not in an
        kinds = [k.decode() for k in f["entry/log/kind"][()]]
        assert "saturation" in kinds
        assert f["entry/status"][()].decode() == "failed"


@needs_bench
def test_without_a_photometer_the_photodiode_column_is_nan(tmp_path):
    data = load_config("sim").model_dump(exclude={"source_text", "source_path"}, mode="json")
    del data["instruments"]["photometer"]
    result = run(SpectrumProcedure(), parse_config(data), tmp_path)
    assert result.status == "finished", result.reason
    with h5py.File(result.path, "r") as f:
        assert np.isnan(f["entry/data/photodiode_current"][0])
        assert "photometer" not in f["entry/instruments"]
        assert f["entry/analysis/peak_wavelength"][()] == pytest.approx(628.0, abs=0.3)


@needs_bench
def test_compliance_current_is_in_amperes_like_every_procedure(tmp_path):
    """50 µA at 3.5 V, where the device draws ~113 µA: the 2400 limits the current to
    what was asked in A (read mA, it would be 50 nA)."""
    config = load_config("sim")
    free = truth_at(config, volts=3.5)["current_a"]
    assert free > 2 * 5e-5
    procedure = SpectrumProcedure(source_mode="voltage", drive_voltage=3.5)
    procedure.compliance_current = 5e-5
    result = run(procedure, config, tmp_path)
    with h5py.File(result.path, "r") as f:
        param = f["entry/parameters/compliance_current"]
        assert (param[()], param.attrs["units"]) == (5e-5, "A")
        assert f["entry/data/compliance"][0] == 1
        assert f["entry/data/current"][0] == pytest.approx(5e-5, rel=0.01)


def test_a_file_from_before_amperes_reads_with_its_own_unit(tmp_path):
    """Files written when spectrum's compliance_current was in mA say so themselves."""
    from click.testing import CliRunner

    from labrig.cli import main
    from labrig.store import RunStore, read_run

    store = RunStore.create(
        tmp_path,
        procedure="spectrum",
        sample="old",
        columns=SpectrumProcedure.COLUMNS,
        signal=SpectrumProcedure.SIGNAL,
        axis=SpectrumProcedure.AXIS,
        parameters={"compliance_current": (0.05, "mA"), "source_mode": ("voltage", "")},
        config_text="name: old\n",
        simulated=True,
    )
    store.close("finished")
    assert read_run(store.path).parameters["compliance_current"] == (0.05, "mA")
    out = CliRunner().invoke(main, ["inspect", str(store.path)])
    assert out.exit_code == 0, out.output
    assert "compliance_current" in out.output and "0.05 mA" in out.output
