"""Spectral figures against hand computations and against colour-science itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labrig.analysis import spectral
from labrig.errors import ConfigError
from labrig.simulators.spectrometer import usb2000plus_wavelengths

GRID = usb2000plus_wavelengths()  # the USB2000+ pixel grid: non-uniform, 340-1034 nm
SIGMA_PER_FWHM = 1 / (2 * math.sqrt(2 * math.log(2)))


def gaussian(wl: np.ndarray, peak: float, fwhm: float, height: float = 1.0) -> np.ndarray:
    sigma = fwhm * SIGMA_PER_FWHM
    return height * np.exp(-0.5 * ((np.asarray(wl) - peak) / sigma) ** 2)


# ------------------------------------------------------------------ peak and width
@pytest.mark.parametrize(
    ("peak", "sigma"), [(476.37, 8.0), (512.81, 9.5), (628.13, 14.0), (650.5, 3.0)]
)
def test_gaussian_peak_fwhm_centroid_integral_on_the_usb2000_grid(peak, sigma):
    s = 3000.0 * np.exp(-0.5 * ((GRID - peak) / sigma) ** 2)
    assert spectral.peak_wavelength(GRID, s) == pytest.approx(peak, abs=0.02)
    # FWHM = 2√(2 ln 2)σ
    assert spectral.fwhm(GRID, s) == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sigma, abs=0.1)
    assert spectral.centroid(GRID, s) == pytest.approx(peak, abs=0.05)
    # ∫ A exp(-x²/2σ²) dx = Aσ√(2π)
    assert spectral.integrated_intensity(GRID, s) == pytest.approx(
        3000.0 * sigma * math.sqrt(2 * math.pi), rel=1e-4
    )


@settings(max_examples=40, deadline=None)
@given(
    peak=st.floats(min_value=420.0, max_value=900.0),
    fwhm=st.floats(min_value=5.0, max_value=80.0),
    height=st.floats(min_value=1e-3, max_value=1e6),
)
def test_any_gaussian_on_the_usb2000_grid(peak, fwhm, height):
    s = gaussian(GRID, peak, fwhm, height)
    assert spectral.peak_wavelength(GRID, s) == pytest.approx(peak, abs=0.05)
    assert spectral.fwhm(GRID, s) == pytest.approx(fwhm, abs=0.1)


def test_peak_and_fwhm_of_an_asymmetric_coarse_spectrum_by_hand():
    wl = np.array([500.0, 510.0, 520.0, 530.0, 540.0])
    s = np.array([0.0, 0.2, 1.0, 0.6, 0.0])
    # parabola through (-10, .2), (0, 1), (10, .6): a = -0.006, b = 0.02 -> vertex at
    # x0 = 5/3 nm, height 1 + 0.02·x0 - 0.006·x0² = 1.0166667
    x0 = 5 / 3
    height = 1 + 0.02 * x0 - 0.006 * x0**2
    assert spectral.peak_wavelength(wl, s) == pytest.approx(520 + x0, abs=1e-9)
    half = height / 2
    left = 510 + 10 * (half - 0.2) / 0.8  # between 510 nm (0.2) and 520 nm (1.0)
    right = 530 + 10 * (0.6 - half) / 0.6  # between 530 nm (0.6) and 540 nm (0.0)
    assert spectral.fwhm(wl, s) == pytest.approx(right - left, abs=1e-9)
    assert right - left == pytest.approx(17.67361, abs=1e-5)


def test_grid_order_does_not_matter_and_noise_is_tolerated():
    rng = np.random.default_rng(3)
    s = gaussian(GRID, 628.0, 33.0, 40000.0) + rng.normal(0, 8.0, GRID.size)
    fwd = spectral.analyze_spectrum(GRID, s)
    rev = spectral.analyze_spectrum(GRID[::-1], s[::-1])
    assert fwd == rev
    assert fwd.peak_nm == pytest.approx(628.0, abs=0.1)
    assert fwd.fwhm_nm == pytest.approx(33.0, abs=0.1)


def test_a_peak_running_off_the_grid_has_no_fwhm():
    s = gaussian(GRID, 1040.0, 30.0)
    with pytest.raises(ValueError, match="long-wavelength side"):
        spectral.fwhm(GRID, s)


@pytest.mark.parametrize(
    "values", [np.zeros(10), np.full(10, np.nan)], ids=["no signal", "nan values"]
)
def test_unusable_spectra_are_refused(values):
    with pytest.raises(ValueError):
        spectral.analyze_spectrum(np.linspace(400, 700, 10), values)


# ------------------------------------------------------------------------- colour
@pytest.mark.filterwarnings("ignore::colour.utilities.ColourRuntimeWarning")
@pytest.mark.parametrize(("peak", "fwhm"), [(475.0, 20.0), (512.0, 22.0), (628.0, 33.0)])
def test_chromaticity_agrees_with_colour_science(peak, fwhm):
    import colour

    x, y = spectral.chromaticity_xy(GRID, gaussian(GRID, peak, fwhm))
    # colour-science on its own 1 nm grid, built from the analytic line shape
    grid = np.arange(360.0, 831.0)
    sd = colour.SpectralDistribution(gaussian(grid, peak, fwhm), grid)
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    ref = colour.XYZ_to_xy(colour.sd_to_XYZ(sd, cmfs))
    assert x == pytest.approx(ref[0], abs=1e-4)
    assert y == pytest.approx(ref[1], abs=1e-4)


def test_default_white_point_is_equal_energy_and_d65_is_available():
    import colour
    from colour.colorimetry import excitation_purity

    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    x, y = spectral.chromaticity_xy(GRID, gaussian(GRID, 512.0, 22.0))
    for name, xy_n in (("E", (1 / 3, 1 / 3)), ("D65", (0.3127, 0.3290))):
        wl, purity = spectral.dominant_wavelength(x, y, name)
        ref_wl = float(colour.dominant_wavelength((x, y), xy_n, cmfs)[0])
        assert wl == pytest.approx(ref_wl, abs=0.5)  # colour snaps to its 1 nm table
        assert purity == pytest.approx(float(excitation_purity((x, y), xy_n, cmfs)), abs=1e-6)
    assert spectral.dominant_wavelength(x, y) == spectral.dominant_wavelength(x, y, "E")
    e_wl, e_p = spectral.dominant_wavelength(x, y, "E")
    d_wl, d_p = spectral.dominant_wavelength(x, y, "D65")
    assert abs(e_wl - d_wl) > 0.1 and abs(e_p - d_p) > 1e-3  # the choice matters
    with pytest.raises(ValueError, match="white point"):
        spectral.dominant_wavelength(x, y, "D50")  # type: ignore[arg-type]


def test_dominant_wavelength_and_purity_by_hand():
    import colour

    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    # a (nearly) monochromatic line lies on the locus: dominant = its wavelength, purity 1
    wl, purity = spectral.dominant_wavelength(
        *spectral.chromaticity_xy(GRID, gaussian(GRID, 550.4, 0.5))
    )
    assert wl == pytest.approx(550.4, abs=0.3)
    assert purity == pytest.approx(1.0, abs=0.01)
    # halfway from E to the 520 nm locus point: dominant 520 nm, purity 0.5
    locus = np.asarray(colour.XYZ_to_xy(cmfs[520.0]))
    mid = 0.5 * locus + 0.5 * np.array([1 / 3, 1 / 3])
    wl, purity = spectral.dominant_wavelength(*mid)
    assert wl == pytest.approx(520.0, abs=0.05)
    assert purity == pytest.approx(0.5, abs=1e-6)


def test_luminous_efficacy_of_a_555_nm_line_is_683_lm_per_w():
    k = spectral.luminous_efficacy_of_radiation(GRID, gaussian(GRID, 555.0, 1.0))
    assert k == pytest.approx(683.0, rel=2e-3)
    red = spectral.luminous_efficacy_of_radiation(GRID, gaussian(GRID, 628.0, 33.0))
    assert 80 < red < 250  # a deep-red line is a poor lumen source


def test_analysis_figures_name_units_and_white_point():
    figures = spectral.analyze_spectrum(GRID, gaussian(GRID, 628.0, 33.0)).as_analysis()
    assert figures["peak_wavelength"][1] == "nm" and figures["fwhm"][1] == "nm"
    assert figures["white_point"][0].startswith("CIE illuminant E")
    assert set(figures) >= {"cie_x", "cie_y", "dominant_wavelength", "color_purity"}


# ------------------------------------------------------- spectral-response calibration
def test_response_calibration_turns_counts_into_relative_power(tmp_path):
    path = tmp_path / "response.csv"
    wl = np.linspace(300.0, 1100.0, 81)
    response = 0.2 + wl / 1100.0  # a detector more sensitive in the red
    np.savetxt(path, np.column_stack([wl, response]), delimiter=",", header="nm,rel")
    cal = spectral.SpectralResponse.from_csv(path)
    power = gaussian(GRID, 600.0, 40.0)
    counts = 123.0 * power * np.interp(GRID, wl, response)
    out = cal.apply(GRID, counts)
    assert out.max() == pytest.approx(1.0)
    np.testing.assert_allclose(out, power / power.max(), atol=1e-3)


def test_response_calibration_that_does_not_cover_the_spectrum_is_refused(tmp_path):
    path = tmp_path / "narrow.csv"
    np.savetxt(path, [[400.0, 1.0], [600.0, 1.0]], delimiter=",")
    cal = spectral.SpectralResponse.from_csv(path)
    with pytest.raises(ConfigError, match=r"covers 400-600 nm but the spectrum extends"):
        cal.apply(GRID, gaussian(GRID, 628.0, 33.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("400,1\n", "at least two rows"),
        ("400,1,2\n500,1,2\n", "two numeric columns"),
        ("500,1\n400,1\n", "increase strictly"),
        ("400,1\n500,-1\n", "positive"),
    ],
)
def test_bad_response_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        spectral.SpectralResponse.from_csv(path)
    with pytest.raises(ConfigError, match="file not found"):
        spectral.SpectralResponse.from_csv(tmp_path / "missing.csv")
