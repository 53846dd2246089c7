"""Report figure of solar-cell runs (``solar-jv``): (a) J–V dark and under light, both
scan directions (reverse Voc→Jsc solid, forward dashed; dark in grey tones), with Voc,
Jsc and the maximum-power point marked; (b) the power density P–V; (c) the PV figures
per direction; and, when the run tracked the maximum-power point, (d) P against time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labrig.report.style import (
    axis_label,
    colour,
    figure_value,
    figures_rows,
    figures_table,
    letter_panels,
    new_figure,
    no_data,
    run_labels,
    title,
)
from labrig.store import LoadedRun

DIRECTIONS = {"reverse": "-", "forward": "--"}
SCANS = ("light", "dark")

PV_TABLE = tuple(
    (f"{direction}_{name}", f"{label} ({direction[:3]}.)")
    for name, label in (
        ("voc", "Voc"),
        ("jsc", "Jsc"),
        ("ff", "FF"),
        ("pce", "PCE"),
        ("pmax", "Pmax"),
        ("vmp", "Vmp"),
        ("rs", "Rs"),
        ("rsh", "Rsh"),
    )
    for direction in ("reverse", "forward")
) + (("hysteresis_index", "hysteresis index"),)


def solar_figure(runs: Sequence[LoadedRun]) -> Figure:
    has_mpp = any(lr.rows("mpp") for lr in runs)
    fig, axes = new_figure(1, 4 if has_mpp else 3)
    row = list(axes[0])
    ax_jv, ax_p, ax_tab = row[0], row[1], row[2]
    labels = run_labels(runs)
    multi = len(runs) > 1
    plotted = False
    j_light = []
    for i, loaded in enumerate(runs):
        t = loaded.table()
        if not t:
            continue
        scan, direction = np.asarray(t["scan"]).astype(str), np.asarray(t["direction"]).astype(str)
        v, j, p = (np.asarray(t[k], float) for k in ("voltage", "current_density", "power_density"))
        for s in SCANS:
            for d, ls in DIRECTIONS.items():
                m = (scan == s) & (direction == d) & np.isfinite(v) & np.isfinite(j)
                if not m.any():
                    continue
                order = np.argsort(v[m])
                col = colour(i) if (multi or s == "light") else "0.45"
                alpha = 0.55 if (s == "dark" and multi) else 1.0
                ax_jv.plot(v[m][order], j[m][order], ls=ls, color=col, alpha=alpha)
                plotted = True
                if s == "light":
                    j_light.append(j[m])
                    ax_p.plot(v[m][order], p[m][order], ls=ls, color=col)
        for d, marker in (("reverse", "*"), ("forward", "P")):
            vmp, pmax = figure_value(loaded, f"{d}_vmp"), figure_value(loaded, f"{d}_pmax")
            if vmp is None or pmax is None:
                continue
            ax_p.plot([vmp], [pmax], marker, color=colour(i), mec="black", ms=10, zorder=5)
            if d == "reverse" or not multi:
                ax_p.annotate(
                    f"Pmax {pmax:.3g} mW/cm² ({d[:3]}.)", (vmp, pmax),
                    xytext=(-8, 8 + (12 * i if multi else 0) - (24 if d == "forward" else 0)),
                    textcoords="offset points", ha="right", fontsize=7.5, color=colour(i),
                )  # fmt: skip
        for d in DIRECTIONS:
            voc = figure_value(loaded, f"{d}_voc")
            jsc = figure_value(loaded, f"{d}_jsc")
            vmp = figure_value(loaded, f"{d}_vmp")
            jmp = figure_value(loaded, f"{d}_jmp")
            if voc is not None:
                ax_jv.plot([voc], [0], "o", mfc="white", mec=colour(i), ms=5, zorder=5)
            if jsc is not None:
                ax_jv.plot([0], [-jsc], "s", mfc="white", mec=colour(i), ms=5, zorder=5)
            if vmp is not None and jmp is not None:
                ax_jv.plot([vmp], [-jmp], "*", color=colour(i), ms=9, zorder=5)
    if not plotted:
        no_data(ax_jv)
        no_data(ax_p)
    ax_jv.axhline(0, color="0.3", lw=0.7)
    ax_jv.axvline(0, color="0.3", lw=0.7)
    if j_light:  # keep the photovoltaic quadrant readable: clip the dark forward rise
        jl = np.concatenate(j_light)
        jsc_max = float(np.nanmax(-jl)) if np.any(np.isfinite(jl)) else 0.0
        if jsc_max > 0:
            ax_jv.set_ylim(-1.25 * jsc_max, 0.75 * jsc_max)
    ax_jv.set_xlabel(axis_label("voltage", "V"))
    ax_jv.set_ylabel(axis_label("current density J", "mA/cm^2"))
    ax_jv.set_title("J–V (dark and light)")
    handles = [
        Line2D([], [], color="0.2", ls="-", label="reverse (Voc→Jsc)"),
        Line2D([], [], color="0.2", ls="--", label="forward (Jsc→Voc)"),
        Line2D([], [], marker="o", mfc="white", mec="0.2", ls="none", label="Voc"),
        Line2D([], [], marker="s", mfc="white", mec="0.2", ls="none", label="Jsc"),
        Line2D([], [], marker="*", color="0.2", ls="none", ms=9, label="max. power point"),
    ]
    if multi:
        handles += [Line2D([], [], color=colour(i), label=lab) for i, lab in enumerate(labels)]
    else:
        handles.insert(2, Line2D([], [], color="0.45", label="dark"))
        handles.insert(2, Line2D([], [], color=colour(0), label="light"))
    ax_jv.legend(handles=handles, loc="upper left", fontsize=7.5)

    ax_p.axhline(0, color="0.3", lw=0.7)
    ax_p.set_xlabel(axis_label("voltage", "V"))
    ax_p.set_ylabel(axis_label("output power density P", "mW/cm^2"))
    ax_p.set_ylim(bottom=0, top=ax_p.get_ylim()[1] * 1.12)  # room for the Pmax label
    ax_p.set_title("power under illumination")

    header, rows = figures_rows(runs, PV_TABLE)
    figures_table(ax_tab, header, rows, "figures")
    panels = [ax_jv, ax_p]
    if has_mpp:
        ax_m = row[3]
        for i, loaded in enumerate(runs):
            t = loaded.table("mpp")
            if t and len(t["power_density"]):
                ts = np.asarray(t["timestamp"], float)
                ax_m.plot(ts - ts[0], t["power_density"], color=colour(i), label=labels[i])
        ax_m.ticklabel_format(axis="y", useOffset=False)
        ax_m.set_xlabel(axis_label("time", "s"))
        ax_m.set_ylabel(axis_label("P at tracked MPP", "mW/cm^2"))
        ax_m.set_title("maximum-power-point tracking")
        panels.append(ax_m)
    letter_panels(panels)
    title(fig, "solar-cell J–V", runs)
    return fig
