"""The simulated USB2000+: seabreeze's API, the ILX511B detector model, and the shared
bench's light (EL at the present operating point, nothing with the source off)."""

from __future__ import annotations

import numpy as np
import pytest
from seabreeze.spectrometers import SeaBreezeError

from labrig.analysis import spectral
from labrig.simulators import spectrometer as simspec
from labrig.simulators.physics import CoupledPhysics
from labrig.simulators.spectrometer import SimulatedSpectrometer

AREA_CM2 = 0.04  # the sim config's red CsPbI3 pixel


@pytest.fixture
def bench(sim_config):
    return CoupledPhysics(sim_config)


@pytest.fixture
def spec(bench):
    return SimulatedSpectrometer(bench)


def fresh(spec: SimulatedSpectrometer, micros: int, *corrections: bool) -> np.ndarray:
    """Set the integration time and return the first non-stale frame."""
    spec.integration_time_micros(micros)
    spec.intensities()
    return spec.intensities(*corrections)


def test_seabreeze_api_surface(spec):
    assert spec.model == "USB2000PLUS" and spec.serial_number == "SIM2K0001"
    assert spec.pixels == 2048 and spec.max_intensity == 65535.0
    assert spec.integration_time_micros_limits == (1000, 65_000_000)
    assert spec.features["nonlinearity_coefficients"]
    assert repr(spec) == "<Spectrometer USB2000PLUS:SIM2K0001>"
    wl = spec.wavelengths()
    assert wl.shape == (2048,) and np.all(np.diff(wl) > 0)
    assert wl[0] == pytest.approx(339.9) and 1025 < wl[-1] < 1040
    # third-order polynomial: the dispersion falls across the detector (0.37 -> 0.30 nm)
    np.testing.assert_allclose(
        np.polyfit(np.arange(2048.0), wl, 3)[::-1], simspec.WAVELENGTH_COEFFICIENTS, rtol=1e-6
    )
    assert np.diff(wl)[0] == pytest.approx(0.373, abs=0.002)
    assert np.diff(wl)[-1] == pytest.approx(0.303, abs=0.002)
    wl_full, counts = spec.spectrum()
    np.testing.assert_array_equal(wl_full, wl)
    assert counts.shape == (2048,)
    with pytest.raises(SeaBreezeError):
        SimulatedSpectrometer.from_serial_number("SIM2K0001")


def test_integration_time_limits_are_the_devices(spec):
    for bad in (999, 65_000_001):
        with pytest.raises(SeaBreezeError, match="out of range"):
            spec.integration_time_micros(bad)
    spec.integration_time_micros(1000)
    spec.integration_time_micros(65_000_000)


def test_source_off_gives_only_dark_growing_with_integration_time(spec):
    short = np.array([fresh(spec, 1000) for _ in range(20)])
    long = np.array([fresh(spec, 10_000_000) for _ in range(5)])
    optical = np.ones(2048, bool)
    optical[6:22] = False
    # offset ~1500 counts plus thermal dark 200 counts/s
    assert short.mean() == pytest.approx(simspec.DARK_OFFSET_COUNTS + 0.2, abs=1.0)
    assert long.mean() - short.mean() == pytest.approx(2000.0, rel=0.05)
    # noise: read noise at 1 ms; dark shot noise added at 10 s (sqrt(2000 e-) ≈ 45)
    assert np.std(short - short.mean(0), axis=0).mean() == pytest.approx(6.0, rel=0.15)
    assert np.std(long - long.mean(0), axis=0).mean() == pytest.approx(
        np.sqrt(6.0**2 + 2000.0), rel=0.2
    )
    # a fixed per-pixel dark pattern that the stored dark removes
    assert np.std(long.mean(0)[optical]) > 100


def test_el_follows_the_device_at_its_operating_point(bench, spec):
    bench.source_current(1e-3 * AREA_CM2, 10.0)  # 1 mA/cm²
    counts = fresh(spec, 100_000, True, True)
    wl = spec.wavelengths()
    truth = bench.truth()
    # power spectral density is counts over the simulated unit's own response
    power = counts / simspec.counts_per_w_nm_s(wl)
    assert spectral.peak_wavelength(wl, power) == pytest.approx(truth["peak_nm"], abs=0.3)
    assert spectral.fwhm(wl, power) == pytest.approx(truth["fwhm_nm"], abs=0.5)
    # counts = flux × counts/(W/nm·s) × t: the spectral integral gives the optical power
    flux = spectral.integrated_intensity(wl, power / 0.1)
    assert flux == pytest.approx(truth["optical_power_w"], rel=0.02)
    # the electric-dark pixels are masked: no light even while the device shines
    assert abs(counts[6:22].mean()) < 5
    bench.output_off()
    assert fresh(spec, 100_000, True, True).max() < 100  # nothing but dark


def test_counts_scale_with_integration_time_after_nonlinearity_correction(bench, spec):
    bench.source_current(1e-3 * AREA_CM2, 10.0)  # ~24000 counts peak at 70 ms
    a_lin = fresh(spec, 70_000, True, True)
    b_lin = fresh(spec, 140_000, True, True)
    a_raw = fresh(spec, 70_000, True, False)
    b_raw = fresh(spec, 140_000, True, False)
    peak = np.argmax(b_lin)
    window = slice(peak - 20, peak + 20)
    assert b_lin[window].sum() / a_lin[window].sum() == pytest.approx(2.0, rel=0.01)
    # uncorrected, the sensor reads low near full scale: the ratio falls short of 2
    assert b_raw[window].sum() / a_raw[window].sum() < 1.985


def test_first_spectrum_after_a_change_is_stale(bench, spec):
    bench.source_current(1e-3 * AREA_CM2, 10.0)
    fresh(spec, 10_000, True, True)
    t0 = bench.clock.time()
    spec.integration_time_micros(100_000)
    stale = spec.intensities(True, True)
    assert bench.clock.time() - t0 == pytest.approx(0.010)  # it was integrating at 10 ms
    good = spec.intensities(True, True)
    assert bench.clock.time() - t0 == pytest.approx(0.110)
    assert good.max() / stale.max() == pytest.approx(10.0, rel=0.05)
    spec.integration_time_micros(100_000)  # unchanged: nothing stale
    assert spec.intensities(True, True).max() == pytest.approx(good.max(), rel=0.05)


def test_saturation_clips_at_full_scale(bench, spec):
    bench.source_current(3e-3 * AREA_CM2, 10.0)
    raw = fresh(spec, 2_000_000)
    assert raw.max() == 65535.0
    assert np.sum(raw == 65535.0) > 50


def test_seeded_noise_is_reproducible_and_can_be_off(sim_config):
    a = SimulatedSpectrometer(CoupledPhysics(sim_config))
    b = SimulatedSpectrometer(CoupledPhysics(sim_config))
    np.testing.assert_array_equal(a.intensities(), b.intensities())
    quiet = sim_config.model_copy(
        update={"simulation": sim_config.simulation.model_copy(update={"noise": False})}
    )
    c = SimulatedSpectrometer(CoupledPhysics(quiet))
    np.testing.assert_array_equal(c.intensities(), c.intensities())


@pytest.mark.parametrize(
    ("kind", "message"),
    [("timeout", "timed out"), ("disconnect", "disconnected")],
)
def test_transport_faults_raise_seabreeze_errors(spec, kind, message):
    spec.inject_fault(kind, after=2)
    spec.intensities()
    spec.intensities()
    with pytest.raises(SeaBreezeError, match=message):
        spec.intensities()
    spec.clear_faults()
    assert spec.intensities().shape == (2048,)


def test_garbled_and_overrange_faults(spec):
    spec.inject_fault("garbled")
    assert spec.intensities().shape == (1024,)
    spec.clear_faults()
    spec.inject_fault("overrange")
    assert np.sum(spec.intensities() == 65535.0) > 2000


def test_faults_from_the_config_and_closing(bench):
    from labrig.config import FaultSpec

    spec = SimulatedSpectrometer(
        bench, serial_number="SIM2K0009", faults=[FaultSpec(kind="timeout")]
    )
    assert spec.serial_number == "SIM2K0009"
    with pytest.raises(SeaBreezeError):
        spec.intensities()
    with pytest.raises(ValueError, match="not supported"):
        spec.inject_fault("short")
    spec.close()
    with pytest.raises(SeaBreezeError, match="not open"):
        spec.integration_time_micros(2000)


def test_response_calibration_file_matches_the_simulated_unit(tmp_path):
    path = simspec.write_response_calibration(tmp_path / "sim_response.csv")
    cal = spectral.SpectralResponse.from_csv(path)
    wl = simspec.usb2000plus_wavelengths()
    expected = simspec.counts_per_w_nm_s(wl)
    np.testing.assert_allclose(
        np.interp(wl, cal.wavelength_nm, cal.response), expected / expected.max(), rtol=1e-4
    )
