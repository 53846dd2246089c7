"""The lines ``labrig run`` prints after a run: one summary across lifetime channels,
yes/no for flags, uncertainties next to their values."""

from __future__ import annotations

import math

from labrig.headline import fmt, headline


def _channel(t50: float, kind: str, best: float | None = None) -> dict:
    return {
        "T50": (t50, "h"),
        "T50_best": (best if best is not None else t50, "h"),
        "T50_best_err": (0.1, "h"),
        "T50_best_low": (t50 - 0.2, "h"),
        "fit_stretched_tau": (3.0, "h"),
        "end_reason": (f"{kind} at {t50} h", ""),
        "end_kind": (kind, ""),
        "T50_extrapolated": (not math.isfinite(t50), ""),
    }


def test_lifetime_run_is_one_summary_across_channels():
    channels = {
        "channel_01": _channel(10.0, "T50 reached"),
        "channel_02": _channel(12.0, "T50 reached"),
        "channel_03": _channel(11.0, "T50 reached"),
        "channel_04": _channel(math.nan, "open circuit", best=20.0),
        "channel_05": _channel(14.0, "T50 reached"),
    }
    analysis = {
        f"{group}/{name}": figure
        for group, figs in channels.items()
        for name, figure in figs.items()
    }
    analysis["channels_analysed"] = (5, "")
    analysis["acceleration_exponent"] = (1.71234, "")
    analysis["acceleration_exponent_err"] = (0.05, "")
    assert headline(analysis, "runs/x.h5") == [
        "  channels: 5 (4 T50 reached, 1 open circuit)",
        "  T50: median 12 h, interquartile 11–14 h, range 10–20 h (5 channels; 1 extrapolated)",
        "  channels_analysed: 5",
        "  acceleration_exponent: 1.712 ± 0.05",
        "  all figures per channel: labrig inspect runs/x.h5",
    ]


def test_flags_are_yes_or_no_and_fit_details_stay_in_the_file():
    analysis = {
        "el_drop": (1.9581, "%"),
        "el_monotonic_with_width": (True, ""),
        "T50_extrapolated": (False, ""),
        "fit_tau": (3.0, "h"),
        "peak_eqe": (12.5, "%"),
        "peak_eqe_err": (0.25, "%"),
    }
    assert headline(analysis, "r.h5") == [
        "  el_drop: 1.958 %",
        "  el_monotonic_with_width: yes",
        "  T50_extrapolated: no",
        "  peak_eqe: 12.5 ± 0.25 %",
    ]
    assert (fmt(True), fmt(False), fmt(3), fmt("x")) == ("yes", "no", "3", "x")


def test_a_long_headline_is_cut_and_points_to_the_file():
    analysis = {f"figure_{i:02d}": (float(i), "V") for i in range(40)}
    lines = headline(analysis, "r.h5")
    assert len(lines) == 31
    assert lines[0] == "  figure_00: 0 V" and lines[-1] == "  all figures: labrig inspect r.h5"


def test_a_figure_per_drive_level_is_one_line_of_values():
    import numpy as np

    assert fmt(np.array([25.0, 50.0, 100.0, 200.0])) == "25, 50, 100, 200"
    assert fmt(np.array([1.0123456, 1.219])) == "1.012, 1.219"
    lines = headline({"levels_eqe_ratio": (np.array([1.0123, 1.2188]), "")}, "run.h5")
    assert lines == ["  levels_eqe_ratio: 1.012, 1.219"]
