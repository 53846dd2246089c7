"""Solar-cell figures against hand-computed curves and the single-diode model's truth."""

from __future__ import annotations

import numpy as np
import pytest

from labrig.analysis.solar import VOC_ABOVE_RANGE, analyze_jv, hysteresis_index
from labrig.devices import SolarModel
from labrig.errors import ParameterError
from labrig.simulators.solar_cell import SolarCell

AREA = 0.049
PAPER_SCAN = np.linspace(-0.7, 0.1, 41)  # instrument volts; the PbS cell is cathode-on-HI


def _linear_cell(jsc: float, r: float, v: np.ndarray) -> np.ndarray:
    """Hand-solvable cell J = -Jsc + V/R: Voc = Jsc R, Vmp = Voc/2, FF = 1/4 exactly."""
    return (-jsc + v / r) * AREA


def _cell(**update) -> SolarCell:
    model = SolarModel(
        jsc_a_cm2=30.27e-3, j0_a_cm2=1.40e-9, ideality=1.5, rs_ohm_cm2=2.36, rsh_ohm_cm2=1000.0
    ).model_copy(update=update)
    cell = SolarCell(model, AREA)
    cell.illumination_mw_cm2 = 100.0
    return cell


def _scan(cell: SolarCell, v: np.ndarray) -> np.ndarray:
    return np.array([cell.current_at(x) for x in v])


def test_linear_cell_hand_computed():
    v = np.linspace(-0.2, 0.6, 41)
    f = analyze_jv(v, _linear_cell(0.02, 25.0, v), area_cm2=AREA, light_mw_cm2=100.0)
    assert f.jsc_a_cm2 == pytest.approx(0.02, rel=1e-9)
    assert f.voc_v == pytest.approx(0.5, rel=1e-9)
    assert f.vmp_v == pytest.approx(0.25, rel=1e-4)
    assert f.pmax_w_cm2 == pytest.approx(0.25 * 0.02 * 0.5, rel=1e-6)
    assert f.ff == pytest.approx(0.25, rel=1e-6)
    assert f.pce == pytest.approx(0.0025 / 0.1, rel=1e-6)
    assert f.rs_ohm_cm2 == pytest.approx(25.0, rel=1e-6)
    assert f.rsh_ohm_cm2 == pytest.approx(25.0, rel=1e-6)


def test_paper_scan_recovers_model_truth_within_1_percent():
    cell = _cell(terminal_polarity="inverted")
    f = analyze_jv(PAPER_SCAN, _scan(cell, PAPER_SCAN), area_cm2=AREA, polarity=-1)
    assert f.voc_v == pytest.approx(cell.voc(), rel=0.01)
    assert f.jsc_a_cm2 == pytest.approx(cell.jsc(), rel=0.01)
    assert f.ff == pytest.approx(cell.ff(), rel=0.01)
    assert f.pce == pytest.approx(cell.pce(), rel=0.01)
    vmp, jmp, _ = cell.max_power_point()
    assert f.vmp_v == pytest.approx(vmp, rel=0.01)
    assert f.jmp_a_cm2 == pytest.approx(jmp, rel=0.01)
    # slope resistances vs the model's exact dV/dJ at Voc and at 0 V
    assert f.rs_ohm_cm2 == pytest.approx(cell.slope_resistance_ohm_cm2(cell.voc()), rel=0.05)
    assert f.rsh_ohm_cm2 == pytest.approx(cell.slope_resistance_ohm_cm2(0.0), rel=0.05)


def test_polarity_flag_maps_instrument_to_device_signs():
    normal = _cell()
    v = np.linspace(-0.1, 0.7, 41)
    direct = analyze_jv(v, _scan(normal, v), area_cm2=AREA)
    mirrored = analyze_jv(-v, -_scan(normal, v), area_cm2=AREA, polarity=-1)
    assert mirrored == direct
    with pytest.raises(ParameterError, match="polarity"):
        analyze_jv(-v, -_scan(normal, v), area_cm2=AREA)  # forgot the flag: no photocurrent


def test_light_intensity_and_mask_area_enter_pce():
    v = np.linspace(-0.2, 0.6, 41)
    i = _linear_cell(0.02, 25.0, v)
    half_sun = analyze_jv(v, i, area_cm2=AREA, light_mw_cm2=50.0)
    assert half_sun.pce == pytest.approx(2 * analyze_jv(v, i, area_cm2=AREA).pce, rel=1e-9)
    bigger_mask = analyze_jv(v, i, area_cm2=2 * AREA)
    assert bigger_mask.jsc_a_cm2 == pytest.approx(0.01, rel=1e-9)


def test_voc_above_range_is_reported_not_extrapolated():
    cell = _cell()
    v = np.linspace(-0.2, 0.5, 36)
    f = analyze_jv(v, _scan(cell, v), area_cm2=AREA)
    assert f.voc_v is None and f.voc_status == VOC_ABOVE_RANGE
    assert f.ff is None and f.pce is None and f.pmax_w_cm2 is None
    figures = f.as_figures("light_")
    assert "light_voc" not in figures and "light_pce" not in figures
    assert figures["light_voc_status"] == (VOC_ABOVE_RANGE, "")
    assert figures["light_jsc"][0] == pytest.approx(cell.jsc() * 1e3, rel=0.01)


def test_bad_input_is_refused_with_a_clear_line():
    cell = _cell()
    v = np.linspace(0.1, 0.7, 31)
    with pytest.raises(ParameterError, match="does not include 0 V"):
        analyze_jv(v, _scan(cell, v), area_cm2=AREA)
    v = np.linspace(-0.1, 0.7, 41)
    with pytest.raises(ParameterError, match="mask area"):
        analyze_jv(v, _scan(cell, v), area_cm2=0.0)
    cell.illumination_mw_cm2 = 0.0
    with pytest.raises(ParameterError, match="no photocurrent"):
        analyze_jv(v, _scan(cell, v), area_cm2=AREA)


def test_hysteresis_index_on_curves_with_a_known_difference():
    v = np.linspace(-0.2, 0.6, 41)
    reverse = analyze_jv(v[::-1], _linear_cell(0.02, 25.0, v[::-1]), area_cm2=AREA)
    forward = analyze_jv(v, _linear_cell(0.02, 20.0, v), area_cm2=AREA)
    # PCE of the linear cell is Jsc^2 R / 4 / P_in, so HI = 1 - 20/25 exactly
    assert hysteresis_index(reverse.pce, forward.pce) == pytest.approx(0.2, rel=1e-6)

    # diode cells: the forward scan sees a lossier cell (lower Rsh, higher Rs)
    rev_cell, fwd_cell = _cell(), _cell(rs_ohm_cm2=4.0, rsh_ohm_cm2=400.0)
    v = np.linspace(-0.1, 0.7, 41)
    rev = analyze_jv(v[::-1], _scan(rev_cell, v[::-1]), area_cm2=AREA)
    fwd = analyze_jv(v, _scan(fwd_cell, v), area_cm2=AREA)
    truth = (rev_cell.pce() - fwd_cell.pce()) / rev_cell.pce()
    assert truth > 0.05
    assert hysteresis_index(rev.pce, fwd.pce) == pytest.approx(truth, rel=0.02)
    assert hysteresis_index(rev.pce, rev.pce) == 0.0
