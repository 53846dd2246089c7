"""What the web view draws for each measurement: one function per procedure, from a run
read through the catalogue (a ``LoadedRun``) to Plotly figures.

This is the one place the web view maps data to plots.  The numbers come from what the
run recorded and from ``labrig.analysis`` (a lifetime channel's T-values while it runs,
its recorded decay fit afterwards), through the same helpers the paper figures of
``labrig.report`` use, so the browser and the report never disagree on a T50.  A
procedure without an entry here gets the generic plot of its numeric columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from labrig.report.style import (
    axis_label,
    colour,
    figure_value,
    positive,
    rec2020_primaries,
    spectral_locus_xy,
)
from labrig.store import DEFAULT_GROUP, LoadedRun

#: the most points one trace sends to the browser (a weeks-long lifetime channel is
#: thinned evenly; its first and last points are always kept)
MAX_POINTS = 2000


@dataclass(frozen=True)
class Plot:
    """One panel of a run's page: a stable id (the page updates it in place) and the
    Plotly figure."""

    id: str
    figure: go.Figure


def thin(*arrays: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, ...]:
    """Every array cut to at most ``limit`` evenly spaced rows (first and last kept)."""
    n = len(arrays[0])
    if n <= limit:
        return arrays
    index = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return tuple(np.asarray(a)[index] for a in arrays)


def _layout(fig: go.Figure, title: str, x: str, y: str, **layout: Any) -> go.Figure:
    """The look every panel shares; ``layout``: the panel's own axes, legend..."""
    fig.update_layout(
        title=title,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        height=360,
        legend={"font": {"size": 10}},
        uirevision="keep",  # a live update keeps the user's zoom
    )
    fig.update_layout(**layout)
    fig.update_layout(xaxis_title=x, yaxis_title=y)
    return fig


def _floats(table: dict[str, np.ndarray], *names: str) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(table.get(name, []), float) for name in names)


# ------------------------------------------------------------------------------ J-V-L
def jvl_plots(loaded: LoadedRun) -> list[Plot]:
    """J–V and L–V (log), EQE–J, the EL spectra and the CIE point."""
    from labrig.report.jvl import branches, light_measured

    t = loaded.table()
    v, j, lum, eqe = _floats(t, "voltage", "current_density", "luminance", "eqe")
    jvl = go.Figure()
    eqe_fig = go.Figure()
    if v.size:
        light = light_measured(loaded)
        for first, sel in branches(v):
            name = "" if first else " (return)"
            mj, ml = sel & positive(np.abs(j)), sel & positive(lum) & light
            jvl.add_scatter(x=v[mj], y=np.abs(j[mj]), name=f"|J|{name}", mode="lines+markers")
            jvl.add_scatter(
                x=v[ml], y=lum[ml], name=f"L{name}", mode="lines+markers", yaxis="y2",
                line={"dash": "dash"},
            )  # fmt: skip
            me = sel & positive(j, eqe) & light
            eqe_fig.add_scatter(x=j[me], y=eqe[me], name=f"EQE{name}", mode="lines+markers")
    _layout(
        jvl, "J–V–L", axis_label("voltage", "V"), axis_label("|J|", "mA/cm^2"),
        yaxis={"type": "log"}, legend={"x": 0.02, "y": 0.98, "bgcolor": "rgba(255,255,255,0.7)"},
        yaxis2={"type": "log", "overlaying": "y", "side": "right", "tickmode": "auto",
                "showgrid": False, "title": axis_label("luminance", "cd/m^2")},
    )  # fmt: skip
    _layout(
        eqe_fig, "EQE vs current density", axis_label("current density J", "mA/cm^2"),
        axis_label("EQE", "%"), xaxis={"type": "log"},
    )  # fmt: skip
    return [Plot("jvl", jvl), Plot("eqe", eqe_fig), spectra_plot(loaded), cie_plot(loaded)]


def spectra_plot(loaded: LoadedRun, last_only: bool = False) -> Plot:
    """The recorded EL spectra (up to 12, evenly picked), normalised to their peak."""
    fig = go.Figure()
    sp = loaded.run.spectra
    if sp is not None and len(sp.counts):
        wl = np.asarray(sp.wavelength_nm, float)
        n = len(sp.counts)
        picks = [n - 1] if last_only else np.unique(np.linspace(0, n - 1, min(12, n)).astype(int))
        (j,) = _floats(loaded.table(), "current_density")
        for k in picks:
            counts = np.asarray(sp.counts[k], float)
            peak = np.nanmax(counts) if np.any(np.isfinite(counts)) else 0.0
            row = int(sp.step[k]) if k < len(sp.step) else -1
            name = f"J = {j[row]:.3g} mA/cm²" if 0 <= row < j.size else f"spectrum {int(k)}"
            if peak > 0:
                fig.add_scatter(x=wl, y=counts / peak, name=name, mode="lines")
    _layout(fig, "EL spectra", axis_label("wavelength", "nm"), "normalised counts")
    return Plot("spectra", fig)


def cie_plot(loaded: LoadedRun) -> Plot:
    """CIE 1931 xy: the spectral locus, the Rec. 2020 gamut and the run's colour point."""
    wl, xy = spectral_locus_xy()
    fig = go.Figure()
    closed = np.vstack([xy, xy[:1]])
    fig.add_scatter(
        x=closed[:, 0], y=closed[:, 1], mode="lines", name="spectral locus",
        line={"color": "#333"}, text=[f"{w:.0f} nm" for w in [*wl, wl[0]]], hoverinfo="text",
    )  # fmt: skip
    prim = rec2020_primaries()
    tri = np.vstack([prim, prim[:1]])
    fig.add_scatter(x=tri[:, 0], y=tri[:, 1], mode="lines", name="Rec. 2020", line={"dash": "dash"})
    x, y = figure_value(loaded, "cie_x"), figure_value(loaded, "cie_y")
    if x is not None and y is not None:
        fig.add_scatter(
            x=[x], y=[y], mode="markers+text", name="device", text=[f"({x:.3f}, {y:.3f})"],
            textposition="bottom left", marker={"size": 11, "line": {"width": 1}},
        )  # fmt: skip
    _layout(
        fig, "CIE 1931", "CIE x", "CIE y", xaxis={"range": [-0.02, 0.8]},
        yaxis={"range": [-0.02, 0.9], "scaleanchor": "x"},
    )  # fmt: skip
    return Plot("cie", fig)


def spectrum_plots(loaded: LoadedRun) -> list[Plot]:
    return [spectra_plot(loaded, last_only=True), cie_plot(loaded)]


# ------------------------------------------------------------------------------ lifetime
def lifetime_plots(loaded: LoadedRun) -> list[Plot]:
    """L/L0 against time per channel, the recorded decay fit (dashed) and the T50 mark
    (filled where the data reached 50 %, open where the fit extrapolates)."""
    fig = go.Figure()
    for k, (group, curve) in enumerate(lifetime_curves(loaded).items()):
        col = colour(k)
        name = group.replace("channel_", "ch ")
        fig.add_scatter(
            x=curve.time_h, y=curve.relative, name=name, mode="lines", line={"color": col},
            meta=group,
        )  # fmt: skip
        if curve.fit_h is not None:
            fig.add_scatter(
                x=curve.fit_h[0], y=curve.fit_h[1], name=f"{name} fit", mode="lines",
                line={"color": col, "dash": "dash", "width": 1}, showlegend=False,
            )  # fmt: skip
        if curve.t50_h is not None:
            fig.add_scatter(
                x=[curve.t50_h], y=[0.5], name=f"{name} T50", mode="markers", showlegend=False,
                marker={"color": "white" if curve.t50_fit else col, "size": 10,
                        "line": {"color": col, "width": 2}},
                hovertext=f"T50 = {curve.t50_h:.4g} h" + (" (fit)" if curve.t50_fit else ""),
            )  # fmt: skip
    fig.add_hline(y=0.5, line={"dash": "dot", "color": "#555", "width": 1})
    _layout(
        fig, "luminance decay at constant current", axis_label("time", "h"), "L / L0",
        yaxis={"range": [0, 1.08]},
    )  # fmt: skip
    return [Plot("lifetime", fig)]


@dataclass(frozen=True)
class ChannelCurve:
    """One lifetime channel as drawn: thinned L/L0 against hours, its fit and T50."""

    time_h: np.ndarray
    relative: np.ndarray
    fit_h: tuple[np.ndarray, np.ndarray] | None
    t50_h: float | None
    t50_fit: bool
    l0: float | None
    live: bool


def lifetime_curves(loaded: LoadedRun) -> dict[str, ChannelCurve]:
    """Every channel with rows: the curve, the fit the run recorded and the T50 (the
    recorded one, or read off the data so far while the run goes on)."""
    from labrig.report.lifetime import channel_groups, channel_summary, recorded_fit

    curves = {}
    for group in channel_groups(loaded):
        time_s, rel = _floats(loaded.table(group), "time", "relative_luminance")
        m = np.isfinite(time_s) & np.isfinite(rel)
        time_h, rel = thin(time_s[m] / 3600.0, rel[m])
        summary = channel_summary(loaded, group)
        fit = recorded_fit(loaded, group)
        fit_h = None
        if fit is not None and time_h.size:
            x = np.linspace(0.0, max(float(time_h.max()), summary.t50_h or 0.0), 200)
            fit_h = (x, fit.evaluate(x * 3600.0))
        curves[group] = ChannelCurve(
            time_h, rel, fit_h, summary.t50_h, summary.t50_fit, summary.l0, summary.live
        )
    return curves


# ------------------------------------------------------------------------------ solar
def solar_plots(loaded: LoadedRun) -> list[Plot]:
    """J–V dark and under light, both scan directions, with Voc, Jsc and the MPP."""
    from labrig.report.solar_jv import DIRECTIONS, SCANS

    t = loaded.table()
    fig = go.Figure()
    if t:
        scan = np.asarray(t.get("scan", []), str)
        direction = np.asarray(t.get("direction", []), str)
        v, j = _floats(t, "voltage", "current_density")
        for s in SCANS:
            for d, dash in DIRECTIONS.items():
                m = (scan == s) & (direction == d) & np.isfinite(v) & np.isfinite(j)
                if m.any():
                    order = np.argsort(v[m])
                    fig.add_scatter(
                        x=v[m][order], y=j[m][order], name=f"{s} {d}", mode="lines",
                        line={"dash": "solid" if dash == "-" else "dash",
                              "color": colour(0) if s == "light" else "#777"},
                    )  # fmt: skip
    for d in DIRECTIONS:
        voc, jsc = figure_value(loaded, f"{d}_voc"), figure_value(loaded, f"{d}_jsc")
        vmp, jmp = figure_value(loaded, f"{d}_vmp"), figure_value(loaded, f"{d}_jmp")
        marks = [
            (voc, 0.0, f"Voc ({d})", "circle-open"),
            (0.0, None if jsc is None else -jsc, f"Jsc ({d})", "square-open"),
            (vmp, None if jmp is None else -jmp, f"MPP ({d})", "star"),
        ]
        for x, y, name, symbol in marks:
            if x is not None and y is not None:
                fig.add_scatter(
                    x=[x], y=[y], name=name, mode="markers",
                    marker={"symbol": symbol, "size": 10, "color": "black"},
                )  # fmt: skip
    _layout(fig, "solar J–V", axis_label("voltage", "V"), axis_label("J", "mA/cm^2"))
    return [Plot("solar", fig)]


# ------------------------------------------------------------------------------ SCLC
def sclc_plots(loaded: LoadedRun) -> list[Plot]:
    """log |J| – log V with the regions the analysis found and the local slope."""
    from labrig.report.sclc import REGIONS

    t = loaded.table()
    v, j, slope = _floats(t, "voltage", "current_density", "slope")
    j = np.abs(j)
    m = positive(v, j) if v.size else np.zeros(0, bool)
    jv, sl = go.Figure(), go.Figure()
    jv.add_scatter(x=v[m], y=j[m], name="|J|", mode="markers")
    if slope.size == v.size and v.size:
        ms = m & np.isfinite(slope)
        sl.add_scatter(x=v[ms], y=slope[ms], name="slope", mode="lines+markers")
    for name, label, col in REGIONS:
        lo, hi = figure_value(loaded, f"{name}_v_min"), figure_value(loaded, f"{name}_v_max")
        if lo is not None and hi is not None and lo > 0:
            for fig in (jv, sl):  # log axes: plotly takes the shape's x in log10
                fig.add_vrect(
                    x0=np.log10(lo), x1=np.log10(hi), fillcolor=col, opacity=0.15, line_width=0,
                    annotation_text=label, annotation_position="top left",
                )  # fmt: skip
    mu = figure_value(loaded, "mobility")
    title = "SCLC log–log J–V" + (f" (μ = {mu:.3g} cm²/(V·s))" if mu is not None else "")
    _layout(
        jv, title, axis_label("voltage", "V"), axis_label("|J|", "mA/cm^2"),
        xaxis={"type": "log"}, yaxis={"type": "log"},
    )  # fmt: skip
    _layout(
        sl, "log–log slope", axis_label("voltage", "V"), "d ln J / d ln V", xaxis={"type": "log"}
    )
    return [Plot("sclc", jv), Plot("slope", sl)]


# ------------------------------------------------------------------------------ generic
def generic_plots(loaded: LoadedRun) -> list[Plot]:
    """Every numeric column of every group with rows against the run's axis (or the row
    index): a procedure without its own entry can still be looked at."""
    from labrig.report.style import numeric

    plots = []
    axis = loaded.run.axis
    for group in [g for g in loaded.run.groups if loaded.rows(g)] or [DEFAULT_GROUP]:
        table = loaded.table(group)
        raw_x = table.get(axis) if axis else None
        x = numeric(raw_x) if raw_x is not None else None
        fig = go.Figure()
        for name, values in table.items():
            y = numeric(values)
            if name in (axis, "timestamp") or y is None or not len(y):
                continue
            xs = x if x is not None and len(x) == len(y) else np.arange(len(y), dtype=float)
            xs, y = thin(xs, y)
            fig.add_scatter(x=xs, y=y, name=name, mode="lines+markers")
        x_title = axis_label(axis, loaded.units(axis, group)) if axis else "row"
        _layout(fig, group, x_title, "value")
        plots.append(Plot(f"generic-{group}", fig))
    return plots


@dataclass(frozen=True)
class Drawing:
    """A measurement's panels and what they read: the columns (None: every one) and
    whether the spectra; the view fetches no more than that from the catalogue."""

    draw: Callable[[LoadedRun], list[Plot]]
    columns: frozenset[str] | None
    spectra: bool = False


#: J-V-L's columns: the curves, and the photodiode current its light threshold applies to
_JVL = frozenset({"voltage", "current_density", "luminance", "eqe", "photodiode_current"})
#: the web view's figure per measurement (registry command-line names)
DRAWINGS: dict[str, Drawing] = {
    "jvl": Drawing(jvl_plots, _JVL, spectra=True),
    "spectrum": Drawing(spectrum_plots, frozenset({"current_density"}), spectra=True),
    "lifetime": Drawing(
        lifetime_plots,
        frozenset({"time", "relative_luminance", "luminance", "current_density"}),
    ),
    "solar-jv": Drawing(
        solar_plots, frozenset({"scan", "direction", "voltage", "current_density"})
    ),
    "sclc": Drawing(sclc_plots, frozenset({"voltage", "current_density", "slope"})),
}
GENERIC = Drawing(generic_plots, None, spectra=False)


def drawing(procedure: str) -> Drawing:
    """The drawing of ``procedure`` (a registry name or a procedure's class name)."""
    from labrig import registry

    entry = registry.find_measurement(procedure)
    return DRAWINGS.get(entry.name if entry is not None else "", GENERIC)


def wants(procedure: str) -> tuple[frozenset[str] | None, bool]:
    """What ``procedure``'s drawing reads: (its columns, None for all; the spectra?)."""
    chosen = drawing(procedure)
    return chosen.columns, chosen.spectra


def plots(loaded: LoadedRun) -> list[Plot]:
    """The run's panels: its measurement's, or the generic ones when it has none or its
    data lack what they need (a damaged file: draw what is there, never fail)."""
    function = drawing(loaded.run.procedure).draw
    try:
        return function(loaded)
    except (KeyError, ValueError, IndexError, TypeError):
        if function is generic_plots:
            raise
        return generic_plots(loaded)
