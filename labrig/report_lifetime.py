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

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labrig.report_common import (
    axis_label,
    colour,
    figure_value,
    figures_table,
    fmt,
    letter_panels,
    new_figure,
    no_data,
    run_labels,
    title,
)
from labrig.report_data import LoadedRun


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


def lifetime_figure(runs: Sequence[LoadedRun]) -> Figure:
    fig, axes = new_figure(1, 3, width=4.6)
    ax_l, ax_s, ax_tab = axes[0]
    labels = run_labels(runs)
    multi = len(runs) > 1
    k = 0
    rows = []
    scaling = []
    for loaded, label in zip(runs, labels, strict=True):
        for group in channel_groups(loaded):
            name = f"{label} {_short(group)}" if multi else _short(group)
            _channel(ax_l, loaded, group, name, colour(k))
            l0 = figure_value(loaded, "initial_luminance", group)
            t50 = figure_value(loaded, "T50", group)
            extrapolated = t50 is None
            if t50 is None:
                t50 = figure_value(loaded, "T50_best", group)
            if l0 is not None and t50 is not None:
                scaling.append((l0, t50, extrapolated, colour(k), name))
            rows.append(_table_row(loaded, group, name))
            k += 1
    if k == 0:
        no_data(ax_l, "no channel data yet")
    ax_l.axhline(0.5, color="0.3", lw=0.8, ls=":")
    ax_l.set_xlabel(axis_label("time", "h"))
    ax_l.set_ylabel("L / L0")
    ax_l.set_ylim(0, 1.08)
    ax_l.set_xlim(left=0)
    ax_l.set_title("luminance decay at constant current")
    if k:
        ax_l.legend(loc="upper right", fontsize=7.5)
    _scaling_panel(ax_s, runs, scaling)
    header = ["channel", "L0", "J", "T95", "T50", "model"]
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_l, ax_s])
    title(fig, "operational lifetime", runs)
    return fig


def _short(group: str) -> str:
    return group.replace("channel_", "ch ")


def _channel(ax: Axes, loaded: LoadedRun, group: str, name: str, col: str) -> None:
    t = loaded.table(group)
    time_h = np.asarray(t["time"], float) / 3600.0
    rel = np.asarray(t["relative_luminance"], float)
    m = np.isfinite(time_h) & np.isfinite(rel)
    ax.plot(time_h[m], rel[m], "-", color=col, label=name, lw=1.4)
    fit = recorded_fit(loaded, group)
    if fit is not None and m.any():
        end = max(time_h[m].max(), figure_value(loaded, "T50_best", group) or 0.0)
        x_h = np.linspace(0, end, 200)
        ax.plot(x_h, fit.evaluate(x_h * 3600.0), "--", color="0.15", lw=0.9)
    t50 = figure_value(loaded, "T50", group)
    if t50 is not None:
        ax.plot([t50], [0.5], "o", color=col, mec="black", ms=6, zorder=5)
        return
    best = figure_value(loaded, "T50_best", group)
    if best is not None:  # not reached: the extrapolation with its band
        lo = figure_value(loaded, "T50_best_low", group)
        hi = figure_value(loaded, "T50_best_high", group)
        if lo is not None and hi is not None:
            ax.errorbar(
                [best], [0.5], xerr=[[best - lo], [hi - best]], fmt="o", mfc="white", mec=col,
                ecolor=col, capsize=3, zorder=5,
            )  # fmt: skip
        else:
            ax.plot([best], [0.5], "o", mfc="white", mec=col, zorder=5)


def _scaling_panel(ax: Axes, runs: Sequence[LoadedRun], points: list) -> None:
    if not points:
        no_data(ax, "no T50 yet")
    for l0, t50, extrapolated, col, _name in points:
        ax.plot(
            [l0], [t50], "o", mfc="white" if extrapolated else col, mec=col, ms=7, ls="none",
        )  # fmt: skip
    for loaded in runs:
        n = figure_value(loaded, "acceleration_exponent")
        ref = figure_value(loaded, "T50_at_1000_cd_m2")
        if n is None or ref is None or not points:
            continue
        l0s = np.array([p[0] for p in points])
        x = np.geomspace(min(l0s.min(), 1000) / 1.5, max(l0s.max(), 1000) * 1.5, 50)
        ax.plot(
            x,
            ref * (1000.0 / x) ** n,
            "--",
            color="0.3",
            lw=1,
            label=f"L0ⁿ·T50 = const, n = {n:.2f}",
        )
        ax.plot([1000], [ref], "D", color="0.3", ms=5, label=f"T50 at 1000 cd/m² = {ref:.3g} h")
        ax.legend(fontsize=7.5, loc="upper right")
        break
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(axis_label("initial luminance L0", "cd/m^2"))
    ax.set_ylabel(axis_label("T50", "h"))
    ax.set_title("luminance scaling (open: extrapolated)")


def _table_row(loaded: LoadedRun, group: str, name: str) -> list[str]:
    figs = loaded.figures(group)

    def cell(key: str) -> str:
        item = figs.get(key)
        return "—" if item is None else fmt(*item)

    t50 = cell("T50")
    if t50 == "—" and "T50_best" in figs:
        t50 = fmt(*figs["T50_best"]) + " (fit)"
    if not figs:
        return [name, "—", "—", "—", "running" if loaded.run.status == "running" else "—", "—"]
    end = figs.get("end_reason", ("", ""))[0]
    if "best_model" not in figs and end:  # ended before a fit was possible: say why
        return [name, cell("initial_luminance"), cell("current_density"), "—", "—", str(end)[:32]]
    return [
        name,
        cell("initial_luminance"),
        cell("current_density"),
        cell("T95"),
        t50,
        cell("best_model"),
    ]
