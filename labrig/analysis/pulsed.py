"""Pulsed-mode EL figures: EL vs pulse width, pulsed against DC EQE–J, duty and currents.

Heating shows in two ways.  At a fixed drive the EL at the end of a pulse falls as the pulse
lengthens (the emitting film heats within milliseconds): ``el_width_trend`` says whether it
falls monotonically and by how much from the shortest to the longest width.  At the same J
the pulsed EQE sits above the DC one once the DC device runs hot: ``compare_eqe`` puts both
curves on the pulsed J points they share, the DC curve interpolated linearly in log J
(EQE–J curves are smooth in log J, not in J), and reports the pulsed/DC ratio at the
highest common J and the J above which the two differ by more than a threshold (5 %).

A device also ages while it is pulsed, so EL measured at widths in increasing order falls
by heating *and* ageing.  ``separate_heating`` takes a bracketed sweep -- a train at the
reference (shortest) width before the sweep and after every other width -- and divides
each width's EL by the reference EL interpolated (linearly in drive on-time) to the middle
of that width's train: what is left is heating alone, and the change of the reference EL
over the sweep is the drift.  At one drive level ageing depends on the charge passed, so
drive on-time, not clock time, is its axis (a device does not age while resting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: relative difference at which pulsed and DC EQE count as diverged
DIVERGENCE = 0.05


@dataclass(frozen=True)
class WidthTrend:
    """EL against pulse width at one drive level (sorted by width)."""

    width: np.ndarray
    el: np.ndarray
    monotonic_falling: bool  # every longer width gave less EL
    relative_drop: float  # 1 - EL(longest)/EL(shortest)


def el_width_trend(width: np.ndarray, el: np.ndarray) -> WidthTrend:
    """Sort by width (repeated widths averaged) and measure the fall of EL with width."""
    width = np.asarray(width, float)
    el = np.asarray(el, float)
    keep = np.isfinite(width) & np.isfinite(el)
    if keep.sum() < 2:
        raise ValueError("need EL at two or more finite pulse widths")
    unique = np.unique(width[keep])
    mean_el = np.array([el[keep][width[keep] == w].mean() for w in unique])
    if not mean_el[0] > 0:
        raise ValueError(f"EL at the shortest width ({unique[0]:g}) is not positive")
    return WidthTrend(
        width=unique,
        el=mean_el,
        monotonic_falling=bool(np.all(np.diff(mean_el) < 0)),
        relative_drop=float(1.0 - mean_el[-1] / mean_el[0]),
    )


@dataclass(frozen=True)
class HeatingDrift:
    """A bracketed width sweep at one drive level, split into heating and drift."""

    width: np.ndarray  # the sweep's widths, ascending (the reference width first)
    heating_el: np.ndarray  # EL / reference EL at the same on-time: 1 at the reference
    heating_drop: float  # 1 - heating_el at the longest width
    drift: float  # 1 - last / first reference EL (positive: the device got dimmer)
    drift_on_time: float  # drive on-time between the first and last reference (axis units)
    references: int  # reference trains used


HEATING_METHOD = (
    "bracketed: a train at the reference (shortest) width before the sweep and after "
    "every other width; each width's EL divided by the reference EL interpolated "
    "linearly in drive on-time to the middle of its train (heating); the reference EL's "
    "change over the sweep (drift)"
)


def separate_heating(
    width: np.ndarray, el: np.ndarray, on_time: np.ndarray, reference: np.ndarray
) -> HeatingDrift:
    """Heating and drift of one drive level's bracketed width sweep.

    ``reference`` is 1 for the repeated reference-width trains and 0 for the sweep's
    own points (whose shortest width is the first reference); ``on_time`` is the drive
    on-time at the middle of each train.  Raises ValueError without two references."""
    width, el, on_time = (np.asarray(a, float) for a in (width, el, on_time))
    reference = np.asarray(reference, int)
    keep = np.isfinite(width) & np.isfinite(el) & np.isfinite(on_time)
    width, el, on_time, reference = width[keep], el[keep], on_time[keep], reference[keep]
    if width.size == 0:
        raise ValueError("no finite EL in the width sweep")
    ref_width = width.min()
    refs = width == ref_width
    if refs.sum() < 2:
        raise ValueError(
            f"needs the reference width ({ref_width:g}) measured twice or more to "
            "bracket the sweep; this sweep has no repeats"
        )
    order = np.argsort(on_time[refs], kind="stable")
    ref_t, ref_el = on_time[refs][order], el[refs][order]
    if not np.all(ref_el > 0):
        raise ValueError("the reference-width EL is not positive")
    sweep = reference == 0
    ratio = el[sweep] / np.interp(on_time[sweep], ref_t, ref_el)
    trend = el_width_trend(width[sweep], ratio)
    return HeatingDrift(
        width=trend.width,
        heating_el=trend.el / trend.el[0],
        heating_drop=float(1.0 - trend.el[-1] / trend.el[0]),
        drift=float(1.0 - ref_el[-1] / ref_el[0]),
        drift_on_time=float(ref_t[-1] - ref_t[0]),
        references=int(refs.sum()),
    )


@dataclass(frozen=True)
class LevelResults:
    """A width sweep at several drive levels, one entry per level (ascending |level|)."""

    level: np.ndarray  # drive level (A or V)
    j: np.ndarray  # mA/cm², the level's last reference-width train
    eqe_pulsed: np.ndarray  # %, the level's last reference-width train
    eqe_dc: np.ndarray  # %, the DC curve in log J at ``j`` (NaN: none, or outside its range)
    eqe_ratio: np.ndarray  # pulsed / DC
    el_drop: np.ndarray  # %, EL over the widths as measured (heating and drift)
    heating_drop: np.ndarray  # %, drift removed (NaN when the sweep was not bracketed)
    el_drift: np.ndarray  # %, the reference EL's change over the level's sweep


def per_level(
    level: np.ndarray,
    width_ms: np.ndarray,
    el: np.ndarray,
    j: np.ndarray,
    eqe: np.ndarray,
    on_time: np.ndarray,
    reference: np.ndarray,
    dc_j: np.ndarray | None = None,
    dc_eqe: np.ndarray | None = None,
) -> LevelResults:
    """Each level's pulsed EQE at the reference width against DC at the same J, and its
    EL drop, heating and drift (``separate_heating``); a figure a level cannot give is NaN.

    The pulsed point of a level is its last reference-width train: the shortest pulses
    (the film barely warms), taken right before the level's DC point when the procedure
    interleaves them, so pulsed and DC differ by heating and not by the device's ageing
    over the rest of the run.  The DC EQE is the DC curve interpolated in log J (at a
    current drive the DC rows sit at the same J).
    """
    level, width_ms, el, j, eqe, on_time = (
        np.asarray(a, float) for a in (level, width_ms, el, j, eqe, on_time)
    )
    reference = np.asarray(reference, int)
    levels = np.unique(level[np.isfinite(level)])
    levels = levels[np.argsort(np.abs(levels), kind="stable")]
    dc = _curve(dc_j, dc_eqe) if dc_j is not None and dc_eqe is not None else None
    out: dict[str, list[float]] = {k: [] for k in ("j", "eqe", "dc", "drop", "heat", "drift")}
    for lv in levels:
        at = level == lv
        w = width_ms[at]
        last = int(np.flatnonzero(w == np.nanmin(w))[-1])
        out["j"].append(float(j[at][last]))
        out["eqe"].append(float(eqe[at][last]))
        out["dc"].append(_dc_at(dc, out["j"][-1]))
        sweep = reference[at] == 0
        try:
            out["drop"].append(100.0 * el_width_trend(w[sweep], el[at][sweep]).relative_drop)
        except ValueError:
            out["drop"].append(math.nan)
        try:
            split = separate_heating(w, el[at], on_time[at], reference[at])
        except ValueError:
            out["heat"].append(math.nan)
            out["drift"].append(math.nan)
        else:
            out["heat"].append(100.0 * split.heating_drop)
            out["drift"].append(100.0 * split.drift)
    eqe_pulsed, eqe_dc = np.array(out["eqe"]), np.array(out["dc"])
    with np.errstate(divide="ignore", invalid="ignore"):  # no light under DC: no ratio
        ratio = np.where(eqe_dc > 0, eqe_pulsed / eqe_dc, math.nan)
    return LevelResults(
        level=levels,
        j=np.array(out["j"]),
        eqe_pulsed=eqe_pulsed,
        eqe_dc=eqe_dc,
        eqe_ratio=ratio,
        el_drop=np.array(out["drop"]),
        heating_drop=np.array(out["heat"]),
        el_drift=np.array(out["drift"]),
    )


def _dc_at(dc: tuple[np.ndarray, np.ndarray] | None, j: float) -> float:
    """The DC EQE (log-J interpolation) at ``j``; NaN without DC or outside its J range."""
    if dc is None or dc[0].size < 1 or not j > 0:
        return math.nan
    jd, ed = dc
    if not jd[0] * (1 - 1e-9) <= j <= jd[-1] * (1 + 1e-9):
        return math.nan
    if jd.size == 1:
        return float(ed[0])
    return float(np.interp(np.log10(j), np.log10(jd), ed))


@dataclass(frozen=True)
class EQEComparison:
    """Pulsed and DC EQE on the pulsed J points inside both curves' J range."""

    j: np.ndarray  # shared J axis (the pulsed points), ascending
    pulsed: np.ndarray
    dc: np.ndarray  # DC interpolated in log J
    ratio: np.ndarray  # pulsed / DC
    ratio_at_highest_j: float
    highest_j: float
    divergence_j: float  # J above which |ratio - 1| > threshold throughout; NaN: never


def _curve(j: np.ndarray, eqe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points with J > 0 and finite EQE, ascending in J, repeated J averaged."""
    j = np.asarray(j, float)
    eqe = np.asarray(eqe, float)
    keep = np.isfinite(j) & np.isfinite(eqe) & (j > 0)
    j, eqe = j[keep], eqe[keep]
    unique = np.unique(j)
    return unique, np.array([eqe[j == x].mean() for x in unique])


def compare_eqe(
    j_pulsed: np.ndarray,
    eqe_pulsed: np.ndarray,
    j_dc: np.ndarray,
    eqe_dc: np.ndarray,
    threshold: float = DIVERGENCE,
) -> EQEComparison:
    """Both EQE–J curves on a shared J axis (any consistent J unit).  Raises ValueError
    when they share fewer than two J points."""
    jp, ep = _curve(j_pulsed, eqe_pulsed)
    jd, ed = _curve(j_dc, eqe_dc)
    if jp.size == 0 or jd.size < 2:
        raise ValueError("need a pulsed curve and a DC curve of two or more points")
    inside = (jp >= jd[0] * (1 - 1e-9)) & (jp <= jd[-1] * (1 + 1e-9))
    if inside.sum() < 2:
        raise ValueError(
            f"pulsed J {jp[0]:.4g}–{jp[-1]:.4g} and DC J {jd[0]:.4g}–{jd[-1]:.4g} share fewer "
            "than two points"
        )
    j = jp[inside]
    pulsed = ep[inside]
    dc = np.interp(np.log10(j), np.log10(jd), ed)
    ratio = pulsed / dc
    return EQEComparison(
        j=j,
        pulsed=pulsed,
        dc=dc,
        ratio=ratio,
        ratio_at_highest_j=float(ratio[-1]),
        highest_j=float(j[-1]),
        divergence_j=divergence_j(j, ratio, threshold),
    )


def divergence_j(j: np.ndarray, ratio: np.ndarray, threshold: float = DIVERGENCE) -> float:
    """Lowest J from which |ratio - 1| stays above ``threshold`` up to the highest J, the
    crossing interpolated in log J; NaN if the last point is within the threshold."""
    j = np.asarray(j, float)
    off = np.abs(np.asarray(ratio, float) - 1.0)
    beyond = off > threshold
    if not beyond[-1]:
        return float("nan")
    k = len(beyond) - 1
    while k > 0 and beyond[k - 1]:
        k -= 1
    if k == 0:
        return float(j[0])
    lj = np.log10(j[k - 1 : k + 1])
    x = lj[0] + (threshold - off[k - 1]) / (off[k] - off[k - 1]) * (lj[1] - lj[0])
    return float(10**x)


def duty_cycle(width_s: float, period_s: float) -> float:
    """On-time fraction of a pulse train."""
    if not 0 < width_s <= period_s:
        raise ValueError(f"width {width_s} s must lie in (0, period {period_s} s]")
    return width_s / period_s


@dataclass
class PulsedAnalysis:
    figures: dict[str, tuple[Any, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def analyze_pulsed(
    *,
    width_ms: np.ndarray | None = None,
    width_el: np.ndarray | None = None,
    width_level: np.ndarray | None = None,
    width_on_time: np.ndarray | None = None,
    width_reference: np.ndarray | None = None,
    width_j: np.ndarray | None = None,
    width_eqe: np.ndarray | None = None,
    pulsed_j: np.ndarray | None = None,
    pulsed_eqe: np.ndarray | None = None,
    dc_j: np.ndarray | None = None,
    dc_eqe: np.ndarray | None = None,
    duty_percent: np.ndarray | None = None,
    peak_current: np.ndarray | None = None,
    mean_current: np.ndarray | None = None,
    set_width_ms: np.ndarray | None = None,
    achieved_width_ms: np.ndarray | None = None,
    level_units: str = "A",
) -> PulsedAnalysis:
    """The run's headline figures (J in mA/cm², EQE in %, widths in ms); a figure that
    cannot be computed is left out with a note saying why.  ``level_units`` is the unit of
    ``width_level``: "A" for a current drive, "V" for a voltage drive.  With
    ``width_on_time`` (s) and ``width_reference`` the width sweep is bracketed: its
    ``el_drop`` is as measured (heating and drift), ``heating_drop`` and ``el_drift``
    are the two apart (``separate_heating``).  With ``width_j`` and ``width_eqe`` too,
    every level's results are stored as arrays across the levels (``levels_*``,
    ``per_level``), and without a drive sweep the levels' reference-width points are the
    pulsed EQE–J curve compared with DC."""
    out = PulsedAnalysis()
    if (
        width_ms is not None
        and width_el is not None
        and width_level is not None
        and width_j is not None
        and width_eqe is not None
        and width_on_time is not None
        and width_reference is not None
        and len(width_ms)
    ):
        levels = per_level(
            width_level,
            width_ms,
            width_el,
            width_j,
            width_eqe,
            width_on_time,
            width_reference,
            dc_j,
            dc_eqe,
        )
        _level_figures(out, levels, level_units)
        if pulsed_j is None and levels.j.size >= 2:
            pulsed_j, pulsed_eqe = levels.j, levels.eqe_pulsed
    if width_ms is not None and width_el is not None and len(width_ms):
        levels = np.asarray(width_level if width_level is not None else np.zeros(len(width_ms)))
        top = float(levels[np.argmax(np.abs(levels))])
        at = levels == top
        sweep = at.copy()
        if width_reference is not None:
            sweep &= np.asarray(width_reference) == 0
        try:
            trend = el_width_trend(np.asarray(width_ms)[sweep], np.asarray(width_el)[sweep])
        except ValueError as exc:
            out.notes.append(f"EL vs width: {exc}")
        else:
            out.figures["el_drop"] = (100.0 * trend.relative_drop, "%")
            out.figures["el_monotonic_with_width"] = (bool(trend.monotonic_falling), "")
            out.figures["el_width_level"] = (top, level_units)
            out.figures["shortest_width"] = (float(trend.width[0]), "ms")
            out.figures["longest_width"] = (float(trend.width[-1]), "ms")
            if not trend.monotonic_falling:
                out.notes.append(
                    "EL vs width: not monotonically falling "
                    f"({', '.join(f'{v:.4g}' for v in trend.el)})"
                )
        if width_on_time is not None and width_reference is not None:
            _heating_figures(
                out,
                np.asarray(width_ms)[at],
                np.asarray(width_el)[at],
                np.asarray(width_on_time)[at],
                np.asarray(width_reference)[at],
            )
    if pulsed_j is not None and pulsed_eqe is not None:
        if dc_j is None or dc_eqe is None:
            out.notes.append("pulsed vs DC EQE: no DC reference in this run")
        else:
            try:
                cmp = compare_eqe(pulsed_j, pulsed_eqe, dc_j, dc_eqe)
            except ValueError as exc:
                out.notes.append(f"pulsed vs DC EQE: {exc}")
            else:
                out.figures["pulsed_dc_eqe_ratio"] = (cmp.ratio_at_highest_j, "")
                out.figures["highest_common_j"] = (cmp.highest_j, "mA/cm^2")
                if np.isfinite(cmp.divergence_j):
                    out.figures["divergence_j"] = (cmp.divergence_j, "mA/cm^2")
                else:
                    out.notes.append(
                        f"pulsed vs DC EQE: within {100 * DIVERGENCE:g} % up to "
                        f"{cmp.highest_j:.4g} mA/cm²"
                    )
    if set_width_ms is not None and achieved_width_ms is not None and len(set_width_ms):
        deviation = np.asarray(achieved_width_ms, float) / np.asarray(set_width_ms, float) - 1
        if np.any(np.isfinite(deviation)):
            worst = float(deviation[np.nanargmax(np.abs(deviation))])
            out.figures["width_deviation_worst"] = (100.0 * worst, "%")
    for name, values, units in (
        ("duty_cycle", duty_percent, "%"),
        ("peak_current", peak_current, "A"),
        ("mean_current", mean_current, "A"),
    ):
        if values is not None and np.any(np.isfinite(values)):
            v = np.asarray(values, float)
            out.figures[f"{name}_min"] = (float(np.nanmin(v)), units)
            out.figures[f"{name}_max"] = (float(np.nanmax(v)), units)
    return out


def _level_figures(out: PulsedAnalysis, levels: LevelResults, level_units: str) -> None:
    """The per-level results as arrays across the levels, in level order."""
    out.figures["levels_drive"] = (levels.level, level_units)
    out.figures["levels_j"] = (levels.j, "mA/cm^2")
    out.figures["levels_eqe_pulsed"] = (levels.eqe_pulsed, "%")
    if np.any(np.isfinite(levels.eqe_dc)):
        out.figures["levels_eqe_dc"] = (levels.eqe_dc, "%")
        out.figures["levels_eqe_ratio"] = (levels.eqe_ratio, "")
    out.figures["levels_el_drop"] = (levels.el_drop, "%")
    if np.any(np.isfinite(levels.heating_drop)):
        out.figures["levels_heating_drop"] = (levels.heating_drop, "%")
        out.figures["levels_el_drift"] = (levels.el_drift, "%")


def _heating_figures(
    out: PulsedAnalysis,
    width_ms: np.ndarray,
    el: np.ndarray,
    on_time_s: np.ndarray,
    reference: np.ndarray,
) -> None:
    """Heating drop and drift of a bracketed sweep, or a note saying why not."""
    try:
        split = separate_heating(width_ms, el, on_time_s, reference)
    except ValueError as exc:
        out.notes.append(f"heating vs drift: {exc}")
        return
    out.figures["heating_drop"] = (100.0 * split.heating_drop, "%")
    out.figures["el_drift"] = (100.0 * split.drift, "%")
    out.figures["el_drift_on_time"] = (split.drift_on_time, "s")
    out.figures["el_drift_references"] = (split.references, "")
    out.figures["heating_method"] = (HEATING_METHOD, "")
