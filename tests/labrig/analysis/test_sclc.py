"""SCLC construction against an exact Lampert triangle and the simulated films' truth."""

from __future__ import annotations

import numpy as np
import pytest

from labrig.analysis.sclc import analyze_sclc, loglog_slope
from labrig.config import load_preset
from labrig.devices import SingleCarrierModel
from labrig.errors import ParameterError
from labrig.simulators.single_carrier import SingleCarrierDevice

Q = 1.602176634e-19
EPS0 = 8.8541878128e-12
SCAN = np.geomspace(0.01, 10, 61)


def _film(name: str, **update) -> tuple[SingleCarrierDevice, dict]:
    preset = load_preset(name)
    model = SingleCarrierModel(**{**preset["model"], **update})
    dev = SingleCarrierDevice(
        model, 0.04, preset["thickness_nm"], preset["relative_permittivity"], preset["carrier"]
    )
    return dev, preset


def _curve(dev: SingleCarrierDevice, v: np.ndarray = SCAN) -> np.ndarray:
    return np.array([dev.current_density_at(x) for x in v])


def test_loglog_slope_of_power_laws():
    v = np.geomspace(0.1, 10, 41)
    assert np.allclose(loglog_slope(v, 3e-6 * v**2.5), 2.5, atol=1e-9)
    assert np.allclose(loglog_slope(v, 1e-9 * v), 1.0, atol=1e-9)


def test_sharp_triangle_hand_computed():
    """Exact piecewise Lampert triangle with V_TFL = 1 V, d = 100 nm, eps_r = 10."""
    eps, d, mu = EPS0 * 10, 100e-9, 1e-6  # mu = 0.01 cm^2/Vs in m^2/Vs
    v = np.geomspace(0.01, 100, 81)
    ohmic = 1e-3 * v  # A/m^2
    tfl = 1e-3 * v**10
    child = 9 / 8 * eps * mu * v**2 / d**3
    j = np.maximum(ohmic, np.minimum(tfl, child)) * 1e-4  # A/cm^2
    r = analyze_sclc(v, j, thickness_nm=100, relative_permittivity=10)
    assert r.v_tfl_v == pytest.approx(1.0, rel=0.01)
    # n_t = 2 eps V_TFL / (q d^2) = 1.105e23 m^-3 = 1.105e17 cm^-3
    assert r.trap_density_cm3 == pytest.approx(2 * eps * 1.0 / (Q * d**2) * 1e-6, rel=0.01)
    assert r.trap_density_cm3 == pytest.approx(1.105e17, rel=0.002)
    assert r.mobility_cm2_vs == pytest.approx(0.01, rel=0.01)
    assert r.child_range_v[0] > 1.0 and r.child_range_v[1] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("preset", "mu", "n_t"),
    [("hole_only_cspbbr3", 0.01, 1e15), ("electron_only_cspbbr3", 0.02, 3e14)],
)
def test_recovers_the_presets_mobility_and_trap_density(preset, mu, n_t):
    dev, p = _film(preset)
    r = analyze_sclc(
        SCAN,
        _curve(dev),
        thickness_nm=p["thickness_nm"],
        relative_permittivity=p["relative_permittivity"],
    )
    assert r.trap_density_cm3 == pytest.approx(n_t, rel=0.02)
    assert r.v_tfl_v == pytest.approx(dev.v_tfl, rel=0.02)
    assert r.mobility_cm2_vs == pytest.approx(mu, rel=0.02)
    assert r.ohmic_slope == pytest.approx(1.0, abs=0.02)
    assert r.tfl_slope > 3
    assert r.child_slope == pytest.approx(2.0, abs=0.1)
    assert r.child_range_v[0] > r.tfl_range_v[1] >= r.v_tfl_v
    figures = r.as_figures()
    assert figures["mobility"] == (r.mobility_cm2_vs, "cm^2/(V*s)")
    assert figures["child_fit_v_max"] == (pytest.approx(10.0), "V")


def test_noisy_curve_still_within_10_percent():
    dev, p = _film("hole_only_cspbbr3")
    rng = np.random.default_rng(3)
    j = _curve(dev) * (1 + 0.01 * rng.standard_normal(SCAN.size))
    r = analyze_sclc(SCAN, j, thickness_nm=1500, relative_permittivity=22)
    assert r.trap_density_cm3 == pytest.approx(1e15, rel=0.1)
    assert r.mobility_cm2_vs == pytest.approx(0.01, rel=0.1)


def test_built_in_voltage_and_series_resistance_corrections():
    dev, _ = _film("hole_only_cspbbr3", built_in_voltage_v=0.8, rs_ohm_cm2=3.0)
    j = _curve(dev)
    r = analyze_sclc(
        SCAN,
        j,
        thickness_nm=1500,
        relative_permittivity=22,
        built_in_voltage_v=0.8,
        series_resistance_ohm_cm2=3.0,
    )
    assert r.mobility_cm2_vs == pytest.approx(0.01, rel=0.03)
    naive = analyze_sclc(SCAN, j, thickness_nm=1500, relative_permittivity=22)
    assert naive.mobility_cm2_vs is None or abs(naive.mobility_cm2_vs / 0.01 - 1) > 0.05


def test_no_slope_two_region_gives_no_mobility():
    dev, _ = _film("hole_only_cspbbr3")
    v = np.geomspace(0.01, 2.0, 50)  # stops inside the trap-filled-limit rise
    r = analyze_sclc(v, _curve(dev, v), thickness_nm=1500, relative_permittivity=22)
    assert r.mobility_cm2_vs is None and r.child_range_v is None
    assert "mobility" not in r.as_figures()
    assert any("no Mott–Gurney mobility" in n for n in r.notes)
    assert r.trap_density_cm3 == pytest.approx(1e15, rel=0.05)  # V_TFL is still there


def test_no_ohmic_region_gives_no_trap_density():
    dev, _ = _film("hole_only_cspbbr3")
    v = np.geomspace(3.5, 10, 20)  # Child region only
    r = analyze_sclc(v, _curve(dev, v), thickness_nm=1500, relative_permittivity=22)
    assert r.v_tfl_v is None and r.trap_density_cm3 is None
    assert r.mobility_cm2_vs == pytest.approx(0.01, rel=0.02)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("thickness_nm", {"thickness_nm": None, "relative_permittivity": 22}),
        ("relative_permittivity", {"thickness_nm": 1500, "relative_permittivity": None}),
    ],
)
def test_missing_geometry_is_a_parameter_error(field, kwargs):
    with pytest.raises(ParameterError, match=field):
        analyze_sclc(SCAN, SCAN * 1e-6, **kwargs)
