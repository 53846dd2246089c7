"""J–V–L headline figures on synthetic sweeps whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from labrig.analysis.jvl import analyze_jvl, crossing, first_branch


def _sweep(v: np.ndarray):
    """A device whose L = 10^(2(V-2.3)) cd/m² (1 cd/m² at exactly 2.3 V, straight in log L),
    J = 10^(V-6) A/cm² and EQE piecewise linear in log J: 0 below 1e-5 A/cm², peak 0.2 at
    1e-3 A/cm², 0.05 at 1e-1 A/cm² (half peak at 1e-2 A/cm²)."""
    lum = 10 ** (2 * (v - 2.3))
    j_a_cm2 = 10 ** (v - 6)
    eqe = np.interp(np.log10(j_a_cm2), [-5, -3, -1], [0.0, 0.2, 0.05])
    current_a = j_a_cm2 * 0.04
    ce = lum * 4e-6 / current_a
    with np.errstate(divide="ignore"):
        pe = np.where(v > 0, np.pi * ce / v, np.nan)
    return v, j_a_cm2 * 1e4, lum, eqe, ce, pe


def test_figures_of_a_known_sweep():
    v = np.round(np.arange(0.0, 6.01, 0.1), 10)
    v, j, lum, eqe, ce, pe = _sweep(v)
    res = analyze_jvl(v, j, lum, eqe, ce, pe)
    f = res.figures
    assert f["turn_on_voltage"] == (pytest.approx(2.3, abs=1e-9), "V")
    assert f["max_luminance"][0] == pytest.approx(10 ** (2 * 3.7))
    assert f["voltage_at_max_luminance"] == (pytest.approx(6.0), "V")
    assert f["peak_eqe"] == (pytest.approx(20.0), "%")
    # peak at J = 1e-3 A/cm² = 1 mA/cm², reached at V = 3.0
    assert f["current_density_at_peak_eqe"] == (pytest.approx(1.0), "mA/cm^2")
    assert f["voltage_at_peak_eqe"][0] == pytest.approx(3.0)
    # half peak (0.1) at log J = -3 + 2*(0.1/0.15) -> J = 10^(-1.6667) A/cm²
    j_half = 10 ** (-3 + 2 * (0.1 / 0.15))
    assert f["current_density_at_half_peak_eqe"][0] == pytest.approx(j_half * 1e3, rel=1e-6)
    # L = 100 at V = 3.3 (J = 10^-2.7): EQE = 0.2 - 0.15 * 0.3 / 2
    assert f["eqe_at_100_cd_m2"][0] == pytest.approx((0.2 - 0.15 * 0.15) * 100, rel=1e-6)
    assert f["eqe_at_1000_cd_m2"][0] == pytest.approx((0.2 - 0.15 * 0.4) * 100, rel=1e-6)
    assert f["peak_current_efficiency"][0] == pytest.approx(np.nanmax(ce))
    assert f["peak_power_efficiency"] == (pytest.approx(np.nanmax(pe)), "lm/W")
    assert any("no spectrum" in n for n in res.notes)


def test_unreached_figures_are_absent_and_said_so():
    v = np.round(np.arange(0.0, 3.21, 0.1), 10)  # stops below 100 cd/m² and before roll-off
    res = analyze_jvl(*_sweep(v))
    for name in ("eqe_at_100_cd_m2", "eqe_at_1000_cd_m2", "current_density_at_half_peak_eqe"):
        assert name not in res.figures
        assert any(n.startswith(name) for n in res.notes)
    assert "turn_on_voltage" in res.figures
    dim = analyze_jvl(*_sweep(np.round(np.arange(0.0, 2.21, 0.1), 10)))
    assert "turn_on_voltage" not in dim.figures
    assert any("never rose through 1 cd/m²" in n for n in dim.notes)


def test_return_branch_does_not_move_turn_on():
    up = np.round(np.arange(0.0, 5.01, 0.1), 10)
    v = np.concatenate([up, up[::-1][1:]])
    v, j, lum, eqe, ce, pe = _sweep(v)
    lum = lum.copy()
    lum[len(up) :] *= 0.5  # degraded on the way back
    res = analyze_jvl(v, j, lum, eqe, ce, pe)
    assert res.figures["turn_on_voltage"][0] == pytest.approx(2.3)
    assert list(first_branch(v)) == list(range(len(up)))


def test_reverse_only_sweep_is_read_in_increasing_voltage():
    v = np.round(np.arange(5.0, -0.01, -0.1), 10)
    res = analyze_jvl(*_sweep(v))
    assert res.figures["turn_on_voltage"][0] == pytest.approx(2.3)


def test_crossing_linear_and_edge_cases():
    assert crossing([0, 1, 2], [0, 5, 10], 7.5, log_y=False) == pytest.approx(1.5)
    assert crossing([0, 1], [2, 3], 1.0) is None  # already above at the first point
    assert crossing([0, 1], [0.1, 0.2], 1.0) is None
    assert crossing([0, 1, 2], [-1e-3, 0.5, 2.0], 1.0) == pytest.approx(1.5)
    assert crossing([0, 1, 2], [-1e-3, 2.0, 3.0], 1.0) == pytest.approx(1.0)


def test_nan_eqe_at_zero_current_is_ignored():
    v = np.round(np.arange(0.0, 6.01, 0.1), 10)
    v, j, lum, eqe, ce, pe = _sweep(v)
    eqe = eqe.copy()
    eqe[0] = np.nan
    assert analyze_jvl(v, j, lum, eqe, ce, pe).figures["peak_eqe"][0] == pytest.approx(20.0)


def test_el_figures_at_peak_from_the_spectrum():
    pytest.importorskip("labrig.analysis.spectral", reason="labrig/analysis/spectral.py (H5)")
    import colour

    from labrig.analysis.optics import gaussian_spectrum

    wl = np.arange(360.0, 781.0, 1.0)  # the CIE 1931 table range in colour-science
    s = gaussian_spectrum(wl, 628.0, 33.0)
    v = np.round(np.arange(0.0, 6.01, 0.1), 10)
    res = analyze_jvl(*_sweep(v), spectrum_at_peak=(wl, 1000 * s))
    sd = colour.SpectralDistribution(dict(zip(wl, s, strict=True)))
    xy = colour.XYZ_to_xy(colour.sd_to_XYZ(sd))
    f = res.figures
    assert f["el_peak_wavelength"] == (pytest.approx(628.0, abs=0.05), "nm")
    assert f["el_fwhm"] == (pytest.approx(33.0, abs=0.1), "nm")
    assert f["cie_x"][0] == pytest.approx(xy[0], abs=1e-3)
    assert f["cie_y"][0] == pytest.approx(xy[1], abs=1e-3)


def test_steps_without_measurable_light_take_no_part_in_efficiencies():
    v = np.round(np.arange(0.0, 6.01, 0.1), 10)
    v, j, lum, eqe, ce, pe = _sweep(v)
    eqe, ce, pe = eqe.copy(), ce.copy(), pe.copy()
    eqe[1], ce[1], pe[1] = 0.7, 1e4, 1e4  # noise over a tiny current at 0.1 V
    measurable = lum > 1e-3
    f = analyze_jvl(v, j, lum, eqe, ce, pe, measurable=measurable).figures
    assert f["peak_eqe"][0] == pytest.approx(20.0)
    assert f["peak_current_efficiency"][0] < 1e4 and f["peak_power_efficiency"][0] < 1e4
    assert analyze_jvl(v, j, lum, eqe, ce, pe).figures["peak_eqe"][0] == pytest.approx(70.0)
