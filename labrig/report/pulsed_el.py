"""Report figure of pulsed-EL runs (``pulsed-el``): (a) EL against pulse width at each
drive level, normalised to the shortest width, with the relative drop written at the
longest width (self-heating within a pulse shows as a falling curve); (b) pulsed against
DC EQE–J on one log-J axis, with the divergence J the run's analysis found; (c) how well
the pulses were made: achieved-width deviation from the set width and the achieved duty
cycle; (d) the figures.

EL is the dark-subtracted photodiode current (luminance when the photodiode column is
missing), divided by its value at the shortest width of the same drive level — the same
normalisation ``labrig.analysis.pulsed.el_width_trend`` uses for the stored ``el_drop``.
The pulsed EQE–J curve is drawn at the shortest pulse width (the coolest device): for a
width sweep over several levels, the per-level results the analysis stored (``levels_*``:
each level's last reference-width train, taken right before its DC point), each point
labelled with its pulsed/DC ratio; EQE spanning a roll-off is on a log axis, so the ratio
reads as the gap.  DC points are the run's ``dc`` / ``dc file`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from labrig.analysis.pulsed import el_width_trend
from labrig.report.style import (
    axis_label,
    colour,
    figure_value,
    figures_rows,
    figures_table,
    letter_panels,
    new_figure,
    no_data,
    positive,
    run_labels,
    title,
)
from labrig.store import LoadedRun

PULSED_MODES = ("width sweep", "drive sweep")
DC_MODES = ("dc", "dc file")

PULSED_TABLE = (
    ("el_drop", "EL drop over widths (as measured)"),
    ("heating_drop", "  of it heating (drift removed)"),
    ("el_drift", "EL drift over the sweep (ageing)"),
    ("el_drift_on_time", "  over drive on-time"),
    ("el_width_level", "at drive level"),
    ("el_monotonic_with_width", "EL falls at every longer width"),
    ("shortest_width", "shortest width"),
    ("longest_width", "longest width"),
    ("pulsed_dc_eqe_ratio", "EQE pulsed / DC at highest J"),
    ("highest_common_j", "highest common J"),
    ("divergence_j", "divergence J (> 5 %)"),
    ("width_deviation_worst", "worst width deviation"),
    ("duty_cycle_min", "duty cycle min"),
    ("duty_cycle_max", "duty cycle max"),
    ("peak_current_max", "peak current max"),
    ("mean_current_max", "mean current max"),
)


def pulsed_figure(runs: Sequence[LoadedRun]) -> Figure:
    fig, axes = new_figure(2, 2, width=5.0, height=3.8)
    ax_el, ax_eqe = axes[0]
    ax_w, ax_tab = axes[1]
    labels = run_labels(runs)
    multi = len(runs) > 1
    _el_panel(ax_el, runs, labels, multi)
    _eqe_panel(ax_eqe, runs, labels, multi)
    _width_panel(ax_w, runs, labels)
    header, rows = figures_rows(runs, PULSED_TABLE)
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_el, ax_eqe, ax_w])
    title(fig, "pulsed EL", runs)
    return fig


def level_text(loaded: LoadedRun, level: float) -> str:
    """A drive level in the run's drive unit: mA for a current drive, V for voltage."""
    drive = str(loaded.run.parameters.get("drive", ("current", ""))[0])
    return f"{level:g} V" if drive == "voltage" else f"{level * 1e3:.3g} mA"


def _rows(loaded: LoadedRun, modes: Sequence[str]) -> dict[str, np.ndarray]:
    """The rows of ``modes``, without the reference trains that bracket a width sweep
    (they measure the drift, stored as ``el_drift``; files before them have none)."""
    t = loaded.table()
    if not t or "mode" not in t:
        return {}
    keep = np.isin(np.asarray(t["mode"]).astype(str), list(modes))
    if "reference" in t:
        keep &= np.asarray(t["reference"]) != 1
    return {k: np.asarray(v)[keep] for k, v in t.items()}


def el_curves(loaded: LoadedRun) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(drive level, widths in ms, EL normalised to the shortest width) per drive level
    with two or more widths, levels ascending."""
    t = _rows(loaded, PULSED_MODES)
    if not t or "set_width" not in t:
        return []
    name = "photodiode_current" if "photodiode_current" in t else "luminance"
    if name not in t:
        return []
    widths = np.asarray(t["set_width"], float)
    el = np.asarray(t[name], float)
    levels = np.asarray(t.get("drive_level", np.zeros(len(widths))), float)
    curves = []
    for level in np.unique(levels[np.isfinite(levels)]):
        at = levels == level
        try:
            trend = el_width_trend(widths[at], el[at])
        except ValueError:
            continue
        curves.append((float(level), trend.width, trend.el / trend.el[0]))
    return curves


def _log_x(ax: Axes) -> None:
    """Log x with plain numbers at 1, 2, 5 × 10^n (mathtext 3×10¹ labels collide)."""
    lo, hi = ax.dataLim.intervalx
    if ax.has_data() and np.isfinite(lo) and lo > 0 and hi / lo < 4:  # one J: no warning,
        centre = math.sqrt(lo * hi)  # and a readable span around it
        ax.set_xlim(centre / 2, centre * 2)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _signed_drop(drop_percent: float) -> str:
    """``−9.0 %`` for a 9 % fall (one decimal above 1 %, two digits below)."""
    size = abs(drop_percent)
    text = f"{size:.1f}" if size >= 1 else f"{size:.2g}"
    return f"−{text} %" if drop_percent >= 0 else f"+{text} %"


def _spread(values: Sequence[float], gap: float) -> list[float]:
    """``values`` moved apart to at least ``gap`` (same order), for end-of-curve labels."""
    order = np.argsort(values)
    out = np.asarray(values, float).copy()
    for a, b in zip(order[:-1], order[1:], strict=True):
        out[b] = max(out[b], out[a] + gap)
    return list(out)


def _el_panel(ax: Axes, runs: Sequence[LoadedRun], labels: Sequence[str], multi: bool) -> None:
    k = 0
    ends: list[tuple[float, float, str, str]] = []  # (width, EL, text, colour)
    for loaded, label in zip(runs, labels, strict=True):
        for level, width, rel in el_curves(loaded):
            col = colour(k % 7)  # never the palette's yellow: too faint for a curve
            k += 1
            text = level_text(loaded, level)
            ax.plot(
                width, rel, "o-", color=col, label=f"{label}, {text}" if multi else text
            )  # fmt: skip
            drop = 100.0 * (1.0 - rel[-1])
            ends.append((width[-1], rel[-1], _signed_drop(drop), col))
    if k == 0:
        no_data(ax, "no pulse-width sweep in the file")
    _log_x(ax)
    if ends:
        # relative drop at each curve's end, labels kept apart by one text line
        ax.margins(x=0.18)
        lo, hi = ax.get_ylim()
        ys = _spread([e[1] for e in ends], 0.055 * (hi - lo))
        for (w, y, text, col), y_text in zip(ends, ys, strict=True):
            ax.annotate(
                text, (w, y), xytext=(w * 1.12, y_text), fontsize=8, color=col,
                va="center", ha="left",
            )  # fmt: skip
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
    ax.set_xlabel(axis_label("pulse width", "ms"))
    ax.set_ylabel("EL / EL(shortest width)")
    ax.set_title("EL vs pulse width")
    if k:
        ax.legend(loc="lower left", fontsize=7.5, title="drive level", title_fontsize=7.5)


def _eqe_panel(ax: Axes, runs: Sequence[LoadedRun], labels: Sequence[str], multi: bool) -> None:
    plotted = False
    any_dc = False
    marks: list[tuple[float, int, str]] = []  # (divergence J, run index, colour)
    for i, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
        col = colour(i)
        prefix = f"{label}, " if multi else ""
        j, eqe, ratio, shortest = _pulsed_eqe(loaded)
        m = positive(j, eqe)
        if m.any():
            order = np.argsort(j[m])
            ax.plot(
                j[m][order], eqe[m][order], "o-", color=col,
                label=f"{prefix}pulsed {shortest:g} ms"
                + (" (×: pulsed / DC)" if np.isfinite(ratio).any() else ""),
            )  # fmt: skip
            plotted = True
            for x, y, r in zip(j[m], eqe[m], ratio[m], strict=True):
                if np.isfinite(r):  # pulsed / DC at this level, above its point
                    ax.annotate(
                        f"×{r:.2f}", (x, y), xytext=(0, 6), textcoords="offset points",
                        ha="center", fontsize=7.5, color=col,
                    )  # fmt: skip
        dc = _rows(loaded, DC_MODES)
        any_dc |= bool(dc) and len(dc.get("mode", ())) > 0
        if dc:
            j = np.asarray(dc["current_density"], float)
            eqe = np.asarray(dc["eqe"], float)
            m = positive(j, eqe)
            if m.any():
                order = np.argsort(j[m])
                ax.plot(
                    j[m][order], eqe[m][order], "s--", color=col, mfc="white",
                    label=f"{prefix}DC",
                )  # fmt: skip
                plotted = True
        jd = figure_value(loaded, "divergence_j")
        if jd is not None:
            ax.axvline(jd, color=col, ls=":", lw=1.1)
            marks.append((jd, i, col))
    if not plotted:
        no_data(ax)
    elif not any_dc:
        ax.text(
            0.03, 0.04, "no DC reference in the file (dc_reference=none)",
            transform=ax.transAxes, fontsize=8, color="0.35",
        )  # fmt: skip
    _log_x(ax)
    x_lo, x_hi = ax.dataLim.intervalx
    if plotted and 0 < x_lo and x_hi / x_lo > 2.5:  # room for the end points' labels
        ax.set_xlim(x_lo / 1.25, x_hi * 1.25)
    lo, hi = ax.dataLim.intervaly
    if plotted and lo > 0 and hi / lo > 3:  # EQE over a roll-off: the ratio as a gap
        ax.set_yscale("log")
        ax.set_ylim(lo / 1.3, hi * 1.6)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    _divergence_labels(ax, marks)
    ax.set_xlabel(axis_label("current density J", "mA/cm^2"))
    ax.set_ylabel(axis_label("EQE", "%"))
    ax.set_title("pulsed vs DC EQE–J")
    if plotted:
        ax.legend(loc="best", fontsize=7.5)


def _pulsed_eqe(loaded: LoadedRun) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """J, EQE and pulsed/DC ratio of the pulsed EQE–J curve, and its pulse width (ms): a
    width sweep's per-level results (each level's reference-width train before its DC
    point, as the analysis compared them), else the rows at the shortest width."""
    figures = loaded.figures()
    pulsed = _rows(loaded, PULSED_MODES)
    widths = np.asarray(pulsed.get("set_width", ()), float)
    shortest = float(np.nanmin(widths)) if np.isfinite(widths).any() else math.nan
    if "levels_j" in figures and "levels_eqe_pulsed" in figures:
        j = np.atleast_1d(np.asarray(figures["levels_j"][0], float))
        eqe = np.atleast_1d(np.asarray(figures["levels_eqe_pulsed"][0], float))
        ratio = figures.get("levels_eqe_ratio", (np.full(j.shape, np.nan), ""))[0]
        return j, eqe, np.atleast_1d(np.asarray(ratio, float)), shortest
    if not pulsed or "current_density" not in pulsed:
        return np.array([]), np.array([]), np.array([]), shortest
    at = widths == shortest
    j = np.asarray(pulsed["current_density"], float)[at]
    return j, np.asarray(pulsed["eqe"], float)[at], np.full(at.sum(), np.nan), shortest


def _divergence_labels(ax: Axes, marks: Sequence[tuple[float, int, str]]) -> None:
    """Each divergence J written beside its line, in the middle height band (EQE–J curves
    fall from top left to bottom right), on the side of the line with more room."""
    lo, hi = (np.log10(v) for v in ax.get_xlim())
    for jd, i, col in marks:
        right_half = (np.log10(jd) - lo) / (hi - lo) > 0.5
        ax.annotate(
            f"diverge {jd:.3g} mA/cm²", (jd, 0.55 - 0.07 * i),
            xycoords=("data", "axes fraction"), xytext=(-3 if right_half else 3, 0),
            textcoords="offset points", fontsize=7.5, color=col,
            ha="right" if right_half else "left",
            bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1.0},
        )  # fmt: skip


def _width_panel(ax: Axes, runs: Sequence[LoadedRun], labels: Sequence[str]) -> None:
    """Width deviation (left axis, filled) and duty cycle (right axis, open) per set width."""
    duty_ax = ax.twinx()
    duty_ax.spines["right"].set_visible(True)
    duty_ax.grid(False)
    plotted = False
    multi = len(runs) > 1
    for i, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
        prefix = f"{label}: " if multi else ""
        t = _rows(loaded, PULSED_MODES)
        if not t or "set_width" not in t or "achieved_width" not in t:
            continue
        set_w = np.asarray(t["set_width"], float)
        dev = 100.0 * (np.asarray(t["achieved_width"], float) / set_w - 1.0)
        duty = np.asarray(t.get("duty_cycle", np.full(len(set_w), np.nan)), float)
        col = colour(i)
        m = positive(set_w) & np.isfinite(dev)
        if m.any():
            ax.plot(set_w[m], dev[m], "o", color=col, label=f"{prefix}width deviation")
            plotted = True
        md = positive(set_w, duty)
        if md.any():
            duty_ax.plot(
                set_w[md], duty[md], "^", color=col, mfc="white", ms=6,
                label=f"{prefix}duty cycle",
            )  # fmt: skip
    if not plotted:
        no_data(ax)
    _log_x(ax)
    duty_ax.ticklabel_format(axis="y", useOffset=False)
    ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_xlabel(axis_label("set pulse width", "ms"))
    ax.set_ylabel(axis_label("achieved − set width", "%"))
    duty_ax.set_ylabel(axis_label("achieved duty cycle", "%"))
    _qc_limits(ax, 0.0, 1.0)  # a 0.03 % deviation reads as nothing, not as a trend
    duty_data = duty_ax.dataLim.intervaly
    if np.all(np.isfinite(duty_data)) and duty_data[1] > 0:
        centre = float(np.mean(duty_data))
        _qc_limits(duty_ax, centre, 0.1 * centre)  # ±10 % of the duty cycle at least
    ax.set_title("pulse timing")
    handles, names = ax.get_legend_handles_labels()
    h2, n2 = duty_ax.get_legend_handles_labels()
    if handles or h2:
        ax.legend(handles + h2, names + n2, loc="upper center", fontsize=7.5, ncol=1)


def _qc_limits(ax: Axes, centre: float, half_span: float) -> None:
    """y limits spanning at least ``centre ± half_span`` (scatter within a tolerance
    looks flat, as it is), then room above for the legend."""
    lo, hi = ax.dataLim.intervaly if ax.has_data() else (centre, centre)
    lo, hi = min(lo, centre - half_span), max(hi, centre + half_span)
    ax.set_ylim(lo, hi + 0.6 * (hi - lo))
