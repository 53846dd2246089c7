"""Photometry (Forrest, Bradley & Thompson 2003) against hand numbers and quad integrals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from labrig.analysis import photometry as ph
from labrig.analysis.optics import gaussian_spectrum
from labrig.config import load_config, parse_config
from labrig.errors import ConfigError

TABLE_NM = np.array([400, 450, 470, 500, 520, 550, 600, 628, 650, 700, 800], float)
TABLE_R = np.array([0.19, 0.24, 0.26, 0.29, 0.31, 0.34, 0.40, 0.43, 0.46, 0.51, 0.60])
H, C, Q = 6.62607015e-34, 299792458.0, 1.602176634e-19


def _narrow(peak_nm: float):
    wl = np.arange(peak_nm - 2, peak_nm + 2, 0.001)
    return wl, gaussian_spectrum(wl, peak_nm, 0.05)


def test_narrow_line_at_555_by_hand():
    wl, s = _narrow(555.0)
    f = ph.spectral_factors(wl, s, TABLE_NM, TABLE_R)
    r_555 = 0.34 + 5 / 50 * (0.40 - 0.34)  # linear between the 550 and 600 nm rows
    assert f.responsivity_a_per_w == pytest.approx(r_555, rel=1e-4)
    assert f.luminous_efficacy_lm_per_w == pytest.approx(683.0, rel=1e-4)  # V(555) = 1
    assert f.mean_photon_energy_j == pytest.approx(H * C / 555e-9, rel=1e-6)

    # 1 µA on a 5 mm radius photodiode 20 mm away; 0.04 cm² pixel at 1 mA, 4 V
    i_pd, current, volts, area = 1e-6, 1e-3, 4.0, 0.04e-4
    fc = 25 / 425
    res = ph.photometry(i_pd, current, volts, f, fc, area)
    power = i_pd / (fc * r_555)  # = 4.9133e-5 W
    assert power == pytest.approx(4.9133e-5, rel=1e-4)
    photons = power / (H * C / 555e-9)
    lum = 683.0 * power / (np.pi * area)
    assert res.optical_power_w == pytest.approx(power, rel=1e-4)
    assert res.photon_flux_per_s == pytest.approx(photons, rel=1e-4)
    assert res.eqe == pytest.approx(photons * Q / current, rel=1e-4)
    assert res.eqe == pytest.approx(0.021994, rel=1e-3)  # 2.2 %
    assert res.luminance_cd_m2 == pytest.approx(lum, rel=1e-4)
    assert res.luminance_cd_m2 == pytest.approx(2670.3, rel=1e-3)
    assert res.radiance_w_sr_m2 == pytest.approx(power / (np.pi * area), rel=1e-9)
    assert res.current_efficiency_cd_a == pytest.approx(lum * area / current, rel=1e-4)
    assert res.power_efficiency_lm_w == pytest.approx(
        np.pi * lum * area / current / volts, rel=1e-4
    )


def test_luminance_correction_scales_photometric_quantities_only():
    wl, s = _narrow(628.0)
    f = ph.spectral_factors(wl, s, TABLE_NM, TABLE_R)
    a = ph.photometry(1e-7, 1e-4, 3.0, f, 0.05, 4e-6)
    b = ph.photometry(1e-7, 1e-4, 3.0, f, 0.05, 4e-6, luminance_correction=1.25)
    assert b.luminance_cd_m2 == pytest.approx(1.25 * a.luminance_cd_m2)
    assert b.current_efficiency_cd_a == pytest.approx(1.25 * a.current_efficiency_cd_a)
    assert b.power_efficiency_lm_w == pytest.approx(1.25 * a.power_efficiency_lm_w)
    assert b.eqe == a.eqe and b.optical_power_w == a.optical_power_w


def test_broad_spectrum_matches_independent_quad_integrals():
    peak, fwhm = 520.0, 40.0
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))

    def s(x):
        return np.exp(-0.5 * ((x - peak) / sigma) ** 2)

    def r(x):
        return np.interp(x, TABLE_NM, TABLE_R)

    import colour

    v_sd = colour.colorimetry.SDS_LEFS_PHOTOPIC["CIE 1924 Photopic Standard Observer"]

    def v(x):
        return np.interp(x, v_sd.wavelengths, v_sd.values)

    lo, hi = 400.0, 700.0
    kw = {"limit": 400, "points": list(TABLE_NM[(TABLE_NM > lo) & (TABLE_NM < hi)])}
    total = quad(s, lo, hi, **kw)[0]
    r_bar = quad(lambda x: r(x) * s(x), lo, hi, **kw)[0] / total
    e_bar = total / quad(lambda x: s(x) * x * 1e-9 / (H * C), lo, hi, **kw)[0]
    knots = list(np.arange(lo + 1, hi, 1.0))  # V(λ) is tabulated every nm
    k = 683.0 * quad(lambda x: v(x) * s(x), lo, hi, points=knots, limit=2000)[0] / total

    wl = np.arange(lo, hi, 0.1)
    f = ph.spectral_factors(wl, 3.7 * s(wl), TABLE_NM, TABLE_R)  # scale must not matter
    assert f.responsivity_a_per_w == pytest.approx(r_bar, rel=1e-4)
    assert f.mean_photon_energy_j == pytest.approx(e_bar, rel=1e-5)
    assert f.luminous_efficacy_lm_per_w == pytest.approx(k, rel=1e-4)


def test_vectorised_over_steps_with_per_step_spectra():
    wl = np.arange(400.0, 800.0, 0.2)
    spectra = np.vstack([gaussian_spectrum(wl, p, 30) for p in (470, 520, 628)])
    f = ph.spectral_factors(wl, spectra, TABLE_NM, TABLE_R)
    assert f.responsivity_a_per_w.shape == (3,)
    idx = np.array([2, 2, 0, 1])
    fs = f.take(idx)
    i_pd = np.array([1e-9, 1e-8, 1e-7, 1e-6])
    cur = np.array([1e-6, 1e-5, 1e-4, 0.0])
    res = ph.photometry(i_pd, cur, np.array([2.0, 3.0, 4.0, 5.0]), fs, 0.05, 4e-6)
    for k in range(3):
        one = ph.photometry(i_pd[k], cur[k], [2.0, 3.0, 4.0][k], f.take(idx[k]), 0.05, 4e-6)
        assert res.eqe[k] == pytest.approx(one.eqe)
        assert res.luminance_cd_m2[k] == pytest.approx(one.luminance_cd_m2)
    assert np.isnan(res.eqe[3]) and np.isnan(res.current_efficiency_cd_a[3])
    # green is seen brighter than red at equal photodiode current and drive
    assert fs.luminous_efficacy_lm_per_w[3] > fs.luminous_efficacy_lm_per_w[0]


def test_spectrum_outside_responsivity_table_is_a_config_error():
    wl = np.arange(300.0, 500.0, 0.5)
    with pytest.raises(ConfigError, match="outside"):
        ph.spectral_factors(wl, gaussian_spectrum(wl, 380, 20), TABLE_NM, TABLE_R)
    with pytest.raises(ConfigError, match="no positive signal"):
        ph.spectral_factors(wl, np.zeros_like(wl), TABLE_NM, TABLE_R)


def test_reference_spectrum_from_calibration_or_device():
    cfg = load_config("sim")
    wl, s = ph.reference_spectrum(cfg)  # red preset: 628 nm, 33 nm
    assert wl[np.argmax(s)] == pytest.approx(628, abs=0.25)
    data = cfg.model_dump(exclude={"source_text", "source_path"})
    data["calibration"]["reference_peak_nm"] = 515.0
    data["calibration"]["reference_fwhm_nm"] = 20.0
    wl, s = ph.reference_spectrum(parse_config(data))
    assert wl[np.argmax(s)] == pytest.approx(515, abs=0.25)
    data["calibration"]["reference_peak_nm"] = None
    data["calibration"]["reference_fwhm_nm"] = None
    data["device"]["model"] = None
    with pytest.raises(ConfigError, match="reference_peak_nm"):
        ph.reference_spectrum(parse_config(data))


def test_nearest_spectrum_in_log_current_density():
    steps = np.array([0.0, 1e-6, 3e-4, 2e-3, 0.1])
    spectra_j = np.array([1e-4, 1e-3, 1e-2])
    assert list(ph.nearest_spectrum(steps, spectra_j)) == [0, 0, 0, 1, 2]


def test_power_shape_from_photon_counts_on_a_nonuniform_grid():
    p = np.arange(2048.0)
    wl = 339.9 + 0.3735 * p - 1.65e-5 * p**2 - 2.0e-10 * p**3  # a USB2000+-like grid
    power = gaussian_spectrum(wl, 628.0, 33.0)
    counts = power * np.gradient(wl) / (H * C / (wl * 1e-9))  # photons per pixel
    shape = ph.power_shape_from_counts(wl, counts)
    ratio = shape[power > 1e-3 * power.max()] / power[power > 1e-3 * power.max()]
    assert np.ptp(ratio) / ratio.mean() < 1e-9


def test_emission_band_drops_the_noise_floor_and_keeps_the_line():
    rng = np.random.default_rng(3)
    wl = np.arange(340.0, 1030.0, 0.34)
    line = 3000 * gaussian_spectrum(wl, 628.0, 33.0) / gaussian_spectrum(wl, 628, 33).max()
    noisy = line + rng.normal(0, 6.0, wl.size)
    band = ph.emission_band(wl, noisy)
    kept = band != 0
    assert wl[kept].min() < 628 - 33 and wl[kept].max() > 628 + 33
    assert wl[kept].max() - wl[kept].min() < 300  # the rest of the 700 nm range is gone
    from labrig.analysis.optics import spectral_integral

    clean = spectral_integral(wl, line)
    assert spectral_integral(wl, band) == pytest.approx(clean, rel=5e-3)


def _recorded(counts, saturated=False):
    from labrig.interfaces import Spectrum

    wl = np.arange(340.0, 1030.0, 0.34)
    return Spectrum(wl, counts(wl), 0.1, saturated=saturated, dark_subtracted=True)


def test_one_step_on_floats_is_bit_for_bit_the_vectorised_step():
    """A J-V-L step or a lifetime sample goes through on floats (no arrays): every figure
    must equal, exactly, what the vectorised path gives for that step, NaN included."""
    bp = ph.BenchPhotometry(load_config("sim"))
    f = bp.reference
    i_pd = np.array([3.7e-8, 1e-9, 2e-7])
    cur = np.array([1.3e-4, 0.0, 2e-3])
    volts = np.array([3.1, 1.0, 0.0])
    rows = bp.apply(i_pd, cur, volts, f)
    for k in range(3):
        one = bp.apply(float(i_pd[k]), float(cur[k]), float(volts[k]), f)
        for name in vars(one):
            value = getattr(one, name)
            assert isinstance(value, float) and not isinstance(value, np.ndarray), name
            np.testing.assert_array_equal(value, getattr(rows, name)[k], err_msg=name)
        assert bp.luminance(float(i_pd[k]), f) == rows.luminance_cd_m2[k]
    assert np.isnan(bp.apply(1e-9, 0.0, 1.0, f).eqe)


def test_bench_photometry_applies_the_configured_calibration():
    cfg = load_config("sim")
    bp = ph.BenchPhotometry(cfg)
    assert bp.collection_factor == pytest.approx(25 / 425)
    assert bp.area_m2 == pytest.approx(0.04e-4)
    wl, s = ph.reference_spectrum(cfg)
    direct = ph.spectral_factors(wl, s, TABLE_NM, TABLE_R)
    assert bp.reference.responsivity_a_per_w == pytest.approx(direct.responsivity_a_per_w)
    res = bp.apply(1e-7, 1e-4, 3.0, bp.reference)
    by_hand = ph.photometry(1e-7, 1e-4, 3.0, direct, 25 / 425, 4e-6, 1.0)
    assert res.luminance_cd_m2 == pytest.approx(by_hand.luminance_cd_m2)
    data = cfg.model_dump(exclude={"source_text", "source_path"})
    data["calibration"]["luminance_correction"] = 1.1
    bp2 = ph.BenchPhotometry(parse_config(data))
    corrected = bp2.apply(1e-7, 1e-4, 3.0, bp2.reference)
    raw = bp2.apply(1e-7, 1e-4, 3.0, bp2.reference, corrected=False)
    assert corrected.luminance_cd_m2 == pytest.approx(1.1 * raw.luminance_cd_m2)
    assert corrected.eqe == pytest.approx(raw.eqe)


def test_recorded_spectra_usable_only_when_strong_and_unsaturated():
    rng = np.random.default_rng(0)
    cfg = load_config("sim")
    bp = ph.BenchPhotometry(cfg)

    def line(peak):
        return lambda wl: (
            peak * np.exp(-0.5 * ((wl - 628) / 14.0) ** 2) + rng.normal(0, 10, wl.size)
        )

    assert bp.recorded(_recorded(line(500.0))) is None  # SNR 50
    assert bp.recorded(_recorded(line(30000.0), saturated=True)) is None
    wl, shape = bp.recorded(_recorded(line(30000.0)))
    assert wl[np.argmax(shape)] == pytest.approx(628, abs=1)
    f = bp.factors(wl, shape)
    assert f.responsivity_a_per_w == pytest.approx(bp.reference.responsivity_a_per_w, rel=2e-3)
