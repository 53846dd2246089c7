"""Report figure of single-carrier runs (``sclc``): (a) log J – log V with the Ohmic,
trap-filled-limit and Child regions shaded, the Ohmic and TFL lines meeting at V_TFL,
and the Mott–Gurney law drawn with the fitted mobility; (b) the local log–log slope
with the slope-1 and slope-2 guides; (c) the figures.

The Mott–Gurney curve is J = 9/8·ε0·εr·μ·V²/d³ with the run's recorded mobility and
the film thickness and permittivity of the bench config stored in the file — the fit
the run reports, not a new one.  Only when the stored config cannot be read is the
one-parameter V² law fitted again on the recorded Child range (and the legend says so).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labrig.analysis.sclc import VACUUM_PERMITTIVITY_F_M
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

REGIONS = (
    ("ohmic", "Ohmic (slope 1)", "#56B4E9"),
    ("tfl", "trap-filled limit", "#E69F00"),
    ("child_fit", "Child / Mott–Gurney (slope 2)", "#009E73"),
)

SCLC_TABLE = (
    ("mobility", "mobility μ (Mott–Gurney)"),
    ("v_tfl", "V_TFL"),
    ("trap_density", "trap density n_t"),
    ("ohmic_slope", "Ohmic slope"),
    ("tfl_slope", "TFL slope"),
    ("child_slope", "Child slope"),
    ("child_fit_v_min", "MG fit from"),
    ("child_fit_v_max", "MG fit to"),
    ("notes", "notes"),
)


def sclc_figure(runs: Sequence[LoadedRun]) -> Figure:
    fig, axes = new_figure(1, 3)
    ax_j, ax_s, ax_tab = axes[0]
    labels = run_labels(runs)
    plotted = False
    for i, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
        t = loaded.table()
        if not t:
            continue
        v, j = np.asarray(t["voltage"], float), np.abs(np.asarray(t["current_density"], float))
        m = positive(v, j)
        if not m.any():
            continue
        plotted = True
        ax_j.plot(v[m], j[m], "o", ms=3.5, color=colour(i), label=label, zorder=4)
        if len(runs) == 1:
            _regions(ax_j, loaded)
        _construction(ax_j, loaded, v[m], j[m], colour(i))
        if "slope" in t:
            s = np.asarray(t["slope"], float)
            ms = m & np.isfinite(s)
            ax_s.plot(v[ms], s[ms], "o-", ms=3, color=colour(i), label=label)
            if len(runs) == 1:
                _regions(ax_s, loaded)
    if not plotted:
        no_data(ax_j)
        no_data(ax_s)
    ax_j.set_xscale("log")
    ax_j.set_yscale("log")
    ax_j.set_xlabel(axis_label("voltage", "V"))
    ax_j.set_ylabel(axis_label("current density |J|", "mA/cm^2"))
    ax_j.set_title("SCLC log–log J–V")
    ax_j.legend(loc="upper left", fontsize=7.5)
    ax_s.set_xscale("log")
    for level in (1, 2):
        ax_s.axhline(level, color="0.3", lw=0.8, ls=":")
    ax_s.set_xlabel(axis_label("voltage", "V"))
    ax_s.set_ylabel("local slope d ln J / d ln V")
    ax_s.set_title("log–log slope")
    if len(runs) > 1:
        ax_s.legend(fontsize=7.5)
    header, rows = figures_rows(runs, SCLC_TABLE)
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_j, ax_s])
    title(fig, "space-charge-limited current", runs)
    return fig


def _range(loaded: LoadedRun, name: str) -> tuple[float, float] | None:
    lo, hi = figure_value(loaded, f"{name}_v_min"), figure_value(loaded, f"{name}_v_max")
    return None if lo is None or hi is None else (lo, hi)


def _regions(ax: Axes, loaded: LoadedRun) -> None:
    for name, label, col in REGIONS:
        rng = _range(loaded, name)
        if rng is not None:
            ax.axvspan(*rng, color=col, alpha=0.15, lw=0, label=label, zorder=0)


def _loglog_line(v: np.ndarray, j: np.ndarray, rng: tuple[float, float]):
    """Straight line (slope, intercept) in log–log through the points inside ``rng``."""
    m = (v >= rng[0] * (1 - 1e-9)) & (v <= rng[1] * (1 + 1e-9))
    if m.sum() < 2:
        return None
    slope, intercept = np.polyfit(np.log(v[m]), np.log(j[m]), 1)
    return float(slope), float(intercept)


def _construction(ax: Axes, loaded: LoadedRun, v: np.ndarray, j: np.ndarray, col: str) -> None:
    """Ohmic and TFL lines to V_TFL, and the Mott–Gurney curve over its fit range."""
    v_tfl = figure_value(loaded, "v_tfl")
    ohmic, tfl = _range(loaded, "ohmic"), _range(loaded, "tfl")
    if v_tfl is not None and ohmic is not None and tfl is not None:
        lo = _loglog_line(v, j, ohmic)
        tl = _loglog_line(v, j, tfl)
        if lo is not None:
            x = np.geomspace(v.min(), v_tfl * 1.5, 50)
            ax.plot(x, np.exp(lo[1]) * x ** lo[0], "-", color="0.35", lw=0.9, zorder=3)
        if tl is not None:
            x = np.geomspace(v_tfl / 1.5, tfl[1], 50)
            ax.plot(x, np.exp(tl[1]) * x ** tl[0], "-", color="0.35", lw=0.9, zorder=3)
        ax.axvline(v_tfl, color=col, ls="--", lw=1.0)
        ax.annotate(
            f"V_TFL = {v_tfl:.3g} V", (v_tfl, 0.04), xycoords=("data", "axes fraction"),
            xytext=(4, 0), textcoords="offset points", fontsize=8, color=col,
        )  # fmt: skip
    child = _range(loaded, "child_fit")
    if child is None:
        return
    x = np.geomspace(child[0], child[1], 50)
    curve, how = _mott_gurney(loaded, x, v, j, child)
    if curve is not None:
        mu = figure_value(loaded, "mobility")
        text = f"Mott–Gurney, μ = {mu:.3g} cm²/(V·s)" if mu is not None else "Mott–Gurney"
        ax.plot(x, curve, "-", color=col, lw=2.2, alpha=0.8, label=text + how, zorder=5)


def _mott_gurney(loaded: LoadedRun, x, v, j, child) -> tuple[np.ndarray | None, str]:
    """J_MG(x) in mA/cm² from the recorded mobility and the stored device geometry."""
    mu = figure_value(loaded, "mobility")
    vbi = loaded.run.parameters.get("built_in_voltage", (0.0, "V"))[0] or 0.0
    veff = np.clip(x - float(vbi), 0, None)
    geometry = _device_geometry(loaded)
    if mu is not None and geometry is not None:
        d_cm, eps_r = geometry
        return 9 / 8 * VACUUM_PERMITTIVITY_F_M * 1e-2 * eps_r * mu * veff**2 / d_cm**3 * 1e3, ""
    m = (v >= child[0]) & (v <= child[1]) & (v > float(vbi))
    if m.sum() < 2:
        return None, ""
    k = np.exp(np.mean(np.log(j[m]) - 2 * np.log(v[m] - float(vbi))))
    return k * veff**2, " (V² law refitted: config unreadable)"


def _device_geometry(loaded: LoadedRun) -> tuple[float, float] | None:
    """(thickness in cm, relative permittivity) from the config stored in the run."""
    from labrig.config import parse_config, parse_yaml

    try:
        cfg = parse_config(parse_yaml(loaded.run.config_text))
    except Exception:  # noqa: BLE001 - an unreadable stored config: fall back to a refit
        return None
    d_nm = getattr(cfg.device, "thickness_nm", None)
    eps = getattr(cfg.device, "relative_permittivity", None)
    if not d_nm or not eps:
        return None
    return float(d_nm) * 1e-7, float(eps)
