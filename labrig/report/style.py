"""What every report figure shares: the look (fonts, colour-blind-safe palette), axis
labels with units, device labels, log-scale masking, the CIE 1931 diagram and a table
of figures drawn inside an axes.

matplotlib is used with the Agg backend only (set before pyplot is imported): reports
are rendered on lab PCs over ssh and in CI, where an interactive backend would fail or
block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from labrig.store import LoadedRun  # noqa: E402

#: Okabe & Ito (2008) colour-blind-safe palette (black first, then the eight hues
#: minus yellow, which is unreadable on white as a thin line)
PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)

STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # TrueType in PDFs, editable in Illustrator/Inkscape
    "svg.fonttype": "none",
}

_UNIT_TEXT = {
    "^-3": "⁻³",
    "^-2": "⁻²",
    "^-1": "⁻¹",
    "^2": "²",
    "^3": "³",
    "*": "·",
    "ohm": "Ω",
}


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def pretty_units(units: str) -> str:
    """``mA/cm^2`` -> ``mA/cm²``, ``cm^2/(V*s)`` -> ``cm²/(V·s)``."""
    for raw, nice in _UNIT_TEXT.items():
        units = units.replace(raw, nice)
    return units


def axis_label(quantity: str, units: str) -> str:
    units = pretty_units(units)
    return f"{quantity} ({units})" if units and units != "1" else quantity


def run_labels(runs: Sequence[LoadedRun]) -> list[str]:
    """One short legend label per run: the sample, numbered ``#k`` when samples repeat
    (``label_key`` maps the numbers to files)."""
    samples = [r.run.sample or r.path.stem for r in runs]
    seen: dict[str, int] = {}
    labels = []
    for sample in samples:
        if samples.count(sample) > 1:
            seen[sample] = seen.get(sample, 0) + 1
            labels.append(f"{sample} #{seen[sample]}")
        else:
            labels.append(sample)
    return labels


def label_key(runs: Sequence[LoadedRun]) -> str:
    """``"#1: file.h5, #2: other.h5"`` for the numbered labels of ``run_labels``."""
    labels = run_labels(runs)
    return ", ".join(
        f"{label.rsplit(' ', 1)[-1]}: {lr.path.name}"
        for lr, label in zip(runs, labels, strict=True)
        if label != (lr.run.sample or lr.path.stem)
    )


def positive(*arrays: np.ndarray) -> np.ndarray:
    """Mask of points where every array is finite and > 0 (what a log axis can show)."""
    mask = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        a = np.asarray(a, dtype=float)
        mask &= np.isfinite(a) & (a > 0)
    return mask


def finite(*arrays: np.ndarray) -> np.ndarray:
    mask = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        mask &= np.isfinite(np.asarray(a, dtype=float))
    return mask


def numeric(values: Any) -> np.ndarray | None:
    """``values`` as a float array, or None for text columns."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(float)
    return None


def fmt(value: Any, units: str = "") -> str:
    """A figure as text: 4 significant digits, units made readable."""
    if isinstance(value, (bool, np.bool_)):
        text = "yes" if value else "no"
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            text = "—" if math.isnan(value) else str(value)
        else:
            text = f"{value:.4g}"
    elif value is None:
        text = "—"
    else:
        text = str(value)
    units = pretty_units(units)
    return f"{text} {units}" if units and units != "1" and text != "—" else text


def fmt_figure(value: Any, units: str = "") -> str:
    """``fmt`` for text drawn in a figure: very large or small numbers in scientific
    notation with a superscript exponent (9.997×10¹⁴, not 9.997e+14), rendered by
    matplotlib's mathtext from its own ScalarFormatter."""
    if (
        isinstance(value, (float, np.floating))
        and math.isfinite(value)
        and value != 0
        and not 1e-3 <= abs(value) < 1e4
    ):
        from matplotlib.ticker import ScalarFormatter

        text = ScalarFormatter(useMathText=True).format_data(float(f"{value:.4g}"))
        units = pretty_units(units)
        return f"${text}$" + (f" {units}" if units and units != "1" else "")
    return fmt(value, units)


def figure_value(loaded: LoadedRun, name: str, group: str | None = None) -> float | None:
    """A numeric analysis figure, or None when absent or not a finite number."""
    item = loaded.figures(group).get(name)
    if item is None:
        return None
    try:
        value = float(item[0])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def new_figure(rows: int, cols: int, *, width: float = 4.2, height: float = 3.4):
    """A figure of ``rows`` x ``cols`` panels sized for reading on a page."""
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained"
    )
    return fig, axes


def page_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches (constrained layout) for panels
    laid out with ``subplot_mosaic``, e.g. a table spanning the page under two plots."""
    return plt.figure(figsize=(width, height), layout="constrained")


def title(fig: Figure, procedure: str, runs: Sequence[LoadedRun]) -> None:
    """Procedure and samples on the first line; what is wrong with the files (a run in
    progress, a crash, an abort) on the lines below, in red, so nobody mistakes a
    partial curve for a finished one."""
    labels = ", ".join(dict.fromkeys(lr.run.sample or lr.path.stem for lr in runs))
    key = label_key(runs)
    fig.suptitle(
        f"{procedure}: {labels}" + (f"\n{key}" if key else ""), fontsize=12, fontweight="bold"
    )
    notes = []
    multi = len(runs) > 1
    for loaded, label in zip(runs, run_labels(runs), strict=True):
        for problem in loaded.problems:
            notes.append(f"{label}: {problem}" if multi else problem)
    if notes:
        text = "\n".join(_wrap(n, 130) for n in notes[:4])
        fig.text(0.5, -0.01, text, ha="center", va="top", color="#B00000", fontsize=9)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def panel_letter(ax: Axes, letter: str) -> None:
    ax.text(
        -0.02, 1.02, f"({letter})", transform=ax.transAxes, ha="right", va="bottom",
        fontweight="bold",
    )  # fmt: skip


def letter_panels(axes: Sequence[Axes]) -> None:
    for i, ax in enumerate(a for a in axes if a.get_visible() and a.axison):
        panel_letter(ax, "abcdefghijklmnop"[i])


def no_data(ax: Axes, message: str = "no data") -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="0.4")


# ----------------------------------------------------------------------- figure tables
def figures_table(
    ax: Axes, header: Sequence[str], rows: Sequence[Sequence[str]], title: str = ""
) -> None:
    """A table of figures filling ``ax`` (the axes frame is hidden)."""
    ax.axis("off")
    if not rows:
        no_data(ax, "no analysis figures in the file")
        return
    # column widths from the longest text in each column, fitted into the axes; the
    # font shrinks for wide tables rather than the table spilling over other panels
    longest = [
        max([1.15 * len(str(header[c]))] + [len(str(r[c])) for r in rows]) + 3
        for c in range(len(header))
    ]  # the header row is bold: wider per character
    widths = [n / sum(longest) for n in longest]
    inches = ax.get_position().width * ax.figure.get_figwidth()
    size = float(np.clip(8.5 * (17.0 * inches) / sum(longest), 5.5, 8.5))
    table = ax.table(
        cellText=[list(r) for r in rows],
        colLabels=list(header),
        colWidths=widths,
        loc="upper center",
        cellLoc="center",
        colLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(size)
    table.scale(1.0, 1.25)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        if row == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("0.93")
        if col == 0:
            cell.set_text_props(ha="left")
            cell._loc = "left"  # noqa: SLF001 - matplotlib has no public per-cell alignment
    if title:
        ax.set_title(title)


def figures_rows(
    runs: Sequence[LoadedRun],
    names: Sequence[tuple[str, str]],
    group: str | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a figures table: one row per ``(figure name, label)`` present in
    any run, one column per run."""
    header = ["figure", *run_labels(runs)]
    rows = []
    for name, label in names:
        values = [loaded.figures(group).get(name) for loaded in runs]
        if all(v is None for v in values):
            continue
        rows.append([label, *("—" if v is None else fmt_figure(v[0], v[1]) for v in values)])
    return header, rows


# ------------------------------------------------------------------------------- CIE 1931
def spectral_locus_xy() -> tuple[np.ndarray, np.ndarray]:
    """Wavelengths (nm) and xy of the CIE 1931 2° spectral locus, from colour-science's
    colour-matching functions (not hand-typed)."""
    import colour

    from labrig.analysis.spectral import CIE_1931_2DEG

    cmfs = colour.MSDS_CMFS[CIE_1931_2DEG]
    wl = np.asarray(cmfs.wavelengths)
    keep = (wl >= 380) & (wl <= 700)
    xy = np.asarray(colour.XYZ_to_xy(np.asarray(cmfs.values)[keep]))
    return wl[keep], xy


def rec2020_primaries() -> np.ndarray:
    """The ITU-R BT.2020 (Rec. 2020) red, green, blue primaries' xy, from colour-science."""
    import colour

    return np.asarray(colour.RGB_COLOURSPACES["ITU-R BT.2020"].primaries)


def cie_diagram(ax: Axes, points: Sequence[tuple[float, float, str, str]]) -> None:
    """CIE 1931 xy chromaticity diagram: the spectral locus (tinted inside), wavelength
    ticks, the Rec. 2020 gamut and the given ``(x, y, label, colour)`` points."""
    wl, xy = spectral_locus_xy()
    _tint(ax, xy)
    closed = np.vstack([xy, xy[:1]])
    ax.plot(closed[:, 0], closed[:, 1], color="0.2", lw=1.0, zorder=3)
    for mark in (460, 480, 490, 500, 520, 540, 560, 580, 600, 620, 700):
        i = int(np.argmin(abs(wl - mark)))
        x, y = xy[i]
        # label outwards from the white point
        dx, dy = x - 0.33, y - 0.33
        norm = math.hypot(dx, dy) or 1.0
        ax.plot([x], [y], marker="o", ms=2, color="0.2", zorder=3)
        ax.annotate(
            f"{mark}",
            (x, y),
            xytext=(x + 0.06 * dx / norm, y + 0.06 * dy / norm),  # clear of a point on the locus
            fontsize=7,
            color="0.25",
            ha="center",
            va="center",
        )
    prim = rec2020_primaries()
    tri = np.vstack([prim, prim[:1]])
    ax.plot(tri[:, 0], tri[:, 1], ls="--", color="0.15", lw=1.0, label="Rec. 2020", zorder=4)
    for x, y, label, col in points:
        ax.plot(
            [x], [y], marker="o", ms=7, mfc=col, mec="black", mew=1.0, ls="none",
            label=label, zorder=5,
        )  # fmt: skip
        # its coordinates, inwards (towards the white point): the wavelength labels are
        # outside the locus
        dx, dy = 0.33 - x, 0.33 - y
        norm = math.hypot(dx, dy) or 1.0
        ax.annotate(
            f"({x:.3f}, {y:.3f})", (x, y), xytext=(10 * dx / norm, 10 * dy / norm),
            textcoords="offset points", fontsize=7.5, ha="left" if dx > 0 else "right",
            va="bottom" if dy > 0 else "top", zorder=6,
            bbox={"facecolor": "white", "edgecolor": col, "alpha": 0.85, "pad": 1.5},
        )  # fmt: skip
    ax.set_xlim(-0.02, 0.8)
    ax.set_ylim(-0.02, 0.9)
    ax.set_aspect("equal")
    ax.set_xlabel("CIE x")
    ax.set_ylabel("CIE y")
    ax.set_title("CIE 1931 chromaticity")
    ax.legend(loc="upper right", fontsize=7.5)


def _tint(ax: Axes, locus_xy: np.ndarray) -> None:
    """A pale sRGB rendering of the chromaticities inside the locus (orientation only)."""
    import colour
    from matplotlib.path import Path as MplPath

    n = 200
    xs, ys = np.meshgrid(np.linspace(0, 0.8, n), np.linspace(0, 0.9, n))
    xy = np.stack([xs, ys], -1)
    inside = MplPath(locus_xy).contains_points(xy.reshape(-1, 2)).reshape(n, n)
    xyz = colour.xy_to_XYZ(xy)
    rgb = colour.XYZ_to_sRGB(xyz / np.max(xyz, axis=-1, keepdims=True))
    rgb = np.clip(rgb, 0, None)
    rgb = rgb / np.maximum(np.max(rgb, axis=-1, keepdims=True), 1e-9)
    rgba = np.concatenate([0.55 + 0.45 * rgb, inside[..., None].astype(float)], -1)
    ax.imshow(
        np.clip(rgba, 0, 1), extent=(0, 0.8, 0, 0.9), origin="lower", interpolation="bilinear",
        zorder=1,
    )  # fmt: skip
