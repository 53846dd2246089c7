"""The single-carrier SCLC film: Ohmic, trap-filled-limit and Mott–Gurney branches."""

from __future__ import annotations

import numpy as np
import pytest

from labrig.config import load_preset
from labrig.devices import SingleCarrierModel
from labrig.simulators.single_carrier import SingleCarrierDevice

Q = 1.602176634e-19
EPS0 = 8.8541878128e-12


def _device(name: str = "hole_only_cspbbr3", **update) -> SingleCarrierDevice:
    preset = load_preset(name)
    model = SingleCarrierModel(**{**preset["model"], **update})
    return SingleCarrierDevice(
        model,
        preset["active_area_cm2"],
        preset["thickness_nm"],
        preset["relative_permittivity"],
        preset["carrier"],
    )


def test_v_tfl_is_the_trap_filling_voltage():
    dev = _device()
    # q n_t d^2 / (2 eps0 eps_r) with n_t = 1e21 m^-3, d = 1.5e-6 m, eps_r = 22
    expected = Q * 1e21 * (1.5e-6) ** 2 / (2 * EPS0 * 22)
    assert dev.v_tfl == pytest.approx(expected, rel=1e-12)
    assert 0.1 < dev.v_tfl < 10  # inside the default 0.01-10 V scan
    assert 0.1 < _device("electron_only_cspbbr3").v_tfl < 10


def test_ohmic_branch_at_low_voltage():
    dev = _device()
    v = 0.02
    ohmic = Q * 1e18 * 1e-6 * v / 1.5e-6 * 1e-4  # q n0 mu V / d, A/cm^2
    assert dev.current_density_at(v) == pytest.approx(ohmic, rel=1e-3)


def test_mott_gurney_branch_at_high_voltage():
    dev = _device("electron_only_cspbbr3")
    v = 10.0
    child = 9 / 8 * EPS0 * 22 * 0.02e-4 * v**2 / (1.5e-6) ** 3 * 1e-4
    assert dev.current_density_at(v) == pytest.approx(child, rel=1e-3)


def test_steep_rise_between_ohmic_and_child_has_the_model_slope():
    dev = _device(tfl_slope=9.0)
    v = np.geomspace(0.01, 10, 301)
    j = np.array([dev.current_density_at(x) for x in v])
    slope = np.gradient(np.log(j), np.log(v))
    assert slope.max() == pytest.approx(9.0, rel=0.02)
    assert v[np.argmax(slope)] > dev.v_tfl
    assert slope[0] == pytest.approx(1.0, abs=0.01)
    assert slope[-1] == pytest.approx(2.0, abs=0.01)


def test_series_resistance_and_symmetry_and_inversion():
    dev = _device(rs_ohm_cm2=5.0)
    for v in (0.05, 1.0, 3.0, 9.0):
        j = dev.current_density_at(v)
        v_int = v - j * 5.0
        assert j == pytest.approx(dev.intrinsic_density(v_int), rel=1e-9)
        assert dev.current_density_at(-v) == pytest.approx(-j, rel=1e-12)
        assert dev.voltage_at(dev.current_at(v)) == pytest.approx(v, rel=1e-9)
    assert dev.current_at(0.0) == 0.0


def test_built_in_voltage_shifts_only_the_child_branch():
    dev = _device(built_in_voltage_v=0.5)
    child = 9 / 8 * EPS0 * 22 * 0.01e-4 * (10 - 0.5) ** 2 / (1.5e-6) ** 3 * 1e-4
    assert dev.current_density_at(10.0) == pytest.approx(child, rel=1e-3)


def test_geometry_is_required():
    with pytest.raises(ValueError, match="thickness_nm"):
        SingleCarrierDevice(SingleCarrierModel(), 0.04, None, 22, "hole")
    with pytest.raises(ValueError, match="relative_permittivity"):
        SingleCarrierDevice(SingleCarrierModel(), 0.04, 100, 0, "hole")
