"""The batch file: one small HDF5 file that links a batch's run files and tables their
headline figures.

Layout (``file_format = "labrig-batch/1"``)::

    /                      NXroot: file_format, labrig_version, default=batch
    /batch                 NXentry: name, status, reason, updated; devices_* counts
    /batch/plan            the plan's YAML text as given
    /batch/devices         NXcollection: one row per (device, measurement), plan order:
                           substrate, pixel, condition, measurement, status, reason,
                           run_file (relative to this file's folder; "" when none)
    /batch/figures/<measurement>/<name>
                           the headline figures of that measurement's rows (float64, one
                           value per device row, NaN on other rows), attr units
    /batch/runs/<NNNN_substrate_pixel_measurement>
                           HDF5 external link to the run file's /entry
    /batch/superseded      row and run_file of runs an interrupted batch left unfinished
                           (kept; the device was measured again into a new file)

Crash safety: the whole file is written to a temporary file next to it, flushed to disk
and ``os.replace``d over the old one after every change, so a reader (or a crash) only
ever sees a whole file: the previous state or the new one.  The file is small (a row per
device), so a rewrite costs milliseconds (``benchmarks/batch_file.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from labrig import __version__ as LABRIG_VERSION
from labrig.errors import UserInputError
from labrig.store import now_iso, sanitize
from labrig.store.layout import WRITE_LIBVER

BATCH_FORMAT = "labrig-batch/1"
DEVICE_STATUSES = ("finished", "skipped", "failed", "aborted", "pending")
BATCH_STATUSES = ("running", "finished", "aborted", "failed")
#: the text columns of /batch/devices, in order
TEXT_COLUMNS = ("substrate", "pixel", "condition", "measurement", "status", "reason", "run_file")
_STR = h5py.string_dtype()


class NotABatchFileError(UserInputError):
    """A file given as a batch file is missing, not HDF5, or not a labrig batch file."""


@dataclass(frozen=True)
class DeviceResult:
    """One measurement of one device (pixel) of a batch, as the batch file tables it."""

    substrate: str
    pixel: str
    condition: str
    measurement: str
    status: str
    reason: str
    run_file: Path | None
    figures: Mapping[str, tuple[float, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """A batch file as read back: its plan's name, how it stands, its rows in plan order."""

    path: Path
    name: str
    status: str
    devices: tuple[DeviceResult, ...]


# --------------------------------------------------------------------------- writing
def _link_name(index: int, device: DeviceResult) -> str:
    return f"{index:04d}_{sanitize(device.substrate)}_{sanitize(device.pixel)}_{device.measurement}"


def _relative(run_file: Path | None, folder: Path) -> str:
    """The run file as stored: relative to the batch file's folder where it lies inside
    it (the folder can then move as a whole), else absolute."""
    if run_file is None:
        return ""
    run_file = Path(run_file).absolute()
    try:
        return run_file.relative_to(folder.absolute()).as_posix()
    except ValueError:
        return str(run_file)


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _write(
    f: h5py.File,
    path: Path,
    name: str,
    status: str,
    devices: Sequence[DeviceResult],
    plan_text: str,
    reason: str,
    superseded: Sequence[tuple[int, Path]],
) -> None:
    f.attrs.update(
        NX_class="NXroot",
        default="batch",
        file_format=BATCH_FORMAT,
        labrig_version=LABRIG_VERSION,
        creator="labrig",
        file_name=path.name,
    )
    entry = f.create_group("batch")
    pixels = {(d.substrate, d.pixel): d.status for d in devices}
    entry.attrs.update(
        NX_class="NXentry",
        name=name,
        status=status,
        reason=reason,
        updated=now_iso(),
        devices_planned=len(pixels),
        devices_skipped=sum(s == "skipped" for s in pixels.values()),
    )
    entry.create_dataset("plan", data=plan_text, dtype=_STR)
    table = entry.create_group("devices")
    table.attrs["NX_class"] = "NXcollection"
    folder = path.parent
    columns = {c: [] for c in TEXT_COLUMNS}
    for d in devices:
        for c in TEXT_COLUMNS[:-1]:
            columns[c].append(str(getattr(d, c)))
        columns["run_file"].append(_relative(d.run_file, folder))
    for c, values in columns.items():
        table.create_dataset(c, data=np.array(values, dtype=object), dtype=_STR)
    figures = entry.create_group("figures")
    figures.attrs["NX_class"] = "NXcollection"
    for measurement in dict.fromkeys(d.measurement for d in devices):
        group = figures.create_group(measurement)
        names: dict[str, str] = {}
        for d in devices:
            if d.measurement == measurement:
                for fname, (value, units) in d.figures.items():
                    if _numeric(value):
                        names.setdefault(fname, units)
        for fname, units in names.items():
            values = np.full(len(devices), np.nan)
            for i, d in enumerate(devices):
                figure = d.figures.get(fname) if d.measurement == measurement else None
                if figure is not None and _numeric(figure[0]):
                    values[i] = float(figure[0])
            ds = group.create_dataset(fname, data=values)
            ds.attrs["units"] = units
    runs = entry.create_group("runs")
    for i, d in enumerate(devices):
        if d.run_file is not None:
            runs[_link_name(i, d)] = h5py.ExternalLink(_relative(d.run_file, folder), "/entry")
    old = entry.create_group("superseded")
    old.create_dataset("row", data=np.array([i for i, _ in superseded], dtype="i8"))
    old.create_dataset(
        "run_file",
        data=np.array([_relative(p, folder) for _, p in superseded], dtype=object),
        dtype=_STR,
    )


def write_batch(
    path: Path,
    name: str,
    status: str,
    devices: Sequence[DeviceResult],
    *,
    plan_text: str = "",
    reason: str = "",
    superseded: Sequence[tuple[int, Path]] = (),
) -> None:
    """Write the whole batch file at ``path``: to a temporary file beside it, synced to
    disk, then renamed over ``path`` (atomic), so ``path`` is always a whole file."""
    if status not in BATCH_STATUSES:
        raise ValueError(f"batch status {status!r}; allowed: {', '.join(BATCH_STATUSES)}")
    for d in devices:
        if d.status not in DEVICE_STATUSES:
            raise ValueError(f"device status {d.status!r}; allowed: {', '.join(DEVICE_STATUSES)}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with h5py.File(tmp, "w", libver=WRITE_LIBVER) as f:  # HDF5 1.10 tools read it
            _write(f, path, name, status, devices, plan_text, reason, superseded)
        with open(tmp, "rb+") as raw:
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # the rename itself reaches the disk with the folder's entry
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    except OSError:
        pass
    finally:
        os.close(folder)


class BatchFile:
    """The batch file of a running batch: the rows in memory, the file rewritten whole
    (``write_batch``) after each change."""

    def __init__(
        self, path: Path, name: str, plan_text: str, devices: Sequence[DeviceResult]
    ) -> None:
        self.path = Path(path)
        self.name = name
        self.plan_text = plan_text
        self.devices = list(devices)
        self.status = "running"
        self.reason = ""
        self.superseded: list[tuple[int, Path]] = []

    def set(self, index: int, result: DeviceResult) -> None:
        self.devices[index] = result
        self.write()

    def supersede(self, index: int, run_file: Path) -> None:
        """Keep ``run_file`` (an unfinished run of row ``index``) on record; the row is
        measured again."""
        self.superseded.append((index, Path(run_file)))

    def end(self, status: str, reason: str = "") -> None:
        self.status, self.reason = status, reason
        self.write()

    def write(self) -> None:
        write_batch(
            self.path,
            self.name,
            self.status,
            self.devices,
            plan_text=self.plan_text,
            reason=self.reason,
            superseded=self.superseded,
        )


# --------------------------------------------------------------------------- reading
def _attr(obj: h5py.HLObject, name: str, default: str = "") -> str:
    value = obj.attrs.get(name, default)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _text(group: h5py.Group, name: str) -> list[str]:
    return [str(v) for v in group[name].asstr()[()]]


@dataclass(frozen=True)
class BatchRecord:
    """What ``read_batch`` leaves out: the plan text, the batch's reason, and the runs an
    interrupted batch left unfinished (row index, absolute path)."""

    plan_text: str
    reason: str
    superseded: tuple[tuple[int, Path], ...]


def _open(path: Path) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise NotABatchFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise NotABatchFileError(f"{path}: not an HDF5 file") from None
    found = _attr(f, "file_format")
    if found != BATCH_FORMAT or "batch" not in f:
        f.close()
        what = f"a {found} file" if found else "no labrig file_format"
        raise NotABatchFileError(
            f"{path}: not a labrig batch file ({what}; a batch file has {BATCH_FORMAT})"
        )
    return f


def read_batch(path: Path) -> Batch:
    """The batch file at ``path``: its name, status and rows (plan order) with each
    row's run file as an absolute path and its numeric headline figures with units.
    ``NotABatchFileError`` (one line) for anything else."""
    path = Path(path).absolute()
    with _open(path) as f:
        entry = f["batch"]
        table = entry["devices"]
        columns = {c: _text(table, c) for c in TEXT_COLUMNS}
        n = len(columns["substrate"])
        figures: list[dict[str, tuple[float, str]]] = [{} for _ in range(n)]
        for measurement, group in entry["figures"].items():
            for fname, ds in group.items():
                units = _attr(ds, "units")
                values = ds[()]
                for i in range(n):
                    if columns["measurement"][i] == measurement and math.isfinite(values[i]):
                        figures[i][fname] = (float(values[i]), units)
        devices = tuple(
            DeviceResult(
                substrate=columns["substrate"][i],
                pixel=columns["pixel"][i],
                condition=columns["condition"][i],
                measurement=columns["measurement"][i],
                status=columns["status"][i],
                reason=columns["reason"][i],
                run_file=(path.parent / columns["run_file"][i]) if columns["run_file"][i] else None,
                figures=figures[i],
            )
            for i in range(n)
        )
        return Batch(path, _attr(entry, "name"), _attr(entry, "status"), devices)


def read_batch_record(path: Path) -> BatchRecord:
    """The plan text, reason and superseded runs of the batch file at ``path`` (what a
    resumed batch needs besides ``read_batch``)."""
    path = Path(path).absolute()
    with _open(path) as f:
        entry = f["batch"]
        old = entry["superseded"]
        rows = [int(i) for i in old["row"][()]]
        files = _text(old, "run_file")
        return BatchRecord(
            plan_text=str(entry["plan"].asstr()[()]),
            reason=_attr(entry, "reason"),
            superseded=tuple((i, path.parent / p) for i, p in zip(rows, files, strict=True)),
        )
