"""``labrig report BATCHFILE``: the device statistics papers show, from a batch file.

Per measurement in the batch (J–V–L, solar J–V, ...):

* ``<batch>_<measurement>_distributions``: a histogram per headline figure (peak EQE,
  max. luminance, turn-on voltage; PCE, Voc, FF, Jsc), stacked by condition, with the
  mean ± s.d. (line and band) and the champion (star) marked;
* ``<batch>_<measurement>_conditions``: box plot and every device (strip) per condition;
* ``<batch>_<measurement>_curves``: every device's curves (J–V, L–V, EQE–J; or J–V and
  P–V of a solar cell) read from its own run file, the champion drawn over them in black.

Per batch: ``<batch>_yield`` (pixels measured / planned per substrate, skipped by
reason), ``<batch>_summary.csv`` (n, mean, s.d., median, s.e., champion per condition,
full precision), ``<batch>_yield.csv`` and ``summary.txt`` (the same tables as text,
printed by the CLI).  The numbers are ``labrig.analysis.statistics``'; the figures draw
those very numbers, so figure and table cannot disagree.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labrig.analysis.statistics import (
    ALL_CONDITIONS,
    SubstrateYield,
    Summary,
    device_label,
    substrate_yield,
    summarize,
)
from labrig.report.style import (
    axis_label,
    colour,
    fmt,
    letter_panels,
    new_figure,
    no_data,
    positive,
    pretty_units,
)
from labrig.store import LoadedRun, check_output_dir, load_run, sanitize

if TYPE_CHECKING:
    from labrig.batch.file import Batch, DeviceResult

#: per measurement, the figures whose distributions are drawn (name, label) and the one
#: that picks the champion whose curves are highlighted
DISTRIBUTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "jvl": (
        ("peak_eqe", "peak EQE"),
        ("max_luminance", "max. luminance"),
        ("turn_on_voltage", "turn-on voltage"),
    ),
    "solar-jv": (
        ("reverse_pce", "PCE"),
        ("reverse_voc", "Voc"),
        ("reverse_ff", "FF"),
        ("reverse_jsc", "Jsc"),
    ),
}

#: colour of the champion's curves and marks (the conditions take the palette)
CHAMPION_COLOUR = "black"


@dataclass
class BatchReport:
    """What the batch report drew and wrote."""

    figures: list[Path]
    tables: list[Path]
    summary: Path
    text: str
    statistics: dict[str, list[Summary]] = field(default_factory=dict)
    yields: list[SubstrateYield] = field(default_factory=list)
    runs: list[LoadedRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def distribution_figures(measurement: str) -> tuple[tuple[str, str], ...]:
    """(figure, label) pairs drawn for ``measurement``: the table above, else the
    registry's headline figures (those that are names, not patterns)."""
    if measurement in DISTRIBUTIONS:
        return DISTRIBUTIONS[measurement]
    from labrig import registry

    entry = registry.find_measurement(measurement)
    names = entry.headline if entry is not None else ()
    return tuple((n, n.replace("_", " ")) for n in names if not any(c in n for c in "*?["))


def measurements(batch: Batch) -> list[str]:
    """The batch's measurements in plan order."""
    return list(dict.fromkeys(d.measurement for d in batch.devices))


def batch_statistics(batch: Batch) -> dict[str, list[Summary]]:
    """Per measurement, the statistics of the figures it draws that any of its devices
    has (a figure no device has is left out; one all devices have as NaN is not)."""
    out = {}
    for m in measurements(batch):
        present = {name for d in batch.devices if d.measurement == m for name in d.figures}
        names = [name for name, _ in distribution_figures(m) if name in present]
        out[m] = summarize(batch, m, names)
    return out


def make_batch_report(
    batch: Batch, output_dir: Path, fmt: str = "png", *, dpi: float | None = None
) -> BatchReport:
    """Draw and write every figure and table of ``batch`` into ``output_dir``."""
    import matplotlib.pyplot as plt

    from labrig.report.style import STYLE

    output_dir = check_output_dir(Path(output_dir))
    stem = sanitize(Path(batch.path).stem, "batch")
    stats = batch_statistics(batch)
    yields = substrate_yield(batch)
    report = BatchReport([], [], output_dir / "summary.txt", "", stats, yields)

    def save(fig: Figure, name: str) -> None:
        path = output_dir / f"{stem}_{name}.{fmt}"
        fig.savefig(path, format=fmt, **({"dpi": dpi} if dpi else {}))
        plt.close(fig)
        report.figures.append(path)

    with plt.rc_context(STYLE):
        for m, rows in stats.items():
            tag = sanitize(m, "measurement")
            labels = dict(distribution_figures(m))
            if rows:
                save(distributions_figure(batch.name, m, rows, labels), f"{tag}_distributions")
                save(conditions_figure(batch.name, m, rows, labels), f"{tag}_conditions")
            curves = curves_figure(batch, m, rows, report)
            if curves is not None:
                save(curves, f"{tag}_curves")
        save(yield_figure(batch.name, yields), "yield")
    report.tables.append(write_statistics_csv(output_dir / f"{stem}_summary.csv", stats))
    report.tables.append(write_yield_csv(output_dir / f"{stem}_yield.csv", yields))
    report.text = summary_text(batch, stats, yields, report.problems)
    report.summary.write_text(report.text + "\n", encoding="utf-8")
    return report


# ------------------------------------------------------------------------------ figures
def _figure_title(fig: Figure, batch_name: str, what: str) -> None:
    fig.suptitle(f"{batch_name}: {what}", fontsize=12, fontweight="bold")


def _by_condition(rows: Sequence[Summary], figure: str) -> tuple[Summary | None, list[Summary]]:
    """(the row over every device, the per-condition rows) of ``figure``; with a single
    condition that one row is both."""
    mine = [r for r in rows if r.figure == figure]
    per = [r for r in mine if r.condition != ALL_CONDITIONS]
    whole = next((r for r in mine if r.condition == ALL_CONDITIONS), per[0] if per else None)
    return whole, per


def _condition_name(condition: str) -> str:
    return condition or "(no condition)"


def _panel_per_figure(
    batch_name: str,
    what: str,
    rows: Sequence[Summary],
    labels: dict[str, str],
    panel: Callable[[Axes, Summary, Sequence[Summary], str], None],
) -> Figure:
    """One panel per figure among ``rows``, side by side, drawn by ``panel(ax, row over
    every device, rows per condition, label)``."""
    figures = list(dict.fromkeys(r.figure for r in rows))
    fig, axes = new_figure(1, len(figures))
    for ax, name in zip(axes[0], figures, strict=True):
        whole, per = _by_condition(rows, name)
        panel(ax, whole, per, labels.get(name, name))
    letter_panels(list(axes[0]))
    _figure_title(fig, batch_name, what)
    return fig


def distributions_figure(
    batch_name: str, measurement: str, rows: Sequence[Summary], labels: dict[str, str]
) -> Figure:
    """One histogram per figure over every device, stacked by condition."""
    return _panel_per_figure(
        batch_name, f"{measurement} distributions", rows, labels, histogram_panel
    )


def histogram_panel(ax: Axes, whole: Summary, per: Sequence[Summary], label: str) -> None:
    """Histogram of ``whole``'s values (stacked by ``per`` condition), the mean as a line,
    ± one sample s.d. as a band, the champion as a star above its bar."""
    ax.set_xlabel(axis_label(label, whole.units))
    ax.set_ylabel("devices")
    if whole.n == 0:
        no_data(ax, f"no device with a {label}")
        return
    edges = np.histogram_bin_edges(whole.values, bins="auto")
    stacks = [np.asarray(r.values) for r in per if r.n]
    names = [_condition_name(r.condition) for r in per if r.n]
    cols = [colour(i) for i, r in enumerate(per) if r.n]
    counts, _, _ = ax.hist(
        stacks, bins=edges, stacked=True, color=cols, label=names, edgecolor="white", lw=0.6
    )
    top = float(np.max(counts)) if np.size(counts) else 1.0
    ax.axvline(whole.mean, color="0.15", lw=1.2, ls="--", label="mean")
    if math.isfinite(whole.sd):
        ax.axvspan(whole.mean - whole.sd, whole.mean + whole.sd, color="0.5", alpha=0.15, lw=0)
    ax.plot(
        [whole.champion_value], [top * 1.08], marker="*", ms=13, ls="none",
        color=CHAMPION_COLOUR, label=f"champion {whole.champion}",
    )  # fmt: skip
    ax.set_ylim(0, top * 1.35)
    ax.set_title(f"{label}: {mean_sd_text(whole.mean, whole.sd, whole.units)} (n = {whole.n})")
    ax.legend(loc="best", fontsize=7.5)


def mean_sd_text(mean: float, sd: float, units: str = "") -> str:
    """``18.0 ± 3.5 %``: the s.d. to two significant digits and the mean to the same
    decimal place, as papers write them; ``15 %`` (s.d. undefined) for one device."""
    unit = f" {_units(units)}" if _units(units) else ""
    if not (math.isfinite(sd) and sd > 0):
        return f"{fmt(mean)}{unit}" + (" ± 0" if sd == 0 else "")
    decimals = max(0, 1 - math.floor(math.log10(sd)))
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}{unit}"


def _units(units: str) -> str:
    return pretty_units(units) if units and units != "1" else ""


def strip_offsets(n: int, width: float = 0.3) -> np.ndarray:
    """Horizontal offsets of ``n`` strip points: evenly spread over ``width`` (the same
    picture every time, unlike random jitter)."""
    return np.linspace(-width / 2, width / 2, n) if n > 1 else np.zeros(n)


def conditions_figure(
    batch_name: str, measurement: str, rows: Sequence[Summary], labels: dict[str, str]
) -> Figure:
    """Per figure: a box plot per condition with every device drawn over it."""
    return _panel_per_figure(
        batch_name, f"{measurement} by condition", rows, labels, box_strip_panel
    )


def box_strip_panel(ax: Axes, whole: Summary, per: Sequence[Summary], label: str) -> None:
    """Box (median, quartiles, whiskers at 1.5 IQR) per condition and its devices as
    points; the champion over all conditions as a black star."""
    positions = np.arange(1, len(per) + 1)
    filled = [(p, r) for p, r in zip(positions, per, strict=True) if r.n]
    if filled:
        ax.boxplot(
            [np.asarray(r.values) for _, r in filled], positions=[p for p, _ in filled],
            widths=0.5, showfliers=False, medianprops={"color": "0.1"},
        )  # fmt: skip
    for i, (p, r) in enumerate(zip(positions, per, strict=True)):
        if r.n:
            ax.plot(
                p + strip_offsets(r.n), r.values, "o", ms=4.5, ls="none", color=colour(i),
                alpha=0.8, mec="white", mew=0.5,
            )  # fmt: skip
    if whole is not None and whole.champion is not None:
        p = next(p for p, r in zip(positions, per, strict=True) if whole.champion in r.devices)
        ax.plot(
            [p], [whole.champion_value], marker="*", ms=13, ls="none", color=CHAMPION_COLOUR,
            label=f"champion {whole.champion}", zorder=5,
        )  # fmt: skip
        ax.legend(loc="best", fontsize=7.5)
    else:
        no_data(ax, f"no device with a {label}")
    ax.set_xticks(positions, [f"{_condition_name(r.condition)}\nn = {r.n}" for r in per])
    ax.set_xlim(0.4, len(per) + 0.6)
    ax.set_ylabel(axis_label(label, whole.units if whole else ""))
    ax.set_title(label)


def _champion_device(
    batch: Batch, measurement: str, rows: Sequence[Summary]
) -> DeviceResult | None:
    """The device with the best value of the measurement's first distribution figure."""
    names = [n for n, _ in distribution_figures(measurement)]
    whole = _by_condition(rows, names[0])[0] if names and rows else None
    if whole is None or whole.champion is None:
        return None
    return next(
        d
        for d in batch.devices
        if d.measurement == measurement and device_label(d) == whole.champion
    )


def load_device_runs(
    batch: Batch, measurement: str, problems: list[str]
) -> list[tuple[DeviceResult, LoadedRun]]:
    """Each finished device's run file, read with the store's one reader; a file that is
    gone or unreadable is named in ``problems`` and left out."""
    out = []
    for d in batch.devices:
        if d.measurement != measurement or d.status != "finished":
            continue
        if d.run_file is None:
            problems.append(f"{device_label(d)} {measurement}: no run file recorded")
            continue
        try:
            out.append((d, load_run(d.run_file)))
        except Exception as exc:  # noqa: BLE001 - one unreadable device never loses the rest
            problems.append(f"{device_label(d)} {measurement}: {exc}")
    return out


#: the panels of a measurement's curves: (x column, y column, x label, y label, log x,
#: log y, only where the photodiode saw light)
CURVES = {
    "jvl": (
        ("voltage", "current_density", "voltage", "current density J", False, True, False),
        ("voltage", "luminance", "voltage", "luminance L", False, True, True),
        ("current_density", "eqe", "current density J", "EQE", True, False, True),
    ),
    "solar-jv": (
        ("voltage", "current_density", "voltage", "current density J", False, False, False),
        ("voltage", "power_density", "voltage", "power density P", False, False, False),
    ),
}


def curve_points(loaded: LoadedRun, x: str, y: str, log_x: bool, log_y: bool, lit: bool):
    """(x, y) of one device's curve as the report draws it, or None: a sweep's first
    branch (not the return of ``direction=both``), a solar cell's reverse scan under
    light (by voltage), where the axes can show it."""
    from labrig.report.jvl import branches, light_measured

    t = loaded.table()
    if x not in t or y not in t or not len(t[x]):
        return None
    xs, ys = np.asarray(t[x], float), np.asarray(t[y], float)
    solar = "scan" in t and "direction" in t
    if solar:
        keep = (np.asarray(t["scan"]).astype(str) == "light") & (
            np.asarray(t["direction"]).astype(str) == "reverse"
        )
    else:
        keep = branches(t["voltage"])[0][1]
    keep &= np.isfinite(xs) & np.isfinite(ys)
    if log_x:
        keep &= positive(xs)
    if log_y:
        keep &= positive(ys)
    if lit:
        keep &= light_measured(loaded)
    if not keep.any():
        return None
    xs, ys = xs[keep], ys[keep]
    if solar:
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    return xs, ys


def curves_figure(
    batch: Batch, measurement: str, rows: Sequence[Summary], report: BatchReport
) -> Figure | None:
    """Every finished device's curves (thin, coloured by condition), the champion's over
    them (black, thick); None for a measurement without curve panels."""
    panels = CURVES.get(measurement)
    if panels is None:
        return None
    runs = load_device_runs(batch, measurement, report.problems)
    report.runs.extend(lr for _, lr in runs)
    champion = _champion_device(batch, measurement, rows)
    conditions = list(dict.fromkeys(d.condition for d in batch.devices))
    fig, axes = new_figure(1, len(panels))
    for ax, (x, y, x_label, y_label, log_x, log_y, lit) in zip(axes[0], panels, strict=True):
        drawn = False
        units = ("", "")
        for d, loaded in runs:
            points = curve_points(loaded, x, y, log_x, log_y, lit)
            if points is None:
                continue
            units = (loaded.units(x), loaded.units(y))
            best = champion is not None and d == champion
            ax.plot(
                *points, color=CHAMPION_COLOUR if best else colour(conditions.index(d.condition)),
                lw=2.2 if best else 0.9, alpha=1.0 if best else 0.55, zorder=4 if best else 2,
                gid=device_label(d),
            )  # fmt: skip
            drawn = True
        if not drawn:
            no_data(ax)
        if log_x:
            ax.set_xscale("log")
        if log_y and drawn:
            ax.set_yscale("log")
        ax.set_xlabel(axis_label(x_label, units[0]))
        ax.set_ylabel(axis_label(y_label, units[1]))
    handles = [
        Line2D([], [], color=colour(i), lw=0.9, label=_condition_name(c))
        for i, c in enumerate(conditions)
    ]
    if champion is not None:
        handles.append(
            Line2D(
                [], [], color=CHAMPION_COLOUR, lw=2.2, label=f"champion {device_label(champion)}"
            )
        )
    axes[0][0].legend(handles=handles, loc="best", fontsize=7.5)
    letter_panels(list(axes[0]))
    _figure_title(fig, batch.name, f"{measurement}, {len(runs)} devices")
    return fig


def yield_figure(batch_name: str, yields: Sequence[SubstrateYield]) -> Figure:
    """Stacked bars per substrate: pixels measured, skipped (per reason kind), and not
    measured for another reason (failed, aborted, pending); measured/planned on top."""
    fig, axes = new_figure(1, 1, width=max(4.2, 1.1 * len(yields) + 2))
    ax = axes[0][0]
    x = np.arange(len(yields))
    names = [y.substrate for y in yields]
    bottom = np.zeros(len(yields))
    stacks = [("measured", [y.measured for y in yields])]
    for kind in dict.fromkeys(k for y in yields for k in y.skipped):
        stacks.append((f"skipped: {kind}", [y.skipped.get(kind, 0) for y in yields]))
    for status in dict.fromkeys(k for y in yields for k in y.other):
        stacks.append((status, [y.other.get(status, 0) for y in yields]))
    for i, (label, heights) in enumerate(stacks):
        h = np.asarray(heights, float)
        ax.bar(x, h, bottom=bottom, color=colour(i + 2), label=label, width=0.6)
        bottom += h
    for xi, y in zip(x, yields, strict=True):
        ax.annotate(
            f"{y.measured}/{y.planned} ({100 * y.fraction:.0f} %)", (xi, y.planned),
            xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8,
        )  # fmt: skip
    ax.set_xticks(x, names)
    ax.set_ylim(0, max([y.planned for y in yields] + [1]) * 1.2)
    ax.set_ylabel("pixels")
    ax.set_xlabel("substrate")
    ax.legend(loc="lower right", fontsize=7.5)
    total = sum(y.measured for y in yields), sum(y.planned for y in yields)
    _figure_title(fig, batch_name, f"yield {total[0]}/{total[1]} pixels")
    return fig


# ------------------------------------------------------------------------------- tables
STATISTICS_HEADER = (
    "measurement", "figure", "units", "condition", "n", "missing", "mean",
    "sd_sample", "median", "sem", "champion", "champion_value",
)  # fmt: skip


def write_statistics_csv(path: Path, stats: dict[str, list[Summary]]) -> Path:
    """One row per (measurement, figure, condition), full precision; empty cells for
    what does not exist (the s.d. of one device)."""

    def cell(value: float) -> str:
        return repr(value) if math.isfinite(value) else ""

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(STATISTICS_HEADER)
        for m, rows in stats.items():
            for r in rows:
                w.writerow(
                    [m, r.figure, r.units, r.condition, r.n, r.missing, cell(r.mean), cell(r.sd),
                     cell(r.median), cell(r.sem), r.champion or "", cell(r.champion_value)]
                )  # fmt: skip
    return path


def write_yield_csv(path: Path, yields: Sequence[SubstrateYield]) -> Path:
    """One row per substrate: planned, measured, yield and one column per reason kind."""
    kinds = list(dict.fromkeys(k for y in yields for k in y.skipped))
    others = list(dict.fromkeys(k for y in yields for k in y.other))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["substrate", "planned", "measured", "yield"] + [f"skipped_{k}" for k in kinds] + others
        )
        for y in yields:
            w.writerow(
                [y.substrate, y.planned, y.measured, repr(y.fraction)]
                + [y.skipped.get(k, 0) for k in kinds]
                + [y.other.get(k, 0) for k in others]
            )
    return path


def summary_text(
    batch: Batch,
    stats: dict[str, list[Summary]],
    yields: Sequence[SubstrateYield],
    problems: Sequence[str] = (),
) -> str:
    """The statistics and yield tables as text (s.d. is the sample s.d., ddof = 1)."""
    lines = [f"batch {batch.name} ({batch.status}): {Path(batch.path).name}", ""]
    header = ("figure", "condition", "n", "mean", "s.d.", "median", "s.e.", "champion")
    for m, rows in stats.items():
        lines.append(f"{m}  (s.d.: sample standard deviation, ddof = 1; s.e. = s.d./√n)")
        table = [header]
        for r in rows:
            champion = f"{r.champion} {fmt(r.champion_value, r.units)}" if r.champion else "—"
            n = f"{r.n}" + (f" (+{r.missing} without)" if r.missing else "")
            table.append(
                (f"{r.figure} [{_units(r.units)}]" if _units(r.units) else r.figure,
                 _condition_name(r.condition), n, fmt(r.mean), fmt(r.sd), fmt(r.median),
                 fmt(r.sem), champion)
            )  # fmt: skip
        lines.extend(_columns(table))
        lines.append("")
    if not stats:
        lines += ["(no measurements in the batch)", ""]
    lines.append("yield per substrate")
    table = [("substrate", "measured/planned", "yield", "not measured")]
    for y in yields:
        why = [f"{k} {v}" for k, v in {**y.skipped, **y.other}.items()]
        table.append(
            (y.substrate, f"{y.measured}/{y.planned}", f"{100 * y.fraction:.0f} %",
             ", ".join(why) or "—")
        )  # fmt: skip
    lines.extend(_columns(table))
    for problem in problems:
        lines.append(f"NOTE: {problem}")
    return "\n".join(lines)


def _columns(table: Sequence[Sequence[str]]) -> list[str]:
    """Rows of text cells, left-aligned in columns two spaces apart."""
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table]  # fmt: skip
