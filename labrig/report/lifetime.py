"""Report figure of operational-lifetime runs (``lifetime``): (a) L/L0 against time per
channel with the best decay fit (dashed) and the T50 marker (a filled circle where the
data reached 50 %, an open one with its band where the fit extrapolates), (b) T50
against L0 on log axes with the acceleration law L0ⁿ·T50 = const when the run fitted
it, (c) the per-channel figures.

The fit drawn is the one the run recorded (``best_model`` and its ``fit_<model>_*``
parameters in each channel's analysis group), evaluated with
``labrig.analysis.lifetime.DecayFit`` — not a new fit.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from labrig.report.style import (
    axis_label,
    colour,
    figure_value,
    figures_table,
    fmt,
    letter_panels,
    no_data,
    page_figure,
    pretty_units,
    run_labels,
    title,
)
from labrig.store import LoadedRun


def channel_groups(loaded: LoadedRun) -> list[str]:
    """The data groups that hold channel data (the default group of a lifetime run is
    empty; channels live in ``channel_NN``)."""
    return [g for g in loaded.run.groups if loaded.rows(g)]


def recorded_fit(loaded: LoadedRun, group: str):
    """The channel's best recorded decay fit as a ``DecayFit``, or None."""
    from labrig.analysis.lifetime import DecayFit

    figs = loaded.figures(group)
    model = figs.get("best_model", (None, ""))[0]
    if not model:
        return None
    prefix = f"fit_{model}_"
    params = {}
    for name, (value, units) in figs.items():
        if not name.startswith(prefix) or name.endswith(("_err", "_aicc")):
            continue
        key = name.removeprefix(prefix)
        if units == "h":
            params[f"{key}_s"] = float(value) * 3600.0
        else:
            params[key] = float(value)
    if not params:
        return None
    offset = 0.0
    if loaded.run.parameters.get("reference", ("initial", ""))[0] == "peak":
        t = loaded.table(group)
        lum = np.asarray(t.get("luminance", []), float)
        if lum.size and np.any(np.isfinite(lum)):
            offset = float(np.asarray(t["time"], float)[int(np.nanargmax(lum))])
    return DecayFit(
        model=model,
        params=params,
        errors={k: 0.0 for k in params},
        covariance=np.zeros((len(params), len(params))),
        rss=float("nan"),
        n_points=0,
        aicc=float("nan"),
        time_offset_s=offset,
    )


@dataclass
class ChannelSummary:
    """One channel's headline numbers: the run's recorded analysis, or — while the run
    goes on (the store writes the analysis when the run closes) — T-values read off the
    data so far with ``labrig.analysis.lifetime.t_values``."""

    l0: float | None
    j: float | None
    t95_h: float | None
    t50_h: float | None
    t50_fit: bool  # T50 from the fit's extrapolation (not reached in the data)
    band_h: tuple[float, float] | None
    model: str
    live: bool


def channel_summary(loaded: LoadedRun, group: str) -> ChannelSummary:
    figs = loaded.figures(group)

    def value(key: str) -> float | None:
        return figure_value(loaded, key, group)

    if "T50" in figs or "best_model" in figs:
        t50, fit = value("T50"), False
        if t50 is None and value("T50_best") is not None:
            t50, fit = value("T50_best"), True
        lo, hi = value("T50_best_low"), value("T50_best_high")
        return ChannelSummary(
            l0=value("initial_luminance"),
            j=value("current_density"),
            t95_h=value("T95"),
            t50_h=t50,
            t50_fit=fit,
            band_h=(lo, hi) if fit and lo is not None and hi is not None else None,
            model=str(figs.get("best_model", ("—", ""))[0]),
            live=False,
        )
    from labrig.analysis.lifetime import t_values

    t = loaded.table(group)
    time_s, lum = np.asarray(t["time"], float), np.asarray(t["luminance"], float)
    values = t_values(time_s, lum) if len(time_s) > 1 else {}

    def hours(key: str) -> float | None:
        v = values.get(key, float("nan"))
        return float(v) / 3600 if np.isfinite(v) else None

    ended = figs.get("end_reason", ("", ""))[0]  # stored when the channel ended
    j = np.asarray(t.get("current_density", []), float)
    return ChannelSummary(
        l0=float(lum[0]) if len(lum) else None,
        j=float(j[0]) if len(j) else None,
        t95_h=hours("T95"),
        t50_h=hours("T50"),
        t50_fit=False,
        band_h=None,
        model=str(ended)[:32] if ended else "(running)",
        live=True,
    )


#: per-channel markers, so channels stay apart where their curves overlap (equal devices
#: decay alike) and in greyscale print
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h")


def lifetime_figure(runs: Sequence[LoadedRun]) -> Figure:
    labels = run_labels(runs)
    multi = len(runs) > 1
    per_run = [
        (loaded, label, channel_groups(loaded)) for loaded, label in zip(runs, labels, strict=True)
    ]
    n_rows = sum(len(g) for *_, g in per_run) + sum(1 for *_, g in per_run if len(g) > 1)
    table_h = 0.6 + 0.24 * max(n_rows, 1)
    fig = page_figure(10.0, 4.0 + table_h)
    panels = fig.subplot_mosaic(
        [["decay", "scaling"], ["table", "table"]], height_ratios=[4.0, table_h]
    )
    ax_l, ax_s, ax_tab = panels["decay"], panels["scaling"], panels["table"]
    k = 0
    rows = []
    scaling = []
    for loaded, label, groups in per_run:
        summaries = []
        for group in groups:
            name = f"{label} {_short(group)}" if multi else _short(group)
            summary = channel_summary(loaded, group)
            summaries.append(summary)
            _channel(ax_l, loaded, group, name, colour(k), MARKERS[k % len(MARKERS)], summary)
            if summary.l0 is not None and summary.t50_h is not None:
                scaling.append((summary.l0, summary.t50_h, summary.t50_fit, colour(k), name))
            rows.append(
                [
                    name,
                    fmt(summary.l0, "cd/m^2"),
                    fmt(summary.j, "mA/cm^2"),
                    fmt(summary.t95_h, "h"),
                    fmt(summary.t50_h, "h") + (" (fit)" if summary.t50_fit else ""),
                    summary.model,
                ]
            )
            k += 1
        if len(summaries) > 1:
            rows.append(mean_row(f"{label} mean ± s.d." if multi else "mean ± s.d.", summaries))
    if k == 0:
        no_data(ax_l, "no channel data yet")
    ax_l.axhline(0.5, color="0.3", lw=0.8, ls=":")
    ax_l.set_xlabel(axis_label("time", "h"))
    ax_l.set_ylabel("L / L0")
    ax_l.set_ylim(0, 1.08)
    ax_l.set_xlim(left=0)
    ax_l.set_title("luminance decay at constant current")
    if k:
        handles, _ = ax_l.get_legend_handles_labels()
        handles.append(Line2D([], [], ls="--", color="0.1", lw=0.9, label="best decay fit"))
        handles.append(Line2D([], [], ls="none", marker="o", color="0.5", mec="black", label="T50"))
        ax_l.legend(
            handles=handles, loc="lower left", fontsize=7.5, ncols=1 + (len(handles) - 1) // 8
        )
    _scaling_panel(ax_s, runs, scaling)
    header = ["channel", "L0", "J", "T95", "T50", "model"]
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_l, ax_s])
    title(fig, "operational lifetime", runs)
    return fig


def mean_row(name: str, summaries: Sequence[ChannelSummary]) -> list[str]:
    """The table's ``mean ± s.d.`` row over channels (sample standard deviation; a
    figure missing on a channel is left out of that column's statistics)."""

    def stat(values: list[float | None], units: str) -> str:
        v = np.array([x for x in values if x is not None], float)
        if v.size < 2:
            return fmt(float(v[0]) if v.size else None, units)
        mean, sd = (
            np.format_float_positional(x, precision=p, unique=False, fractional=False, trim="-")
            for x, p in ((v.mean(), 4), (v.std(ddof=1), 2))
        )
        return f"{mean} ± {sd} {pretty_units(units)}"

    return [
        name,
        stat([s.l0 for s in summaries], "cd/m^2"),
        stat([s.j for s in summaries], "mA/cm^2"),
        stat([s.t95_h for s in summaries], "h"),
        stat([s.t50_h for s in summaries], "h"),
        "",
    ]


def _short(group: str) -> str:
    return group.replace("channel_", "ch ")


def _channel(
    ax: Axes,
    loaded: LoadedRun,
    group: str,
    name: str,
    col: str,
    marker: str,
    summary: ChannelSummary,
) -> None:
    t = loaded.table(group)
    time_h = np.asarray(t["time"], float) / 3600.0
    rel = np.asarray(t["relative_luminance"], float)
    m = np.isfinite(time_h) & np.isfinite(rel)
    ax.plot(
        time_h[m], rel[m], "-", color=col, label=name, lw=1.4, marker=marker, ms=4,
        mfc="white", markevery=max(1, int(m.sum()) // 8),
    )  # fmt: skip
    fit = recorded_fit(loaded, group)
    if fit is not None and m.any():
        end = max(time_h[m].max(), summary.t50_h or 0.0)
        x_h = np.linspace(0, end, 200)
        ax.plot(x_h, fit.evaluate(x_h * 3600.0), "--", color="0.1", lw=0.9)
    if summary.t50_h is None:
        return
    if not summary.t50_fit:
        ax.plot([summary.t50_h], [0.5], "o", color=col, mec="black", ms=6, zorder=5)
    elif summary.band_h is not None:  # not reached: the extrapolation with its band
        lo, hi = summary.band_h
        ax.errorbar(
            [summary.t50_h], [0.5], xerr=[[summary.t50_h - lo], [hi - summary.t50_h]], fmt="o",
            mfc="white", mec=col, ecolor=col, capsize=3, zorder=5,
        )  # fmt: skip
    else:
        ax.plot([summary.t50_h], [0.5], "o", mfc="white", mec=col, zorder=5)


def _scaling_panel(ax: Axes, runs: Sequence[LoadedRun], points: list) -> None:
    if not points:
        no_data(ax, "no T50 yet")
    for l0, t50, extrapolated, col, _name in points:
        ax.plot(
            [l0], [t50], "o", mfc="white" if extrapolated else col, mec=col, ms=7, ls="none",
        )  # fmt: skip
    labels = run_labels(runs)
    styles = ("--", "-.", ":", (0, (5, 1, 1, 1)))
    drawn = False
    for k, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
        n = figure_value(loaded, "acceleration_exponent")
        ref = figure_value(loaded, "T50_at_1000_cd_m2")
        who = f"{label}: " if len(runs) > 1 else ""
        warning = scaling_warning(loaded)
        if warning:  # under the x label, wrapped to the panel: never over a point
            ax.annotate(
                textwrap.fill(f"{who}{warning}", 80), (0, 0), xycoords="axes fraction",
                xytext=(0, -30 - 40 * k), textcoords="offset points", fontsize=7,
                color="#b00020", va="top",
            )  # fmt: skip
        if n is None or ref is None or not points:
            continue
        l0s = np.array([p[0] for p in points])
        x = np.geomspace(min(l0s.min(), 1000) / 1.5, max(l0s.max(), 1000) * 1.5, 50)
        n_err = figure_value(loaded, "acceleration_exponent_err")
        ax.plot(
            x, ref * (1000.0 / x) ** n, ls=styles[k % len(styles)], lw=1,
            color="#b00020" if warning else "0.3",
            label=f"{who}L0ⁿ·T50 = const, n = {n:.2f}" + (f" ± {n_err:.2f}" if n_err else ""),
        )  # fmt: skip
        ax.plot([1000], [ref], "D", color="0.3", ms=5, label=f"{who}T50(1000 cd/m²) = {ref:.3g} h")
        drawn = True
    if drawn:
        ax.legend(fontsize=7, loc="lower left")
    scale = scaling_axes(points)
    ax.set_xscale(scale)
    ax.set_yscale(scale)
    if scale == "linear":  # plain numbers: no offset text, no 9.95×10² tick crowding
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ScalarFormatter(useOffset=False))
            axis.set_major_locator(MaxNLocator(5))
        ax.margins(0.15)
    ax.set_xlabel(axis_label("initial luminance L0", "cd/m^2"))
    ax.set_ylabel(axis_label("T50", "h"))
    ax.set_title("luminance scaling (open: extrapolated)")


def scaling_axes(points: Sequence[tuple]) -> str:
    """``"log"`` when the channels' L0 span a decade or more (where a power law is a
    straight line worth reading), ``"linear"`` otherwise: log ticks over 995–1003 cd/m²
    overprint each other and say nothing."""
    l0 = np.array([p[0] for p in points], float)
    l0 = l0[np.isfinite(l0) & (l0 > 0)]
    return "log" if l0.size and l0.max() / l0.min() >= 10.0 else "linear"


def scaling_warning(loaded: LoadedRun) -> str:
    """One line when the run's luminance scaling is not to be trusted: the power law
    does not describe the channels (lack of fit, as the run stored it), or n could not
    be fitted at all (and why); empty otherwise."""
    figs = loaded.figures(None)
    if str(figs.get("scaling_law_describes_data", ("", ""))[0]) == "no":
        return (
            "power law does not describe the data: "
            + str(figs.get("scaling_law_note", ("", ""))[0]).split(": ", 1)[-1]
        )
    note = figs.get("acceleration_exponent_note")
    return str(note[0]) if note else ""
