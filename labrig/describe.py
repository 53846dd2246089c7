"""``labrig inspect``: a run file as text a person reads in a terminal.

Opened like every reader opens a run file (``load_run``): bounded in time, and a
damaged or truncated file shows what is intact with a note naming what is not."""

from __future__ import annotations

from pathlib import Path

from labrig.store import RunData, load_run


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _status_line(run: RunData) -> str:
    if run.status == "running":
        return "running (still being written, or the writer was killed before it could close)"
    reason = f" — {run.abort_reason}" if run.abort_reason else ""
    return f"{run.status}{reason}"


def describe_run(path: Path | str) -> str:
    """Procedure, status, parameters, columns with units and lengths, analysis figures."""
    loaded = load_run(path)
    run = loaded.run
    lines = [
        f"file:       {run.path}",
        f"procedure:  {run.procedure}",
        f"status:     {_status_line(run)}",
        f"sample:     {run.sample}" + (f"   operator: {run.operator}" if run.operator else ""),
        f"started:    {run.start_time}" + (f"   ended: {run.end_time}" if run.end_time else ""),
        f"bench:      {'simulated' if run.simulated else 'real'}; labrig {run.labrig_version}",
    ]
    if run.instruments:
        lines.append("instruments:")
        for role, inst in run.instruments.items():
            lines.append(
                f"  {role:12s} {inst.manufacturer} {inst.model} s/n {inst.serial_number} "
                f"[{inst.driver} @ {inst.resource}]"
            )
    lines.append("parameters:")
    for name, (value, units) in run.parameters.items():
        lines.append(f"  {name:28s} {_fmt(value)} {units}".rstrip())
    for group, columns in run.columns.items():
        lengths = {len(data) for data, _, _ in columns.values()}
        rows = max(lengths) if lengths else 0
        lines.append(f"columns ({group}, {rows} rows):")
        for name, (_data, units, long_name) in columns.items():
            lines.append(f"  {name:28s} [{units}] {long_name}".rstrip())
    if run.spectra is not None and len(run.spectra.counts):
        counts = run.spectra.counts
        lines.append(
            f"spectra: {counts.shape[0]} x {counts.shape[1]} pixels, "
            f"{run.spectra.wavelength_nm[0]:.1f}–{run.spectra.wavelength_nm[-1]:.1f} nm"
        )
    for group, figures in run.analysis.items():
        if not figures:
            continue
        lines.append("analysis" + (f" ({group})" if group else "") + ":")
        for name, (value, units) in figures.items():
            lines.append(f"  {name:36s} {_fmt(value)} {units}".rstrip())
    notes = [p for p in loaded.problems if not p.startswith(("run in progress", "run "))]
    lines.extend(f"note:       {problem}" for problem in notes)
    warnings = [e for e in run.log if e.level >= 30]
    if warnings:
        lines.append(f"log: {len(run.log)} events, {len(warnings)} warnings; last ones:")
        for entry in warnings[-5:]:
            lines.append(f"  {entry.iso_time} {entry.kind}: {entry.message}")
    return "\n".join(lines)
