"""analysis.pulsed against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labrig.analysis.pulsed import (
    analyze_pulsed,
    compare_eqe,
    divergence_j,
    duty_cycle,
    el_width_trend,
    per_level,
    separate_heating,
)


def test_el_width_trend_sorts_averages_and_measures_the_drop() -> None:
    trend = el_width_trend([5, 0.5, 1, 5, 20], [0.95, 1.0, 0.99, 0.97, 0.90])
    assert list(trend.width) == [0.5, 1, 5, 20]
    assert trend.el[2] == pytest.approx(0.96)  # the two 5 ms points averaged
    assert trend.monotonic_falling
    assert trend.relative_drop == pytest.approx(0.10)
    rising = el_width_trend([0.5, 1, 2], [1.0, 0.98, 0.985])
    assert not rising.monotonic_falling
    assert rising.relative_drop == pytest.approx(0.015)
    with pytest.raises(ValueError, match="two or more"):
        el_width_trend([1.0, math.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="not positive"):
        el_width_trend([1.0, 2.0], [0.0, 1.0])


def test_compare_eqe_interpolates_dc_in_log_j() -> None:
    # DC EQE linear in log10 J, so log-J interpolation is exact
    j_dc = np.array([1.0, 10.0, 100.0, 1000.0])
    eqe_dc = 20.0 - 4.0 * np.log10(j_dc)
    j_p = np.array([3.0, 30.0, 300.0, 2000.0])  # the last lies beyond the DC range
    eqe_p = (20.0 - 4.0 * np.log10(j_p)) * np.array([1.0, 1.02, 1.2, 1.5])
    cmp = compare_eqe(j_p, eqe_p, j_dc, eqe_dc)
    assert list(cmp.j) == [3.0, 30.0, 300.0]
    assert cmp.dc == pytest.approx(20.0 - 4.0 * np.log10(cmp.j))
    assert cmp.ratio == pytest.approx([1.0, 1.02, 1.2])
    assert cmp.ratio_at_highest_j == pytest.approx(1.2)
    assert cmp.highest_j == 300.0
    # |ratio - 1| crosses 0.05 between 30 (0.02) and 300 (0.2): 3/18 of the decade
    assert cmp.divergence_j == pytest.approx(10 ** (math.log10(30) + 3 / 18), rel=1e-12)


def test_compare_eqe_needs_overlap() -> None:
    with pytest.raises(ValueError, match="share fewer than two"):
        compare_eqe([1e4, 2e4], [1.0, 1.0], [1.0, 10.0], [5.0, 5.0])
    with pytest.raises(ValueError, match="two or more"):
        compare_eqe([1.0], [1.0], [1.0], [5.0])


def test_divergence_j_edges() -> None:
    j = np.array([1.0, 10.0, 100.0])
    assert math.isnan(divergence_j(j, [1.0, 1.1, 1.01]))  # back within at the top
    assert divergence_j(j, [1.2, 1.1, 1.3]) == 1.0  # beyond everywhere
    assert divergence_j(j, [1.1, 1.0, 0.9]) == pytest.approx(10**1.5)  # lower counts too


def test_duty_cycle() -> None:
    assert duty_cycle(1e-3, 0.1) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="must lie"):
        duty_cycle(2e-3, 1e-3)


def test_analyse_pulsed_figures_and_notes() -> None:
    result = analyze_pulsed(
        width_ms=np.array([0.5, 1, 2, 0.5, 1, 2]),
        width_el=np.array([1.0, 0.9, 0.8, 2.0, 1.9, 1.0]),
        width_level=np.array([0.001, 0.001, 0.001, 0.004, 0.004, 0.004]),
        pulsed_j=np.array([10.0, 100.0]),
        pulsed_eqe=np.array([10.0, 6.0]),
        duty_percent=np.array([1.0, 2.0]),
        peak_current=np.array([0.001, 0.004]),
        mean_current=np.array([1e-5, 8e-5]),
        set_width_ms=np.array([0.5, 1.0, 2.0]),
        achieved_width_ms=np.array([0.49, 1.03, 2.0]),
    )
    f = result.figures
    assert f["el_drop"] == (pytest.approx(50.0), "%")  # the highest level: 2.0 -> 1.0
    assert f["el_width_level"][0] == 0.004 and f["el_monotonic_with_width"][0] == 1
    assert f["duty_cycle_max"] == (2.0, "%") and f["peak_current_min"] == (0.001, "A")
    assert f["width_deviation_worst"] == (pytest.approx(3.0), "%")  # signed, the largest
    assert "pulsed_dc_eqe_ratio" not in f
    assert any("no DC reference" in n for n in result.notes)
    both = analyze_pulsed(
        pulsed_j=np.array([10.0, 100.0]),
        pulsed_eqe=np.array([10.0, 6.0]),
        dc_j=np.array([10.0, 100.0]),
        dc_eqe=np.array([10.0, 5.0]),
    )
    assert both.figures["pulsed_dc_eqe_ratio"] == (pytest.approx(1.2), "")
    assert both.figures["highest_common_j"] == (100.0, "mA/cm^2")
    assert both.figures["divergence_j"][0] == pytest.approx(10 ** (1 + 0.05 / 0.2))


def _bracketed_sweep(heat: dict[float, float], rate: float, pulses: int = 20):
    """A bracketed sweep whose EL is heating × (1 - rate × on-time), exactly."""
    from labrig.procedures.pulsed_el import bracketed

    rows, on = [], 0.0
    for _, width_s, ref in bracketed(1.0, [w * 1e-3 for w in heat]):
        train = pulses * width_s
        mid = on + train / 2
        on += train
        w = round(width_s * 1e3, 9)
        rows.append((w, heat[w] * (1 - rate * mid), mid, int(ref)))
    return [np.array(c) for c in zip(*rows, strict=True)]


def test_separate_heating_recovers_heating_and_drift_exactly() -> None:
    heat = {0.5: 1.0, 2.0: 0.995, 10.0: 0.98, 20.0: 0.97}
    width, el, on, ref = _bracketed_sweep(heat, rate=0.02)  # 2 % per s of on-time
    assert list(width) == [0.5, 2, 0.5, 10, 0.5, 20, 0.5]
    split = separate_heating(width, el, on, ref)
    assert list(split.width) == [0.5, 2, 10, 20]
    assert split.heating_el == pytest.approx([1.0, 0.995, 0.98, 0.97], rel=1e-12)
    assert split.heating_drop == pytest.approx(0.03, rel=1e-12)
    span = on[-1] - on[0]
    assert split.drift_on_time == pytest.approx(span)
    assert split.drift == pytest.approx(1 - (1 - 0.02 * on[-1]) / (1 - 0.02 * on[0]), rel=1e-12)
    assert split.references == 4
    # the raw fall over the widths holds both
    raw = el_width_trend(width[ref == 0], el[ref == 0]).relative_drop
    assert raw > split.heating_drop + 0.5 * split.drift


def test_separate_heating_needs_repeated_references() -> None:
    with pytest.raises(ValueError, match=r"reference width \(0.5\) measured twice"):
        separate_heating([0.5, 1, 2], [1.0, 0.99, 0.98], [0.1, 0.2, 0.3], [0, 0, 0])


def test_analyse_pulsed_stores_heating_drift_and_method_or_says_why_not() -> None:
    width, el, on, ref = _bracketed_sweep({0.5: 1.0, 5.0: 0.99, 20.0: 0.96}, rate=0.01)
    out = analyze_pulsed(
        width_ms=width,
        width_el=el,
        width_level=np.full(len(width), 0.004),
        width_on_time=on,
        width_reference=ref,
    )
    assert out.figures["heating_drop"] == (pytest.approx(4.0, rel=1e-9), "%")
    assert out.figures["el_drift"][1] == "%" and out.figures["el_drift"][0] > 0
    assert out.figures["el_drift_on_time"][1] == "s"
    assert out.figures["heating_method"][0].startswith("bracketed")
    assert out.figures["el_drop"][0] > 4.0  # as measured: heating and drift
    single = analyze_pulsed(
        width_ms=np.array([0.5, 1.0]),
        width_el=np.array([1.0, 0.99]),
        width_level=np.array([0.004, 0.004]),
        width_on_time=np.array([0.01, 0.02]),
        width_reference=np.array([0, 0]),
    )
    assert "heating_drop" not in single.figures
    assert any(n.startswith("heating vs drift: needs the reference width") for n in single.notes)


def test_per_level_compares_each_levels_last_reference_train_with_dc() -> None:
    """Two levels, each a bracketed sweep 0.5 (ref), 2, 0.5 (ref), 10, 0.5 (ref) ms: the
    reference EL falls linearly in on-time (drift), the sweep points also by heating."""
    width = np.array([0.5, 2, 0.5, 10, 0.5] * 2)
    reference = np.array([0, 0, 1, 0, 1] * 2)
    on_time = np.array([0.0, 1.0, 2.0, 3.0, 4.0] * 2)
    level = np.repeat([0.004, 0.001], 5)  # out of order: results come ascending
    drift = 1 - 0.01 * on_time  # 4 % over the sweep at both levels
    heat = np.where(width == 2, 0.98, np.where(width == 10, 0.95, 1.0))
    el = np.concatenate([2.0 * drift[:5] * heat[:5], 1.0 * drift[5:] * heat[5:]])
    j = np.repeat([100.0, 25.0], 5)
    eqe = np.array([5.0, 4.8, 4.9, 4.6, 4.8, 10.0, 9.9, 9.95, 9.8, 9.9])
    levels = per_level(level, width, el, j, eqe, on_time, reference, [25, 100], [9.0, 4.0])
    assert list(levels.level) == [0.001, 0.004]
    assert list(levels.j) == [25.0, 100.0]
    assert list(levels.eqe_pulsed) == [9.9, 4.8]  # the last reference train of each level
    assert list(levels.eqe_dc) == [9.0, 4.0]
    assert levels.eqe_ratio == pytest.approx([1.1, 1.2])
    assert levels.heating_drop == pytest.approx([5.0, 5.0])  # 1 - 0.95, drift removed
    assert levels.el_drift == pytest.approx([4.0, 4.0])
    raw = 100 * (1 - 0.95 * (1 - 0.03) / 1.0)  # 10 ms at on-time 3 against the first 0.5
    assert levels.el_drop == pytest.approx([raw, raw])
    # DC interpolated in log J; outside the DC range, or without DC: NaN
    half = per_level(level, width, el, j, eqe, on_time, reference, [10, 40], [8.0, 6.0])
    assert half.eqe_dc[0] == pytest.approx(8.0 - 2.0 * math.log10(2.5) / math.log10(4))
    assert math.isnan(half.eqe_dc[1]) and math.isnan(half.eqe_ratio[1])
    assert np.isnan(per_level(level, width, el, j, eqe, on_time, reference).eqe_dc).all()
    dark = per_level(level, width, el, j, eqe, on_time, reference, [25, 100], [0.0, 0.0])
    assert np.isnan(dark.eqe_ratio).all()  # an open device under DC: no ratio, no warning


def test_analyze_pulsed_stores_arrays_across_levels_and_the_levels_as_the_pulsed_curve():
    width = np.array([0.5, 2, 0.5] * 2)
    reference = np.array([0, 0, 1] * 2)
    on_time = np.array([0.0, 1.0, 2.0] * 2)
    level = np.repeat([0.001, 0.004], 3)
    el = np.array([1.0, 0.99, 0.99, 4.0, 3.8, 3.92])
    j = np.repeat([25.0, 100.0], 3)
    eqe = np.array([10.0, 9.9, 9.9, 5.0, 4.75, 4.9])
    out = analyze_pulsed(
        width_ms=width,
        width_el=el,
        width_level=level,
        width_on_time=on_time,
        width_reference=reference,
        width_j=j,
        width_eqe=eqe,
        dc_j=np.array([25.0, 100.0]),
        dc_eqe=np.array([9.0, 3.5]),
    )
    f = out.figures
    assert list(f["levels_drive"][0]) == [0.001, 0.004] and f["levels_drive"][1] == "A"
    assert f["levels_j"][1] == "mA/cm^2" and f["levels_eqe_pulsed"][1] == "%"
    assert f["levels_eqe_ratio"][0] == pytest.approx([9.9 / 9.0, 4.9 / 3.5])
    # the 2 ms EL against the reference interpolated to its on-time (the middle of two)
    heating = [100 * (1 - 0.99 / 0.995), 100 * (1 - 3.8 / 3.96)]
    assert f["levels_heating_drop"][0] == pytest.approx(heating)
    # no drive sweep: the levels' points are the pulsed EQE-J curve compared with DC
    assert f["pulsed_dc_eqe_ratio"][0] == pytest.approx(4.9 / 3.5)
    assert f["highest_common_j"][0] == pytest.approx(100.0)
    assert f["divergence_j"][0] == pytest.approx(25.0)
