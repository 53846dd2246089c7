"""The single-diode solar cell: equation, inversion, wiring, and the PbS preset's figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import lambertw

from labrig.config import load_preset
from labrig.devices import SolarModel
from labrig.simulators.solar_cell import SolarCell

VT = 1.380649e-23 * 298.15 / 1.602176634e-19


def _preset_cell() -> SolarCell:
    return SolarCell(SolarModel(**load_preset("pbs_solar")["model"]), area_cm2=0.049)


def _lambert_w_current(m: SolarModel, volts: float, jph: float) -> float:
    """Independent explicit solution of the same single-diode equation (Jain & Kapoor)."""
    nvt = m.ideality * VT
    rs, rsh, j0 = m.rs_ohm_cm2, m.rsh_ohm_cm2, m.j0_a_cm2
    arg = (
        rs
        * j0
        * rsh
        / (nvt * (rs + rsh))
        * math.exp(rsh * (rs * (jph + j0) + volts) / (nvt * (rs + rsh)))
    )
    i_gen = (rsh * (jph + j0) - volts) / (rs + rsh) - nvt / rs * lambertw(arg).real
    return -i_gen


def test_preset_reproduces_choi_2020_figures_within_1_percent():
    cell = _preset_cell()
    assert cell.voc() == pytest.approx(0.65, rel=0.01)
    assert cell.jsc() == pytest.approx(30.2e-3, rel=0.01)
    assert cell.ff() == pytest.approx(0.68, rel=0.01)
    assert cell.pce() == pytest.approx(0.133, rel=0.01)


def test_current_matches_lambert_w_solution():
    m = SolarModel(jsc_a_cm2=25e-3, j0_a_cm2=1e-10, ideality=1.4, rs_ohm_cm2=3.0, rsh_ohm_cm2=800)
    cell = SolarCell(m, area_cm2=0.1)
    cell.illumination_mw_cm2 = 100.0
    for v in (-0.5, 0.0, 0.3, 0.55, 0.7):
        assert cell.current_density_at(v) == pytest.approx(
            _lambert_w_current(m, v, 25e-3), rel=1e-9, abs=1e-15
        )


def test_implicit_equation_holds_and_voltage_inverts_current():
    cell = _preset_cell()
    cell.illumination_mw_cm2 = 100.0
    m = cell.model
    nvt = m.ideality * VT
    for v in np.linspace(-0.7, 1.2, 12):
        j = cell.current_density_at(v)
        x = v - j * m.rs_ohm_cm2
        residual = m.j0_a_cm2 * math.expm1(x / nvt) + x / m.rsh_ohm_cm2 - 30.27e-3 - j
        assert abs(residual) < 1e-12
        assert cell.voltage_at(cell.current_at(v)) == pytest.approx(v, abs=1e-9)


def test_dark_by_default_and_photocurrent_scales_with_irradiance():
    cell = _preset_cell()
    assert cell.illumination_mw_cm2 == 0.0
    assert cell.current_at(0.0) == pytest.approx(0.0, abs=1e-18)
    assert cell.jsc(50.0) == pytest.approx(cell.jsc(100.0) / 2, rel=1e-3)
    assert cell.voc(0.0) == pytest.approx(0.0, abs=1e-12)


def test_inverted_wiring_flips_both_signs_at_the_terminals():
    m = SolarModel(**load_preset("pbs_solar")["model"])
    inverted = SolarCell(m, 0.049)
    normal = SolarCell(m.model_copy(update={"terminal_polarity": "normal"}), 0.049)
    for c in (inverted, normal):
        c.illumination_mw_cm2 = 100.0
    for v in (-0.7, -0.3, 0.0, 0.1):
        assert inverted.current_at(v) == pytest.approx(-normal.current_at(-v), rel=1e-12)
    # the PbS bench scans the instrument -0.7 -> +0.1 V, i.e. the device +0.7 -> -0.1 V:
    # past Voc the device is forward biased, so the instrument reads negative current
    assert inverted.current_at(-0.7) < 0
    assert inverted.current_at(0.0) > 0  # short circuit: photocurrent flows out of HI


def test_slope_resistance_matches_numerical_derivative():
    cell = _preset_cell()
    for v in (0.0, cell.voc()):
        h = 1e-6
        numeric = (
            2 * h / (cell.current_density_at(v + h, 100.0) - cell.current_density_at(v - h, 100.0))
        )
        assert cell.slope_resistance_ohm_cm2(v) == pytest.approx(numeric, rel=1e-5)


def test_static_non_emitter():
    cell = _preset_cell()
    cell.advance(10.0, 0.5, 1e-3)
    assert cell.optical_power_w(1e-3) == 0.0
    assert not cell.spectrum_shape(np.array([500.0, 600.0]), 1e-3).any()
    with pytest.raises(ValueError):
        SolarCell(SolarModel(), area_cm2=0.0)
