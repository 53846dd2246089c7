"""``labrig report``: the figures a paper shows, from run files, plus a one-page summary.

Files are grouped by procedure; each group becomes one multi-panel figure in which the
runs overlay on shared axes (one colour per device).  Each procedure's figure lives in
its own module, named by the procedure's entry in ``labrig.registry`` (imported only
when needed); a procedure without one — a new procedure, or a file from a later
labrig — gets the generic column plot.  Adding a procedure's figure = one module with
``figure(runs) -> Figure``, named in its registry entry.

Bad input is handled where it appears: a file that is not a labrig run raises
``NotARunFileError`` (one line, exit 2); a run still being written, aborted, failed or
cut short by a crash is drawn from what is readable and the figure title and the
summary say what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labrig.errors import UserInputError
from labrig.store import (
    DEFAULT_GROUP,
    LoadedRun,
    check_output_dir,
    load_run,
    open_run_file,
    sanitize,
)

FORMATS: tuple[str, ...] = ("png", "pdf", "svg")

#: analysis figures left out of the one-page summary and the web view's tables (they stay
#: in the file):
#: every fit parameter of every lifetime model, and their errors
SUMMARY_SKIP_PREFIXES = ("fit_",)


@dataclass
class ReportResult:
    figures: list[Path]
    summary: Path
    runs: list[LoadedRun]
    tables: list[Path] = field(default_factory=list)  # CSV tables (a batch's statistics)
    text: str = ""  # what the terminal shows besides the paths (a batch's tables)


def figure_function(procedure: str) -> Callable:
    """The figure function for ``procedure`` (the generic one when none is registered)."""
    from labrig import registry

    entry = registry.find_measurement(procedure)
    figure = entry.figure_function() if entry is not None else None
    return figure or generic_figure


def draw(procedure: str, runs: Sequence[LoadedRun]):
    """The procedure's figure; for files that lack what it needs (a damaged file missing
    columns), the generic plot of whatever is there, saying why."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        return figure_function(procedure)(runs)
    except Exception as exc:  # noqa: BLE001 - never lose the readable data to a plot bug
        if all(lr.complete for lr in runs):
            raise
        for number in set(plt.get_fignums()) - before:  # the half-drawn figure
            plt.close(number)
        note = f"{procedure} figure not possible ({type(exc).__name__}: {exc}); generic plot"
        for loaded in runs:
            loaded.problems.append(note)
        return generic_figure(runs)


def make_report(
    files: Sequence[Path | str],
    output_dir: Path | str,
    fmt: str = "png",
    *,
    dpi: float | None = None,
) -> ReportResult:
    """Render one figure per procedure among ``files`` into ``output_dir`` and write
    ``summary.txt`` there; return what was written.  ``dpi`` overrides the style's
    200 dpi for raster formats (previews, tests)."""
    if fmt not in FORMATS:
        raise UserInputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if not files:
        raise UserInputError("report: give at least one run file")
    batches = [Path(f) for f in files if is_batch_file(f)]
    if batches:
        if len(files) > 1:
            raise UserInputError(
                f"report: {batches[0]} is a batch file; report it on its own "
                "(labrig report BATCHFILE), run files in another call"
            )
        return _batch_report(batches[0], output_dir, fmt, dpi)
    runs = [load_run(f) for f in files]
    output_dir = check_output_dir(Path(output_dir))
    by_procedure: dict[str, list[LoadedRun]] = {}
    for loaded in runs:
        by_procedure.setdefault(loaded.run.procedure, []).append(loaded)

    import matplotlib.pyplot as plt

    from labrig.report.style import STYLE

    written = []
    with plt.rc_context(STYLE):
        for procedure, group in by_procedure.items():
            fig = draw(procedure, group)
            path = output_dir / f"{_figure_stem(procedure, group)}.{fmt}"
            fig.savefig(path, format=fmt, **({"dpi": dpi} if dpi else {}))
            plt.close(fig)
            written.append(path)
    summary = output_dir / "summary.txt"
    summary.write_text(summary_text(runs), encoding="utf-8")
    return ReportResult(figures=written, summary=summary, runs=runs)


def is_batch_file(path: Path | str) -> bool:
    """Whether ``path`` is a batch file (root attribute ``file_format``), the one test
    that sends ``labrig report`` to the batch report; anything else goes to ``load_run``,
    which names what is wrong with it."""
    from labrig.batch.file import BATCH_FORMAT
    from labrig.store.layout import decode

    try:
        with open_run_file(path) as opened:
            return decode(opened.file.attrs.get("file_format", b"")) == BATCH_FORMAT
    except UserInputError:
        return False


def _batch_report(path: Path, output_dir: Path | str, fmt: str, dpi: float | None) -> ReportResult:
    from labrig.batch.file import read_batch
    from labrig.report.batch import make_batch_report

    batch = read_batch(path)
    result = make_batch_report(batch, Path(output_dir), fmt, dpi=dpi)
    return ReportResult(result.figures, result.summary, result.runs, result.tables, result.text)


def render_figure(loaded: LoadedRun, path: Path, fmt: str = "png") -> Path:
    """One run's figure to ``path`` (``labrig watch --figure``)."""
    import matplotlib.pyplot as plt

    from labrig.report.style import STYLE

    with plt.rc_context(STYLE):
        fig = draw(loaded.run.procedure, [loaded])
        tmp = path.with_name(path.name + ".tmp")
        fig.savefig(tmp, format=fmt)
        plt.close(fig)
    tmp.replace(path)  # a viewer never sees a half-written image
    return path


def _figure_stem(procedure: str, runs: Sequence[LoadedRun]) -> str:
    """A file name inside ``-o`` whatever the files say: the procedure name is read from
    a file (a crafted ``../../x`` must not become a path), so it is sanitised."""
    if len(runs) == 1:
        return runs[0].path.stem
    return f"{sanitize(procedure, 'unknown')}_compare_{len(runs)}_runs"


# ------------------------------------------------------------------------------ summary
def summary_text(runs: Sequence[LoadedRun]) -> str:
    """One page: per run, what it is, whether it is complete, and its analysis figures."""
    from labrig.report.style import fmt

    lines = ["labrig report summary", "=" * 21, ""]
    for loaded in runs:
        run = loaded.run
        lines.append(f"{run.path.name}")
        lines.append(
            f"  {run.procedure} on {run.sample or '?'}; status {run.status}; "
            f"started {run.start_time or '?'}" + (f", ended {run.end_time}" if run.end_time else "")
        )
        for problem in loaded.problems:
            lines.append(f"  NOTE: {problem}")
        counts = ", ".join(
            f"{g} {loaded.rows(g)}" for g in run.columns if loaded.rows(g) or g == DEFAULT_GROUP
        )
        lines.append(f"  rows: {counts}")
        if run.spectra is not None and len(run.spectra.counts):
            lines.append(f"  spectra: {len(run.spectra.counts)}")
        if not any(run.analysis.values()):
            lines.append("  (no analysis figures in the file)")
        for group, figures in run.analysis.items():
            shown = {k: v for k, v in figures.items() if not k.startswith(SUMMARY_SKIP_PREFIXES)}
            if not shown:
                continue
            items = [
                (name, fmt(value, units))
                for name, (value, units) in shown.items()
                if not (isinstance(value, float) and math.isnan(value))
            ]
            if group is None:
                width = max(len(k) for k, _ in items) if items else 0
                lines.extend(f"    {name:<{width}}  {text}" for name, text in items)
            else:  # per-channel groups (8 lifetime channels...): compact, to stay on a page
                lines.append(f"  [{group}]")
                line = "   "
                for name, text in items:  # never split a figure from its value and units
                    piece = f" {name} {text};"
                    if len(line) + len(piece) > 100 and line.strip():
                        lines.append(line)
                        line = "   "
                    line += piece
                if line.strip():
                    lines.append(line)
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ generic
def generic_figure(runs: Sequence[LoadedRun]):
    """Every numeric column against the NXdata axis (or the row index), one panel per
    column, runs overlaid: a new procedure's data can always be looked at."""
    import numpy as np

    from labrig.report.style import (
        axis_label,
        colour,
        letter_panels,
        new_figure,
        no_data,
        numeric,
        positive,
        run_labels,
        title,
    )

    first = runs[0].run
    axis = first.axis
    groups = [g for g in first.groups if any(lr.rows(g) for lr in runs)] or [DEFAULT_GROUP]
    columns: list[tuple[str, str, str]] = []  # (group, column, units)
    for g in groups:
        for name, (data, units, _long) in first.columns.get(g, {}).items():
            if name in (axis, "timestamp") or numeric(data) is None:
                continue
            columns.append((g, name, units))
    columns = columns[:12]
    with_spectra = [lr for lr in runs if lr.run.spectra is not None and len(lr.run.spectra.counts)]
    panels = len(columns) + bool(with_spectra)
    ncols = min(3, max(1, panels))
    nrows = max(1, math.ceil(panels / ncols))
    fig, axes = new_figure(nrows, ncols)
    flat = list(axes.ravel())
    labels = run_labels(runs)
    multi_group = len(groups) > 1
    for ax, (g, name, units) in zip(flat, columns, strict=False):
        plotted = False
        for i, (loaded, label) in enumerate(zip(runs, labels, strict=True)):
            table = loaded.table(g)
            if name not in table:
                continue
            y = numeric(table[name])
            x_raw = table.get(axis)
            x = numeric(x_raw) if x_raw is not None else None
            if x is None:
                x = np.arange(len(y), dtype=float)
            if y is None or not len(y):
                continue
            ax.plot(x, y, marker="o", ms=2.5, color=colour(i), label=label)
            plotted = True
        if plotted:
            ys = np.concatenate([numeric(lr.table(g)[name]) for lr in runs if name in lr.table(g)])
            mask = positive(ys)
            if mask.all() and ys.size > 2 and ys.max() / ys.min() > 1e3:
                ax.set_yscale("log")
        else:
            no_data(ax)
        x_units = runs[0].units(axis, g) if axis else ""
        ax.set_xlabel(axis_label(axis, x_units) if axis else "row")
        ax.set_ylabel(axis_label(name, units))
        if multi_group:
            ax.set_title(g)
    if with_spectra:
        _generic_spectra(flat[len(columns)], runs)
    for ax in flat[panels:]:
        ax.set_visible(False)
    if not panels:
        flat[0].set_visible(True)
        flat[0].axis("off")
        no_data(flat[0], "no numeric data columns")
    elif len(runs) > 1:
        flat[0].legend()
    letter_panels(flat[:panels])
    title(fig, f"{first.procedure} (generic plot)", runs)
    return fig


def _generic_spectra(ax, runs: Sequence[LoadedRun]) -> None:
    """Every recorded spectrum (up to 12 per run), normalised, one colour per run."""
    import numpy as np

    from labrig.report.style import axis_label, colour, run_labels

    for i, (loaded, label) in enumerate(zip(runs, run_labels(runs), strict=True)):
        sp = loaded.run.spectra
        if sp is None or not len(sp.counts):
            continue
        picks = np.unique(np.linspace(0, len(sp.counts) - 1, min(12, len(sp.counts))).astype(int))
        for k, idx in enumerate(picks):
            counts = np.asarray(sp.counts[idx], float)
            peak = np.nanmax(counts) if np.any(np.isfinite(counts)) else 0
            if peak > 0:
                ax.plot(
                    sp.wavelength_nm, counts / peak, color=colour(i), lw=0.9, alpha=0.8,
                    label=label if k == 0 else None,
                )  # fmt: skip
    ax.set_xlabel(axis_label("wavelength", "nm"))
    ax.set_ylabel("normalised counts")
    ax.set_title("spectra")
