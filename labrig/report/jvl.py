"""Report figure of a J–V–L sweep (``jvl``).

jvl, six panels: (a) J–V and L–V on log axes, (b) EQE–J, (c) current efficiency–J,
(d) normalised EL spectra with peak and FWHM marked, (e) CIE 1931 diagram with the
devices' colour points and the Rec. 2020 gamut, (f) the headline figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labrig.report.style import (
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
from labrig.store import LoadedRun

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


# ------------------------------------------------------------------------------ jvl
def jvl_figure(runs: Sequence[LoadedRun]) -> Figure:
    fig, axes = new_figure(2, 3)
    (ax_jvl, ax_eqe, ax_ce), (ax_el, ax_cie, ax_tab) = axes
    labels = run_labels(runs)
    cols = device_colours(runs)
    _jvl_panel(ax_jvl, runs, labels, cols)
    _efficiency_panel(ax_eqe, runs, labels, cols, "eqe", "EQE")
    ax_eqe.set_title("EQE vs current density")
    _efficiency_panel(ax_ce, runs, labels, cols, "current_efficiency", "current efficiency")
    ax_pe = ax_ce.twinx()
    ax_pe.grid(False)
    ax_pe.spines["right"].set_visible(True)
    _efficiency_panel(ax_pe, runs, labels, cols, "power_efficiency", "power efficiency", "--")
    ax_ce.set_title("current and power efficiency")
    handles = [
        Line2D([], [], color="0.2", ls="-", label="current eff. (left)"),
        Line2D([], [], color="0.2", ls="--", label="power eff. (right)"),
    ]
    if len(runs) > 1:
        handles += [
            Line2D([], [], color=c, label=label) for c, label in zip(cols, labels, strict=True)
        ]
    ax_ce.legend(handles=handles, loc="upper left", fontsize=7.5)
    if len(runs) == 1:
        _bias_spectra_panel(ax_el, runs[0], cols[0])
    else:
        spectra = [_spectrum_near_peak(lr) for lr in runs]
        _spectra_panel(ax_el, runs, labels, spectra, ("el_peak_wavelength", "el_fwhm"), cols)
    cie_diagram(ax_cie, _cie_points(runs, labels, cols))
    header, rows = figures_rows(runs, JVL_TABLE)
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_jvl, ax_eqe, ax_ce, ax_el, ax_cie])
    title(fig, "J–V–L", runs)
    return fig


def device_colours(runs: Sequence[LoadedRun]) -> list[str]:
    """Each device drawn in its own emission colour (from its CIE x, y) when every run
    has one and they differ visibly; else the colour-blind-safe palette. A palette
    colour is never a lie about the emission (a green device drawn blue)."""
    xy = [(figure_value(lr, "cie_x"), figure_value(lr, "cie_y")) for lr in runs]
    if any(x is None or y is None for x, y in xy) or any(
        np.hypot(a[0] - b[0], a[1] - b[1]) < 0.08 for i, a in enumerate(xy) for b in xy[:i]
    ):
        return [colour(i) for i in range(len(runs))]
    return [emission_colour(x, y) for x, y in xy]


def emission_colour(x: float, y: float) -> str:
    """The sRGB hue of chromaticity (x, y), darkened until it reads as a line on white."""
    import colour as colour_science
    from matplotlib.colors import to_hex

    rgb = np.clip(colour_science.XYZ_to_sRGB(colour_science.xy_to_XYZ([x, y])), 0, None)
    rgb = rgb / max(float(rgb.max()), 1e-9)
    lum = float(np.dot([0.2126, 0.7152, 0.0722], rgb))
    return to_hex(rgb * min(1.0, 0.4 / max(lum, 1e-9)) ** 0.5 * 0.85)


def _jvl_panel(
    ax: Axes, runs: Sequence[LoadedRun], labels: Sequence[str], cols: Sequence[str]
) -> None:
    """log J (solid, left axis) and log L (dashed, right axis) against V."""
    ax_l = ax.twinx()
    ax_l.grid(False)
    ax_l.spines["right"].set_visible(True)
    any_j = any_l = turn_on = False
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
                ax.plot(v[m], j[m], "-", color=cols[i], alpha=alpha)
                any_j = True
            m = sel & positive(lum) & np.isfinite(v) & light_measured(loaded)
            if m.any():
                ax_l.plot(v[m], lum[m], "--", color=cols[i], alpha=alpha)
                any_l = True
        v_on = figure_value(loaded, "turn_on_voltage")
        if v_on is not None:  # where L crosses 1 cd/m² (the file's figure)
            ax_l.plot([v_on], [1.0], "^", ms=7, mfc="white", mec=cols[i], mew=1.5, zorder=5)
            ax_l.annotate(
                f"{v_on:.2f} V", (v_on, 1.0), xytext=(6, -12 - 11 * i), textcoords="offset points",
                fontsize=7.5, color=cols[i],
            )  # fmt: skip
            turn_on = True
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
    if turn_on:
        handles.append(
            Line2D([], [], ls="none", marker="^", mfc="white", mec="0.2", label="turn-on (1 cd/m²)")
        )
    if returns:
        handles.append(Line2D([], [], color="0.2", alpha=RETURN_ALPHA, label="return sweep"))
    if len(runs) > 1:
        handles += [Line2D([], [], color=cols[i], label=label) for i, label in enumerate(labels)]
    ax.legend(handles=handles, loc="upper left")


def _efficiency_panel(
    ax: Axes,
    runs: Sequence[LoadedRun],
    labels: Sequence[str],
    cols: Sequence[str],
    column: str,
    quantity: str,
    ls: str = "-",
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
                    j[m], y[m], "o" + ls, ms=3, color=cols[i], alpha=1.0 if first else RETURN_ALPHA,
                    label=label if first else None,
                )  # fmt: skip
                plotted = True
    if not plotted:
        no_data(ax, "no step with measurable light")
    ax.set_xscale("log")
    ax.set_xlabel(axis_label("current density J", "mA/cm^2"))
    ax.set_ylabel(axis_label(quantity, units))
    ax.set_ylim(bottom=0)
    if plotted and len(runs) > 1 and column == "eqe":
        ax.legend()


def _cie_points(
    runs: Sequence[LoadedRun], labels: Sequence[str], cols: Sequence[str]
) -> list[tuple[float, float, str, str]]:
    points = []
    for i, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
        x, y = figure_value(loaded, "cie_x"), figure_value(loaded, "cie_y")
        if x is not None and y is not None:
            points.append((x, y, label, cols[i]))
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
    """Steps whose photodiode current is above the light threshold the run stored (the
    jvl procedure's own criterion, so the curves show what its figures used): below it
    an "efficiency" is noise over a leakage current (tens of % at 0 V)."""
    t = loaded.table()
    pd = t.get("photodiode_current")
    if pd is None:
        return np.ones(loaded.rows(), bool)
    # no threshold stored (no dark readings, or a run killed before): light must be > 0
    threshold = loaded.figures().get("light_threshold", (0.0, "A"))[0]
    return np.asarray(pd, float) > float(threshold)


# ------------------------------------------------------------------------------ spectra
def _spectrum_near_peak_index(loaded: LoadedRun) -> int | None:
    """Index of the recorded spectrum whose step is nearest the peak-EQE step (the one
    the EL figures describe), else the last one; None without spectra."""
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
    return n - 1 if target is None else int(np.argmin(abs(sp.step[:n] - target)))


def _spectrum_near_peak(loaded: LoadedRun) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The spectrum of ``_spectrum_near_peak_index`` with a note of its current density."""
    k = _spectrum_near_peak_index(loaded)
    if k is None:
        return None
    sp = loaded.run.spectra
    t = loaded.table()
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
    cols: Sequence[str],
) -> None:
    """Normalised spectra, each with its peak (vertical line) and FWHM (bar at half
    maximum); the numbers are the file's analysis figures where present."""
    from labrig.analysis import spectral

    peak_name, fwhm_name = figure_names
    ranges = []
    peaks: list[float] = []
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
        ax.plot(wl, s, color=cols[i], label=text)
        legend_lines += text.count("\n") + 1
        if peak is not None:  # up to the peak only: the legend sits above
            ax.plot([peak, peak], [0, 1], color=cols[i], lw=0.8, ls=":")
            peaks.append(peak)
        span = _half_max_span(wl, s)
        if span is not None:
            ax.annotate(
                "", xy=(span[0], 0.5), xytext=(span[1], 0.5),
                arrowprops={"arrowstyle": "<->", "color": cols[i], "lw": 1.0},
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
        ax.legend(loc=legend_corner(ax, peaks), fontsize=7.5)
    ax.set_ylim(-0.02, 1.2 + 0.09 * legend_lines)  # room above the peaks for the legend
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.set_xlabel(axis_label("wavelength", "nm"))
    ax.set_ylabel("normalised EL intensity")
    ax.set_title("EL spectra")


def legend_corner(ax: Axes, peaks: Sequence[float]) -> str:
    """The upper corner farther from the spectra's peaks, so the legend never sits on a
    peak marker."""
    lo, hi = ax.get_xlim()
    mid = np.mean(peaks) if len(peaks) else hi
    return "upper left" if mid > (lo + hi) / 2 else "upper right"


#: how many EL spectra a single-device J–V–L figure overlays (spread over the biases)
BIAS_SPECTRA = 4


def chosen_spectra(loaded: LoadedRun, n: int = BIAS_SPECTRA) -> list[int]:
    """Indices of up to ``n`` recorded spectra at biases spread evenly in log J over the
    steps with measurable light, always including the one nearest the peak-EQE step."""
    sp = loaded.run.spectra
    if sp is None:
        return []
    count = min(len(sp.counts), len(sp.step))
    t = loaded.table()
    steps = np.asarray(sp.step[:count], int)
    j = np.asarray(t.get("current_density", []), float)
    lit = light_measured(loaded)
    ok = [k for k in range(count) if 0 <= steps[k] < len(j) and lit[steps[k]] and j[steps[k]] > 0]
    if len(ok) <= n:
        return ok
    log_j = np.log10(j[steps[ok]])
    targets = np.linspace(log_j.min(), log_j.max(), n)
    chosen = {ok[int(np.argmin(abs(log_j - target)))] for target in targets}
    peak = _spectrum_near_peak_index(loaded)
    if peak is not None and peak not in chosen:
        chosen.discard(min(chosen, key=lambda k: abs(k - peak)))
        chosen.add(peak)
    return sorted(chosen)


def _bias_spectra_panel(ax: Axes, loaded: LoadedRun, col: str) -> None:
    """One device's EL spectra at several biases, each normalised to its own maximum
    (the spectrometer's integration time changes with brightness, so raw counts do not
    compare) to show how the line shape moves with bias; lighter to darker and dotted
    to solid with bias; the peak-EQE one carries the peak and FWHM marks."""
    from matplotlib.colors import to_rgb

    chosen = chosen_spectra(loaded)
    sp = loaded.run.spectra
    ax.set_title("EL spectra")
    if not chosen:
        no_data(ax, "no spectrum recorded")
        return
    wl = np.asarray(sp.wavelength_nm, float)
    order = np.argsort(wl)
    wl = wl[order]
    t = loaded.table()
    peak_k = _spectrum_near_peak_index(loaded)
    base = np.array(to_rgb(col))
    styles = (":", "-.", "--", "-")
    peaks = []
    for n, k in enumerate(chosen):
        c = np.asarray(sp.counts[k], float)[order]
        s = c / np.nanmax(c)
        step = int(sp.step[k])
        shade = 0.55 * (1 - (n + 1) / len(chosen))  # mixed with white: faint at low bias
        label = f"{t['voltage'][step]:.2f} V, {t['current_density'][step]:.3g} mA/cm²"
        if k == peak_k:
            label += " (peak EQE)"
        ls = styles[max(0, len(styles) - len(chosen) + n)]
        ax.plot(wl, s, color=base * (1 - shade) + shade, ls=ls, label=label, lw=1.5)
        if k == peak_k:
            peak = figure_value(loaded, "el_peak_wavelength") or float(wl[int(np.nanargmax(s))])
            ax.plot([peak, peak], [0, 1], color=col, lw=0.8, ls=":")
            peaks.append(peak)
            span = _half_max_span(wl, s)
            if span is not None:
                ax.annotate(
                    "", xy=(span[0], 0.5), xytext=(span[1], 0.5),
                    arrowprops={"arrowstyle": "<->", "color": col, "lw": 1.0},
                )  # fmt: skip
            sig = wl[s > 0.1]
            if sig.size:
                pad = max(40.0, 0.3 * (sig.max() - sig.min()))
                ax.set_xlim(sig.min() - pad, sig.max() + pad)
    peak_fig, fwhm_fig = figure_value(loaded, "el_peak_wavelength"), figure_value(loaded, "el_fwhm")
    head = None
    if peak_fig is not None and fwhm_fig is not None:
        head = f"peak {peak_fig:.1f} nm, FWHM {fwhm_fig:.1f} nm (at peak EQE)"
    ax.legend(loc=legend_corner(ax, peaks), fontsize=7, title=head, title_fontsize=7.5)
    ax.set_ylim(-0.02, 1.2 + 0.09 * (len(chosen) + 1))
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.set_xlabel(axis_label("wavelength", "nm"))
    ax.set_ylabel("normalised EL intensity")
