"""``labrig watch``: follow a run file that another process is writing.

The store writes in HDF5 SWMR mode, so the file can be reopened and read at any moment
while the run goes on (``read_run`` retries the instant when the writer briefly leaves
SWMR mode).  Every ``interval`` seconds the file is read again and a plain-text snapshot
is shown — status, rows per data group, the last row's values with units, how long ago
data last arrived, the latest log events — and, with ``figure``, the report figure is
re-rendered (atomically, so an image viewer can keep it open).  The watch ends when the
status leaves ``running``; a file whose writer died stays ``running`` forever, which is
why the age of the last data is shown.

In a terminal the screen is redrawn in place; piped (a log file, ``tee``) a snapshot is
printed only when something changed, so the output stays readable.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from labrig.errors import NotARunFileError, RunFileDamagedError
from labrig.store import LoadedRun, load_run

CLEAR = "\x1b[H\x1b[2J"
LOG_LINES = 6
MAX_COLUMNS = 7
#: how long a file may stay unreadable (being created, being restructured) before watch gives up
UNREADABLE_GRACE_S = 15.0


def _age(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _value(value, units: str) -> str:
    from labrig.report.style import fmt

    return fmt(value.item() if isinstance(value, np.generic) else value, units)


def snapshot(loaded: LoadedRun, now: float | None = None) -> str:
    """The progress of a run as a few lines of text."""
    now = time.time() if now is None else now
    run = loaded.run
    start = _parse_time(run.start_time)
    lines = [
        f"{run.path.name}",
        f"  {run.procedure} on {run.sample}: {run.status}"
        + (f" ({run.abort_reason})" if run.abort_reason else "")
        + (f"; running for {_age(now - start)}" if start and run.status == "running" else ""),
    ]
    if run.status != "running" and run.end_time:
        lines.append(f"  ended {run.end_time}")
    for problem in loaded.problems:
        if run.status == "running" and problem.startswith("run in progress"):
            continue
        lines.append(f"  note: {problem}")
    last_event = max((e.time for e in run.log), default=float("nan"))
    lines.append(f"  last log event {_age(now - last_event)} ago")
    for group in run.columns:
        rows = loaded.rows(group)
        if not rows and group != "data":
            continue
        lines.append(f"  [{group}] {rows} rows")
        if rows:
            table = loaded.table(group)
            cols = run.columns[group]
            # the NXdata axis and signal first (time and L/L0 of a lifetime channel)
            first = [n for n in (run.axis, run.signal) if n in table]
            rest = [n for n in table if n not in first and n != "timestamp"]
            shown = (first + rest)[:MAX_COLUMNS]
            parts = [f"{n} = {_value(table[n][-1], cols[n][1])}" for n in shown]
            lines.append("    last: " + ", ".join(parts))
    if run.spectra is not None and len(run.spectra.counts):
        lines.append(f"  spectra: {len(run.spectra.counts)}")
    if run.log:
        lines.append("  recent events:")
        for entry in run.log[-LOG_LINES:]:
            stamp = _dt.datetime.fromtimestamp(entry.time).strftime("%H:%M:%S")
            lines.append(f"    {stamp} {entry.kind}: {entry.message}"[:160])
    return "\n".join(lines)


def _signature(loaded: LoadedRun) -> tuple:
    run = loaded.run
    spectra = 0 if run.spectra is None else len(run.spectra.counts)
    return (run.status, tuple(loaded.rows(g) for g in run.columns), len(run.log), spectra)


def watch(
    path: Path | str,
    *,
    interval: float = 2.0,
    once: bool = False,
    figure: Path | None = None,
    out: TextIO | None = None,
    redraw: bool | None = None,
    timeout: float | None = None,
    figure_every: float = 10.0,
) -> str:
    """Follow ``path`` until its status leaves ``running`` (or once); return the status.

    ``redraw`` (default: ``out`` is a terminal) clears the screen for each snapshot;
    otherwise a snapshot is printed only when rows, events or status changed.
    ``timeout`` (seconds, for scripts and tests) gives up and returns ``"running"``.
    The figure is re-rendered at most every ``figure_every`` seconds (drawing takes a
    second or two) and once more when the run ends."""
    out = sys.stdout if out is None else out
    redraw = out.isatty() if redraw is None else redraw
    began = time.monotonic()
    previous = None
    last_render = -float("inf")
    unreadable_since: float | None = None
    while True:
        try:
            loaded = load_run(path)
            unreadable_since = None
        except (NotARunFileError, RunFileDamagedError):
            # a run file is unreadable for an instant while it is created (the layout is
            # written under an exclusive lock) and while the writer restructures it;
            # only a file that stays unreadable is an error
            now = time.monotonic()
            unreadable_since = now if unreadable_since is None else unreadable_since
            if not Path(path).exists() or now - unreadable_since > UNREADABLE_GRACE_S:
                raise
            time.sleep(min(interval, 0.2))
            continue
        signature = _signature(loaded)
        changed = signature != previous
        if changed or redraw:
            text = snapshot(loaded)
            if redraw:
                out.write(CLEAR + text + f"\n\n(refresh every {interval:g} s; Ctrl-C to stop)\n")
            else:
                out.write(text + "\n" + "-" * 40 + "\n")
            out.flush()
        status = loaded.run.status
        due = time.monotonic() - last_render >= figure_every or status != "running"
        if figure is not None and changed and due:
            from labrig.report import render_figure

            render_figure(loaded, Path(figure), Path(figure).suffix.lstrip(".") or "png")
            last_render = time.monotonic()
        previous = signature
        if once or status != "running":
            return status
        if timeout is not None and time.monotonic() - began > timeout:
            return status
        time.sleep(interval)
