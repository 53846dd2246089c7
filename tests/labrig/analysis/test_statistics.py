"""Device statistics over a batch, against values worked out by hand (the arithmetic is
written next to each expected number)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from batch_results import batch, device  # noqa: E402

from labrig.analysis.statistics import (  # noqa: E402
    describe,
    reason_kind,
    substrate_yield,
    summarize,
)


def test_four_devices_mean_sample_sd_median_sem_and_champion():
    s = describe("peak_eqe", [20.0, 22.0, 24.0, 18.0], ["S1-A", "S1-B", "S1-C", "S1-D"], units="%")
    # mean = (20 + 22 + 24 + 18) / 4 = 84 / 4 = 21
    assert s.n == 4 and s.mean == pytest.approx(21.0, abs=1e-12)
    # squared deviations 1 + 1 + 9 + 9 = 20; sample variance 20 / (4 - 1) = 6.666...
    # sd = sqrt(20/3) = 2.5819889; sem = sd / sqrt(4) = 1.2909944
    assert s.sd == pytest.approx(2.5819889, abs=1e-7)
    assert s.sem == pytest.approx(1.2909944, abs=1e-7)
    # sorted 18, 20, 22, 24: median = (20 + 22) / 2 = 21
    assert s.median == pytest.approx(21.0, abs=1e-12)
    assert (s.champion, s.champion_value) == ("S1-C", 24.0)
    assert s.missing == 0 and s.units == "%"


def test_odd_count_median_is_the_middle_value_not_the_mean():
    s = describe("max_luminance", [100.0, 1000.0, 300.0], ["a", "b", "c"])
    # sorted 100, 300, 1000: median 300; mean 1400 / 3 = 466.667
    assert s.median == 300.0
    assert s.mean == pytest.approx(466.6666667, abs=1e-6)
    # deviations -366.667, 533.333, -166.667: squares 134444.4 + 284444.4 + 27777.8
    # = 446666.7; / 2 = 223333.3; sqrt = 472.5816
    assert s.sd == pytest.approx(472.5816, abs=1e-3)


def test_one_device_has_no_spread_nan_not_zero():
    s = describe("peak_eqe", [15.0], ["S2-A"])
    assert (s.n, s.mean, s.median, s.champion, s.champion_value) == (1, 15.0, 15.0, "S2-A", 15.0)
    assert math.isnan(s.sd) and math.isnan(s.sem)


def test_no_device_is_all_nan_and_no_champion():
    s = describe("peak_eqe", [], [])
    assert s.n == 0 and s.champion is None
    assert all(math.isnan(v) for v in (s.mean, s.sd, s.median, s.sem, s.champion_value))


def test_nan_figures_are_counted_missing_never_averaged():
    s = describe("turn_on_voltage", [3.0, math.nan, 2.0], ["a", "b", "c"])
    # n = 2 of 3; mean (3 + 2) / 2 = 2.5; sd sqrt((0.25 + 0.25) / 1) = 0.7071068;
    # sem 0.7071068 / sqrt(2) = 0.5
    assert (s.n, s.missing) == (2, 1)
    assert s.mean == pytest.approx(2.5)
    assert s.sd == pytest.approx(0.7071068, abs=1e-7)
    assert s.sem == pytest.approx(0.5, abs=1e-12)
    assert s.values == (3.0, 2.0) and s.devices == ("a", "c")


def test_turn_on_champion_is_the_lowest_voltage():
    s = describe("turn_on_voltage", [2.9, 2.5, 3.1], ["a", "b", "c"])
    assert (s.champion, s.champion_value) == ("b", 2.5)


def test_values_and_labels_must_pair_up():
    with pytest.raises(ValueError, match="2 values for 3 devices"):
        describe("peak_eqe", [1.0, 2.0], ["a", "b", "c"])


def _two_conditions():
    return batch(
        device("S1", "A", condition="control", peak_eqe=10.0, turn_on_voltage=2.6),
        device("S1", "B", condition="control", peak_eqe=12.0, turn_on_voltage=2.4),
        device("S1", "C", condition="control", status="skipped", reason="shorted: 3 ohm"),
        device("S2", "A", condition="NSA 0.6 M", peak_eqe=20.0, turn_on_voltage=2.2),
        device("S2", "B", condition="NSA 0.6 M", peak_eqe=22.0, turn_on_voltage=math.nan),
        device("S2", "C", condition="NSA 0.6 M", peak_eqe=27.0),
        device("S2", "D", condition="NSA 0.6 M", status="skipped", reason="open: 2 nA at 3 V"),
        device("S2", "A", condition="NSA 0.6 M", measurement="spectrum", peak_wavelength=628.0),
    )


def test_summarize_per_condition_in_plan_order_then_all():
    rows = summarize(_two_conditions(), "jvl", ["peak_eqe"])
    assert [(r.condition, r.n) for r in rows] == [("control", 2), ("NSA 0.6 M", 3), ("all", 5)]
    control, nsa, every = rows
    # control: (10 + 12) / 2 = 11; sd sqrt((1 + 1) / 1) = 1.4142136
    assert control.mean == pytest.approx(11.0)
    assert control.sd == pytest.approx(1.4142136, abs=1e-7)
    # NSA: (20 + 22 + 27) / 3 = 23; deviations -3, -1, 4: (9 + 1 + 16) / 2 = 13; sqrt 3.6055513
    assert nsa.mean == pytest.approx(23.0)
    assert nsa.sd == pytest.approx(3.6055513, abs=1e-7)
    assert (nsa.champion, nsa.champion_value, nsa.median) == ("S2-C", 27.0, 22.0)
    # all: (10 + 12 + 20 + 22 + 27) / 5 = 91 / 5 = 18.2; median 20; champion S2-C
    assert every.mean == pytest.approx(18.2)
    assert (every.median, every.champion) == (20.0, "S2-C")
    assert every.units == "%"


def test_summarize_counts_a_finished_device_without_the_figure_as_missing():
    rows = summarize(_two_conditions(), "jvl", ["turn_on_voltage"])
    nsa = rows[1]
    # S2-B's turn-on is NaN, S2-C has none: n = 1 (2.2 V), missing 2
    assert (nsa.n, nsa.missing, nsa.mean, nsa.champion) == (1, 2, 2.2, "S2-A")
    assert math.isnan(nsa.sd)
    assert rows[0].champion == "S1-B"  # 2.4 V < 2.6 V: lower turn-on is better


def test_summarize_all_skipped_gives_n_zero_for_the_condition():
    b = batch(
        device("S1", "A", status="skipped", reason="shorted: 1 ohm"),
        device("S1", "B", status="skipped", reason="open: 0 A"),
    )
    (row,) = summarize(b, "jvl", ["peak_eqe"])
    assert (row.condition, row.n, row.champion, row.missing) == ("", 0, None, 0)
    assert math.isnan(row.mean)


def test_yield_per_substrate_counts_pixels_and_skip_reasons():
    b = _two_conditions()
    s1, s2 = substrate_yield(b)
    # S1: 3 pixels planned, 2 measured, one shorted: 2 / 3
    assert (s1.substrate, s1.planned, s1.measured, dict(s1.skipped)) == ("S1", 3, 2, {"shorted": 1})
    assert s1.fraction == pytest.approx(2 / 3)
    # S2: pixels A-D (A has jvl and spectrum: one pixel), C measured too: 3 / 4
    assert (s2.planned, s2.measured, dict(s2.skipped), dict(s2.other)) == (4, 3, {"open": 1}, {})
    assert s2.fraction == 0.75


def test_yield_a_pixel_counts_once_as_its_worst_measurement():
    b = batch(
        device("S1", "A"),
        device("S1", "A", measurement="spectrum", status="failed", reason="timeout"),
        device("S1", "B"),
        device("S1", "B", measurement="spectrum", status="pending"),
        device("S1", "C", status="skipped", reason="shorted: 2 ohm"),
        device("S1", "C", measurement="spectrum", status="skipped", reason="shorted: 2 ohm"),
        device("S1", "D"),
        device("S1", "D", measurement="spectrum"),
    )
    (y,) = substrate_yield(b)
    assert (y.planned, y.measured) == (4, 1)
    assert dict(y.skipped) == {"shorted": 1}
    assert dict(y.other) == {"failed": 1, "pending": 1}
    assert y.fraction == 0.25


def test_reason_kind_is_the_text_before_the_colon():
    assert reason_kind("shorted: 0.4 ohm at 0.1 V") == "shorted"
    assert reason_kind("open") == "open"
    assert reason_kind("") == "no reason given"


def test_standard_error_covers_the_true_mean_as_students_t_says():
    """Over 4000 seeded substrates of 8 devices drawn from N(20 %, 2 %): mean ± s.e.
    holds the true 20 % in P(|t_7| < 1) = 0.6494 of them (Student's t, 7 degrees of
    freedom).  With the population s.d. (ddof = 0) it would be P(|t_7| < sqrt(7/8)) =
    0.619: the sample s.d. is what makes the stated error honest."""
    from scipy.stats import t

    rng = np.random.default_rng(19)
    names = [f"S-{k}" for k in range(8)]
    hits = 0
    cases = 4000
    for _ in range(cases):
        s = describe("peak_eqe", rng.normal(20.0, 2.0, 8), names)
        hits += abs(s.mean - 20.0) <= s.sem
    expected = 2 * t.cdf(1, 7) - 1
    assert expected == pytest.approx(0.6494, abs=1e-4)
    # binomial s.d. sqrt(0.649 * 0.351 / 4000) = 0.0075; 3 s.d. = 0.023 (< 0.649 - 0.619)
    assert hits / cases == pytest.approx(expected, abs=0.023)
