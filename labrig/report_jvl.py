"""Report figures of LED runs: the J–V–L sweep (``jvl``) and the single EL spectrum
(``spectrum``).

jvl, six panels: (a) J–V and L–V on log axes, (b) EQE–J, (c) current efficiency–J,
(d) normalised EL spectra with peak and FWHM marked, (e) CIE 1931 diagram with the
devices' colour points and the Rec. 2020 gamut, (f) the headline figures.
spectrum: (a) the spectrum with peak and FWHM, (b) CIE 1931, (c) its figures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labrig.report_common import (
    axis_label,
    cie_diagram,
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
from labrig.report_data import LoadedRun

JVL_TABLE = (
    ("turn_on_voltage", "turn-on voltage (1 cd/m²)"),
    ("max_luminance", "max. luminance"),
    ("peak_eqe", "peak EQE"),
    ("current_density_at_peak_eqe", "J at peak EQE"),
    ("current_density_at_half_peak_eqe", "J at EQE/2 (roll-off)"),
    ("eqe_at_100_cd_m2", "EQE at 100 cd/m²"),
    ("eqe_at_1000_cd_m2", "EQE at 1000 cd/m²"),
    ("peak_current_efficiency", "peak current eff."),
    ("peak_power_efficiency", "peak power eff."),
    ("el_peak_wavelength", "EL peak"),
    ("el_fwhm", "EL FWHM"),
    ("cie_x", "CIE x"),
    ("cie_y", "CIE y"),
)

SPECTRUM_TABLE = (
    ("peak_wavelength", "peak wavelength"),
    ("fwhm", "FWHM"),
    ("centroid_wavelength", "centroid"),
    ("dominant_wavelength", "dominant wavelength"),
    ("color_purity", "colour purity"),
    ("cie_x", "CIE x"),
    ("cie_y", "CIE y"),
    ("integration_time", "integration time"),
    ("scans_averaged", "scans averaged"),
    ("saturated", "saturated"),
)


# ------------------------------------------------------------------------------ jvl
def jvl_figure(runs: Sequence[LoadedRun]) -> Figure:
    fig, axes = new_figure(2, 3)
    (ax_jvl, ax_eqe, ax_ce), (ax_el, ax_cie, ax_tab) = axes
    labels = run_labels(runs)
    _jvl_panel(ax_jvl, runs, labels)
    _efficiency_panel(ax_eqe, runs, labels, "eqe", "EQE", "EQE vs current density")
    _efficiency_panel(
        ax_ce, runs, labels, "current_efficiency", "current efficiency", "current efficiency"
    )
    spectra = [_spectrum_near_peak(lr) for lr in runs]
    _spectra_panel(ax_el, runs, labels, spectra, ("el_peak_wavelength", "el_fwhm"))
    cie_diagram(ax_cie, _cie_points(runs, labels))
    header, rows = figures_rows(runs, JVL_TABLE)
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_jvl, ax_eqe, ax_ce, ax_el, ax_cie])
    title(fig, "J–V–L", runs)
    return fig


def _jvl_panel(ax: Axes, runs: Sequence[LoadedRun], labels: Sequence[str]) -> None:
    """log J (solid, left axis) and log L (dashed, right axis) against V."""
    ax_l = ax.twinx()
    ax_l.grid(False)
    ax_l.spines["right"].set_visible(True)
    any_j = any_l = False
    returns = False
    for i, loaded in enumerate(runs):
        t = loaded.table()
        if not t:
            continue
        v, j, lum = t["voltage"], t["current_density"], t["luminance"]
        for first, sel in branches(v):
            returns |= not first
            alpha = 1.0 if first else RETURN_ALPHA
            m = sel & positive(j) & np.isfinite(v)
            if m.any():
                ax.plot(v[m], j[m], "-", color=colour(i), alpha=alpha)
                any_j = True
            m = sel & positive(lum) & np.isfinite(v) & light_measured(loaded)
            if m.any():
                ax_l.plot(v[m], lum[m], "--", color=colour(i), alpha=alpha)
                any_l = True
    if not any_j:
        no_data(ax)
    ax.set_yscale("log")
    ax.set_xlabel(axis_label("voltage", "V"))
    ax.set_ylabel(axis_label("current density J", "mA/cm^2"))
    if any_l:
        ax_l.set_yscale("log")
    ax_l.set_ylabel(axis_label("luminance L", "cd/m^2"))
    ax.set_title("J–V–L")
    handles = [
        Line2D([], [], color="0.2", ls="-", label="J"),
        Line2D([], [], color="0.2", ls="--", label="L"),
    ]
    if returns:
        handles.append(Line2D([], [], color="0.2", alpha=RETURN_ALPHA, label="return sweep"))
    if len(runs) > 1:
        handles += [Line2D([], [], color=colour(i), label=label) for i, label in enumerate(labels)]
    ax.legend(handles=handles, loc="upper left")


def _efficiency_panel(
    ax: Axes,
    runs: Sequence[LoadedRun],
    labels: Sequence[str],
    column: str,
    quantity: str,
    panel_title: str,
) -> None:
    """An efficiency against log J, where the photodiode saw light (finite, > 0)."""
    units = ""
    plotted = False
    for i, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
        t = loaded.table()
        if column not in t:
            continue
        units = units or loaded.units(column)
        j, y = t["current_density"], t[column]
        for first, sel in branches(t["voltage"]):
            m = sel & positive(j, y) & light_measured(loaded)
            if m.any():
                ax.plot(
                    j[m], y[m], "o-", ms=3, color=colour(i), alpha=1.0 if first else RETURN_ALPHA,
                    label=label if first else None,
                )  # fmt: skip
                plotted = True
    if not plotted:
        no_data(ax, "no step with measurable light")
    ax.set_xscale("log")
    ax.set_xlabel(axis_label("current density J", "mA/cm^2"))
    ax.set_ylabel(axis_label(quantity, units))
    ax.set_ylim(bottom=0)
    ax.set_title(panel_title)
    if plotted and len(runs) > 1:
        ax.legend()


def _cie_points(
    runs: Sequence[LoadedRun], labels: Sequence[str]
) -> list[tuple[float, float, str, str]]:
    points = []
    for i, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
        x, y = figure_value(loaded, "cie_x"), figure_value(loaded, "cie_y")
        if x is not None and y is not None:
            points.append((x, y, label, colour(i)))
    return points


#: the return branch of a forward-and-back sweep is drawn fainter than the first
RETURN_ALPHA = 0.45


def branches(voltage: np.ndarray) -> list[tuple[bool, np.ndarray]]:
    """(is the first branch, row mask) for the sweep's first monotonic run and the rest
    (the return of ``direction=both``), so a hysteresis loop is not drawn as one line."""
    from labrig.analysis.jvl import first_branch

    v = np.asarray(voltage, float)
    first = np.zeros(v.size, bool)
    first[first_branch(v)] = True
    out = [(True, first)]
    if (~first).any():
        out.append((False, ~first))
    return out


def light_measured(loaded: LoadedRun) -> np.ndarray:
    """Steps whose photodiode current is above the dark noise the run measured (the
    jvl procedure's own criterion, so the curves show what its figures used): below it
    an "efficiency" is noise over a leakage current (tens of % at 0 V)."""
    from labrig.procedures.jvl import LIGHT_SNR

    t = loaded.table()
    pd = t.get("photodiode_current")
    if pd is None:
        return np.ones(loaded.rows(), bool)
    noise = None
    for entry in loaded.run.log:
        found = _NOISE.search(entry.message) if entry.kind == "dark" else None
        if found:
            noise = float(found.group(1))
    if noise is None:  # no dark record: the light must at least be positive
        return np.asarray(pd, float) > 0
    return np.asarray(pd, float) > LIGHT_SNR * noise


_NOISE = re.compile(r"noise ([-+0-9.eE]+) A")


# ------------------------------------------------------------------------------ spectra
def _spectrum_near_peak(loaded: LoadedRun) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The recorded spectrum whose step is nearest the peak-EQE step (the one the EL
    figures describe), else the last one; with a note of its current density."""
    sp = loaded.run.spectra
    if sp is None or not len(sp.counts):
        return None
    n = min(len(sp.counts), len(sp.step))
    if n == 0:
        return None
    t = loaded.table()
    target = None
    if "eqe" in t and len(t["eqe"]):
        good = positive(t["current_density"], t["eqe"]) & light_measured(loaded)
        eqe = np.where(good, t["eqe"], np.nan)
        if np.any(np.isfinite(eqe)):
            target = int(np.nanargmax(eqe))
    k = n - 1 if target is None else int(np.argmin(abs(sp.step[:n] - target)))
    note = ""
    step = int(sp.step[k])
    if "current_density" in t and 0 <= step < len(t["current_density"]):
        note = f"J = {t['current_density'][step]:.3g} mA/cm²"
    return np.asarray(sp.wavelength_nm, float), np.asarray(sp.counts[k], float), note


def _half_max_span(wl: np.ndarray, s: np.ndarray) -> tuple[float, float] | None:
    """Wavelengths either side of the main peak where ``s`` (normalised) crosses 0.5."""
    i = int(np.argmax(s))
    lo = i
    while lo > 0 and s[lo - 1] >= 0.5:
        lo -= 1
    hi = i
    while hi < len(s) - 1 and s[hi + 1] >= 0.5:
        hi += 1
    if lo == 0 or hi == len(s) - 1:
        return None
    left = float(np.interp(0.5, [s[lo - 1], s[lo]], [wl[lo - 1], wl[lo]]))
    right = float(np.interp(0.5, [s[hi + 1], s[hi]], [wl[hi + 1], wl[hi]]))
    return left, right


def _spectra_panel(
    ax: Axes,
    runs: Sequence[LoadedRun],
    labels: Sequence[str],
    spectra: Sequence[tuple[np.ndarray, np.ndarray, str] | None],
    figure_names: tuple[str, str],
) -> None:
    """Normalised spectra, each with its peak (vertical line) and FWHM (bar at half
    maximum); the numbers are the file's analysis figures where present."""
    from labrig.analysis import spectral

    peak_name, fwhm_name = figure_names
    ranges = []
    legend_lines = 0
    for i, (loaded, label, item) in enumerate(zip(runs, labels, spectra, strict=True)):
        if item is None:
            continue
        wl, counts, note = item
        order = np.argsort(wl)
        wl, counts = wl[order], counts[order]
        good = np.isfinite(wl) & np.isfinite(counts)
        wl, counts = wl[good], counts[good]
        if len(wl) < 3 or not np.nanmax(counts) > 0:
            continue
        s = counts / np.nanmax(counts)
        peak = figure_value(loaded, peak_name)
        width = figure_value(loaded, fwhm_name)
        try:
            peak = peak if peak is not None else spectral.peak_wavelength(wl, s)
            width = width if width is not None else spectral.fwhm(wl, s)
        except ValueError:
            pass
        text = label
        if peak is not None and width is not None:
            text += f"\npeak {peak:.1f} nm, FWHM {width:.1f} nm"
        if note and len(runs) == 1:
            text += f"\nat {note}"
        ax.plot(wl, s, color=colour(i), label=text)
        legend_lines += text.count("\n") + 1
        if peak is not None:
            ax.axvline(peak, color=colour(i), lw=0.8, ls=":")
        span = _half_max_span(wl, s)
        if span is not None:
            ax.annotate(
                "", xy=(span[0], 0.5), xytext=(span[1], 0.5),
                arrowprops={"arrowstyle": "<->", "color": colour(i), "lw": 1.0},
            )  # fmt: skip
        sig = wl[s > 0.1]
        if sig.size:
            ranges.append((sig.min(), sig.max()))
    if not ranges:
        no_data(ax, "no spectrum recorded")
    else:
        lo = min(r[0] for r in ranges)
        hi = max(r[1] for r in ranges)
        pad = max(40.0, 0.3 * (hi - lo))
        ax.set_xlim(lo - pad, hi + pad)
        ax.legend(loc="upper right", fontsize=7.5)
    ax.set_ylim(-0.02, 1.1 + 0.085 * legend_lines)  # room above the peaks for the legend
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.set_xlabel(axis_label("wavelength", "nm"))
    ax.set_ylabel("normalised EL intensity")
    ax.set_title("EL spectra")


# ------------------------------------------------------------------------- spectrum
def spectrum_figure(runs: Sequence[LoadedRun]) -> Figure:
    fig, axes = new_figure(1, 3)
    ax_sp, ax_cie, ax_tab = axes[0]
    labels = run_labels(runs)
    spectra = []
    for loaded in runs:
        sp = loaded.run.spectra
        if sp is None or not len(sp.counts):
            spectra.append(None)
            continue
        t = loaded.table()
        note = ""
        if "current_density" in t and len(t["current_density"]):
            note = f"J = {t['current_density'][-1]:.3g} mA/cm²"
        spectra.append((np.asarray(sp.wavelength_nm, float), np.asarray(sp.counts[-1]), note))
    _spectra_panel(ax_sp, runs, labels, spectra, ("peak_wavelength", "fwhm"))
    cie_diagram(ax_cie, _cie_points(runs, labels))
    header, rows = figures_rows(runs, SPECTRUM_TABLE)
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_sp, ax_cie])
    title(fig, "EL spectrum", runs)
    return fig
