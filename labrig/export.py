"""``labrig export``: a run file as CSV for spreadsheets.

One CSV per data group that has rows (``<stem>_<group>.csv``; an empty group writes
no file), headers ``name [units]`` (``name`` alone for unitless columns), values at full
precision (``repr`` of the float, so a round trip loses nothing); the spectra as a
matrix (``<stem>_spectra.csv``: first column ``wavelength_nm [nm]``, then one column per
recorded spectrum, headed by the drive of its step, ``V = 5.2 V; J = 12.31 mA/cm^2
[counts]``, so a spreadsheet shows which bias each spectrum belongs to); the analysis
figures as ``<stem>_analysis.csv`` (group, name, value, units).  A damaged or
still-running file exports what is readable, like the report.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from labrig.errors import UserInputError
from labrig.store import LoadedRun, check_output_dir, load_run, sanitize

FORMATS = ("csv",)
_HEADER = re.compile(r"^(?P<name>.*?)(?: \[(?P<units>[^\]]*)\])?$")


def header(name: str, units: str) -> str:
    return f"{name} [{units}]" if units else name


def parse_header(text: str) -> tuple[str, str]:
    """``"J [mA/cm^2]"`` -> ``("J", "mA/cm^2")``; ``"scan"`` -> ``("scan", "")``."""
    match = _HEADER.match(text)
    assert match is not None  # the pattern matches any string
    return match["name"], match["units"] or ""


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def export_csv(path: Path | str, output_dir: Path | str | None = None) -> list[Path]:
    """Write the CSV files of run ``path`` (next to it unless ``output_dir``); return them."""
    loaded = load_run(path)
    out = check_output_dir(Path(output_dir) if output_dir else loaded.path.parent)
    stem = loaded.path.stem
    written = []
    for group in loaded.run.columns:
        if loaded.rows(group) == 0:
            continue
        # group names come from the file: sanitised (and kept apart) before they name files
        target = out / f"{stem}_{sanitize(group, 'group')}.csv"
        if target in written:
            target = out / f"{stem}_{sanitize(group, 'group')}-{len(written) + 1}.csv"
        _write_group(loaded, group, target)
        written.append(target)
    sp = loaded.run.spectra
    if sp is not None and len(sp.counts):
        target = out / f"{stem}_spectra.csv"
        n = min(len(sp.counts), len(sp.step))
        with target.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(
                [header("wavelength_nm", "nm")]
                + [header(name, "counts") for name in spectrum_labels(loaded, sp.step[:n])]
            )
            for i, wl in enumerate(sp.wavelength_nm):
                w.writerow([_cell(wl)] + [_cell(v) for v in sp.counts[:n, i]])
        written.append(target)
    if any(loaded.run.analysis.values()):
        target = out / f"{stem}_analysis.csv"
        with target.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["group", "name", "value", "units"])
            for group, figures in loaded.run.analysis.items():
                for name, (value, units) in figures.items():
                    w.writerow([group or "", name, _cell(value), units])
        written.append(target)
    return written


#: the data columns that name the drive of a spectrum's step, with their short label
DRIVE_COLUMNS = (("voltage", "V"), ("current_density", "J"))


def _drive(loaded: LoadedRun, step: int) -> str:
    table = loaded.table()
    if not 0 <= step < loaded.rows():
        return f"step {step}"
    parts = [
        f"{label} = {float(table[name][step]):.4g} {loaded.units(name)}".rstrip()
        for name, label in DRIVE_COLUMNS
        if name in table
    ]
    return "; ".join(parts) or f"step {step}"


def spectrum_labels(loaded: LoadedRun, steps) -> list[str]:
    """Each spectrum's column name: the drive (V and J) of the data row it was taken at;
    repeats (several spectra at one drive) are numbered, and a step without a row (a run
    cut short) is named by its number."""
    labels = [_drive(loaded, int(step)) for step in steps]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if labels.count(label) == 1 else f"{label} (#{seen[label]})")
    return out


def _write_group(loaded: LoadedRun, group: str, target: Path) -> None:
    table = loaded.table(group)
    cols = loaded.run.columns[group]
    names = list(table)
    with target.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([header(n, cols[n][1]) for n in names])
        for i in range(loaded.rows(group)):
            w.writerow([_cell(table[n][i]) for n in names])


def export(path: Path | str, fmt: str = "csv", output_dir: Path | str | None = None) -> list[Path]:
    if fmt not in FORMATS:
        raise UserInputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return export_csv(path, output_dir)
