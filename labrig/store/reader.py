"""The one reader of run files: ``describe`` (labrig inspect), ``report``, ``watch``,
``export``, ``--resume`` and the pulsed-el DC reference all read through ``load_run``.

* **Bounded in time on any file.**  ``open_run_file`` opens a file a live writer holds in
  HDF5's SWMR read mode, and a truncated file, or one a crashed writer left flagged as
  open, through a repaired read-only view (``labrig.store.access.RepairedView``); never an
  SWMR read without a live writer (it retries a bad checksum for minutes on a cut file).
* **Every format version.**  A file of an older format is read into the same ``RunData``
  as a current one (``labrig.store.upgrade``), so no caller knows there were several.
* **Whatever is readable.**  A file is read section by section; a section that cannot be
  read is named in ``LoadedRun.problems`` and the rest is kept.  Data past the end of a
  truncated file are cut off at the last intact chunk, never shown as zeros, and a
  group's columns are always of equal length.  ``read_run`` is the strict form: the whole
  file or ``RunFileDamagedError`` (what ``--resume`` needs).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labrig.errors import NotARunFileError, RunFileDamagedError, UserInputError
from labrig.store.access import RepairedView, Superblock, note_path, superblock, writer_alive
from labrig.store.layout import (
    DEFAULT_GROUP,
    FILE_FORMAT,
    READABLE_FORMATS,
    V1_FORMAT,
    decode,
    enum_names,
    now_iso,
    plain_long_name,
    read_tree,
    read_value,
)
from labrig.store.upgrade import upgrade_v1

#: reads of a file that came out torn (a live writer left SWMR mode for an instant)
ATTEMPTS = 3


@dataclass(frozen=True)
class LogEntry:
    time: float  # s since the Unix epoch
    level: int
    kind: str
    message: str

    @property
    def iso_time(self) -> str:
        return now_iso(self.time)


@dataclass(frozen=True)
class SpectraData:
    wavelength_nm: np.ndarray
    counts: np.ndarray  # steps x pixels
    step: np.ndarray
    integration_time_s: np.ndarray
    scans_averaged: np.ndarray
    saturated: np.ndarray
    dark_subtracted: np.ndarray
    dark: np.ndarray  # n_dark x pixels
    dark_step: np.ndarray


@dataclass(frozen=True)
class InstrumentRecord:
    role: str
    manufacturer: str
    model: str
    serial_number: str
    firmware: str
    idn: str
    resource: str
    driver: str


@dataclass
class RunData:
    """Everything a run file holds, as plain Python and numpy."""

    path: Path
    procedure: str
    status: str
    start_time: str
    end_time: str | None
    sample: str
    operator: str
    simulated: bool
    labrig_version: str
    parameters: dict[str, tuple[Any, str]]
    columns: dict[str, dict[str, tuple[np.ndarray, str, str]]]
    analysis: dict[str | None, dict[str, tuple[Any, str]]]
    spectra: SpectraData | None
    log: list[LogEntry]
    instruments: dict[str, InstrumentRecord]
    config_text: str
    abort_reason: str | None = None
    signal: str = ""
    axis: str = ""
    groups: list[str] = field(default_factory=list)
    #: the configuration as resolved (preset expanded, tables loaded); {} in older files
    resolved_config: dict[str, Any] = field(default_factory=dict)
    #: parameters whose value as asked differs from the value used (``parameters``)
    requested_parameters: dict[str, Any] = field(default_factory=dict)
    #: the file's format (``labrig-run/N``) as written; the data above are of the current one
    file_format: str = FILE_FORMAT


@dataclass
class LoadedRun:
    """A run file's content plus the reasons it may be incomplete."""

    run: RunData
    problems: list[str] = field(default_factory=list)
    #: some part could not be read (damaged or truncated): ``run`` holds the rest
    salvaged: bool = False

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def complete(self) -> bool:
        return not self.problems

    def table(self, group: str = DEFAULT_GROUP) -> dict[str, np.ndarray]:
        """Columns of ``group`` ``{name: values}`` (of equal length)."""
        return {name: data for name, (data, _, _) in self.run.columns.get(group, {}).items()}

    def units(self, name: str, group: str = DEFAULT_GROUP) -> str:
        cols = self.run.columns.get(group, {})
        return cols[name][1] if name in cols else ""

    def figures(self, group: str | None = None) -> dict[str, tuple[Any, str]]:
        return self.run.analysis.get(group, {})

    def rows(self, group: str = DEFAULT_GROUP) -> int:
        table = self.table(group)
        return len(next(iter(table.values()))) if table else 0


@dataclass
class OpenedRun:
    """A run file opened for reading, and what its superblock says about it."""

    file: h5py.File
    #: the superblock when the file is shorter than HDF5 wrote it (truncated), else None
    cut: Superblock | None = None

    @property
    def size(self) -> int | None:
        """Bytes really on disk when the file is truncated (data past them is lost)."""
        return None if self.cut is None else self.cut.size


@contextlib.contextmanager
def open_run_file(path: Path | str) -> Iterator[OpenedRun]:
    """The one way labrig opens a run file for reading; bounded in time on any file.

    * a file a live writer holds (``WriterLock``): HDF5's SWMR read, made for that
      (``load_run`` retries what is torn mid-write);
    * a truncated file, or one a dead writer left flagged as open: a ``RepairedView``
      (zeros past the cut, flags cleared) in plain read mode;
    * anything else: plain read.
    Never an SWMR read without a live writer: it retries every metadata read that fails
    its checksum, for minutes on a cut file.
    """
    path = Path(path)
    if not path.exists():
        raise NotARunFileError(f"{path}: no such file")
    sb = superblock(path)
    live = writer_alive(path)
    if live:  # a live writer's file may look cut or flagged while it is being extended
        sb = None
    cut = sb if sb is not None and sb.truncated else None
    try:
        if sb is not None and (cut is not None or sb.writer_flags):
            f = h5py.File(RepairedView(path, sb), "r")
        elif live:
            try:
                f = h5py.File(path, "r", libver="latest", swmr=True)
            except OSError:  # left SWMR mode for an instant (layout, closing)
                f = h5py.File(path, "r")
        else:
            f = h5py.File(path, "r")
    except OSError as exc:
        what = f"truncated ({cut.size} of {cut.end} bytes) and " if cut else ""
        raise NotARunFileError(f"{path}: {what}not an HDF5 file labrig can open ({exc})") from None
    with f:
        yield OpenedRun(f, cut)


# ----------------------------------------------------------------------------- entry points
def load_run(path: Path | str) -> LoadedRun:
    """Read ``path``: everything readable, and in ``problems`` what is not (and why the
    run may be incomplete: still running, aborted, failed).

    Raises ``NotARunFileError`` (a ``UserInputError``: one line, exit status 2) for a
    missing file, a file that is not HDF5 or not a labrig run, and ``RunFileDamagedError``
    when not even the layout can be read."""
    path = Path(path)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            loaded, damage, cut = _read(path)
        except UserInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - h5py raises many kinds on a torn file
            if attempt < ATTEMPTS:
                time.sleep(0.1 * attempt)
                continue
            raise RunFileDamagedError(
                f"{path}: damaged, nothing readable ({type(exc).__name__}: {exc})"
            ) from None
        if damage and cut is None and attempt < ATTEMPTS:
            time.sleep(0.1 * attempt)  # torn by a live writer, or damaged: look again
            continue
        problems: list[str] = []
        if cut is not None:
            problems.append(
                f"file truncated ({cut.size} of {cut.end} bytes); shown: the rows wholly "
                "inside the file, items beyond its end are named as unreadable"
            )
        elif damage:
            problems.append(f"file damaged ({damage[0]}); shown: what is readable")
        problems.extend(_status_problems(loaded.run))
        problems.extend(damage)
        loaded.problems = problems
        loaded.salvaged = bool(damage) or cut is not None
        return loaded
    raise AssertionError("unreachable")


def read_run(path: Path | str) -> RunData:
    """The whole run file (finished, still running, or left by a crash) or one line why
    not: ``RunFileDamagedError`` for a truncated or damaged file (``load_run`` shows what
    such a file still holds), ``NotARunFileError`` for anything that is not a run."""
    path = Path(path)
    loaded = load_run(path)
    if loaded.salvaged:
        first = loaded.problems[0]
        if first.startswith("file truncated"):
            what = first.split(";")[0].removeprefix("file ")
            raise RunFileDamagedError(
                f"{path}: {what}; labrig report/export/inspect show what it still holds"
            )
        raise RunFileDamagedError(f"{path}: damaged ({first.split(';')[0]})")
    return loaded.run


def _status_problems(run: RunData) -> list[str]:
    if run.status == "running":
        return [
            "run in progress (status 'running': still being written, or its writer stopped "
            "without closing the file); shown: the data written so far"
        ]
    if run.status in ("aborted", "failed"):
        reason = f": {run.abort_reason}" if run.abort_reason else ""
        return [f"run {run.status}{reason}"]
    if run.status not in ("finished", "unknown"):  # unknown: named among the damage
        return [f"run status {run.status!r} unknown"]
    return []


def apply_failure_note(run: RunData) -> None:
    """A run whose file stopped taking writes left its status in ``<run>.h5.failed``
    (the file itself still says ``running``): apply it, and show only the rows that
    reached the disk before the failing write."""
    try:
        note = json.loads(note_path(run.path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if run.status != "running" or not isinstance(note, dict):
        return
    run.status = str(note.get("status", "failed"))
    run.abort_reason = str(note.get("reason", "")) or None
    run.end_time = note.get("end_time") or run.end_time
    for group, rows in dict(note.get("rows", {})).items():
        for name, (data, units, long_name) in run.columns.get(group, {}).items():
            run.columns[group][name] = (data[: int(rows)], units, long_name)


def equal_lengths(columns: dict[str, tuple[np.ndarray, str, str]]) -> None:
    """Cut a group's columns to their common length, in place: a live file's columns
    can differ by the rows of one flush for an instant, and no reader may see that."""
    if columns:
        n = min(len(data) for data, _, _ in columns.values())
        for name, (data, units, long_name) in columns.items():
            columns[name] = (data[:n], units, long_name)


# ----------------------------------------------------------------------------- one pass
def _intact(ds: h5py.Dataset, size: int | None) -> Any:
    """``ds``'s values, cut before the first chunk that reaches past ``size`` bytes (the
    end of a truncated file; None: the file is whole)."""
    if size is None:
        return ds[()]
    if ds.chunks is None:
        offset = ds.id.get_offset()
        if offset is not None and offset + ds.id.get_storage_size() > size:
            raise OSError("data beyond the end of the file")
        return ds[()]
    rows = ds.shape[0]
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        if info.byte_offset + info.size > size:
            rows = min(rows, info.chunk_offset[0])
    return ds[:rows]


def _read(path: Path) -> tuple[LoadedRun, list[str], Superblock | None]:
    """One pass over a run file, section by section: (what was read, the sections that
    could not be, the superblock of a truncated file)."""
    damage: list[str] = []
    with open_run_file(path) as opened:
        f, size = opened.file, opened.size
        fmt = decode(f.attrs.get("file_format", b""))
        if fmt not in READABLE_FORMATS or "entry" not in f:
            raise NotARunFileError(
                f"{path}: not a labrig run file (file_format {fmt or 'missing'!r}, "
                f"expected one of {', '.join(READABLE_FORMATS)})"
            )
        entry = f["entry"]

        def values(ds: h5py.Dataset) -> Any:
            return _intact(ds, size)

        def get(what: str, read: Callable[[], Any], default: Any) -> Any:
            try:
                return read()
            except Exception as exc:  # noqa: BLE001 - the damaged part is named, the rest kept
                damage.append(f"{what} unreadable ({type(exc).__name__}: {exc})")
                return default

        def text(name: str, default: Any = "") -> Any:
            return get(name, lambda: read_value(entry[name]) if name in entry else default, default)

        groups = get(
            "data group list",
            lambda: [decode(g) for g in entry.attrs.get("data_groups", [DEFAULT_GROUP])],
            [DEFAULT_GROUP],
        )
        columns = {gname: _read_group(entry, gname, values, get, damage) for gname in groups}
        data_attrs = get("data group", lambda: dict(entry[DEFAULT_GROUP].attrs), {})
        status = text("status", "unknown")
        run = RunData(
            path=path,
            procedure=text("procedure", "unknown"),
            status=status or "unknown",
            start_time=text("start_time"),
            end_time=text("end_time", None),
            sample=text("sample"),
            operator=text("operator"),
            simulated=bool(text("simulated", False)),
            labrig_version=decode(f.attrs.get("labrig_version", "")),
            parameters=get("parameters", lambda: read_parameters(entry), {}),
            columns=columns,
            analysis=get("analysis", lambda: read_analysis(entry), {}),
            spectra=get("spectra", lambda: read_spectra(entry, values), None),
            log=get("log", lambda: read_log(entry, values), []),
            instruments=get("instruments", lambda: read_instruments(entry), {}),
            config_text=text("config"),
            abort_reason=text("abort_reason", None),
            signal=decode(data_attrs.get("signal", "")),
            axis=decode(data_attrs.get("axes", "")),
            groups=groups,
            resolved_config=get("resolved_config", lambda: read_resolved_config(entry), {}),
            requested_parameters=get(
                "requested parameters", lambda: read_requested_parameters(entry), {}
            ),
            file_format=fmt,
        )
        cut = opened.cut
    apply_failure_note(run)
    if fmt == V1_FORMAT:
        upgrade_v1(run)
    return LoadedRun(run), damage, cut


def _read_group(
    entry: h5py.Group,
    gname: str,
    values: Callable[[h5py.Dataset], Any],
    get: Callable[[str, Callable[[], Any], Any], Any],
    damage: list[str],
) -> dict[str, tuple[np.ndarray, str, str]]:
    """One data group's columns, each readable one kept, cut to a common length."""
    grp = get(f"data group {gname}", lambda: entry[gname], None)
    if grp is None:
        return {}
    order = get(
        f"{gname} column list", lambda: [decode(c) for c in grp.attrs.get("columns", list(grp))], []
    )
    cols = {}
    for cname in order:
        item = get(f"column {gname}/{cname}", lambda c=cname: read_column(grp[c], values), None)
        if item is not None:
            cols[cname] = item
    longest = max((len(data) for data, _, _ in cols.values() if np.ndim(data)), default=0)
    for cname, (data, units, long_name) in cols.items():
        if not np.ndim(data):  # constant per group (format 3): a value for every row
            cols[cname] = (np.full(longest, data, dtype=data.dtype), units, long_name)
    for cname in [c for c, (data, _, _) in cols.items() if longest and not len(data)]:
        del cols[cname]  # wholly past the end of a truncated file
        damage.append(f"column {gname}/{cname} lost")
    equal_lengths(cols)
    return cols


# ---------------------------------------------------------------- reading one section
def dataset_values(ds: h5py.Dataset) -> Any:
    return ds[()]


def read_column(
    ds: h5py.Dataset, values: Callable[[h5py.Dataset], Any] = dataset_values
) -> tuple[np.ndarray, str, str]:
    """(data, units, long_name) of one data column; an enumerated one (format 2 on) as
    its names; a constant one (format 3) as its 0-d value."""
    data = np.asarray(values(ds))
    names = enum_names(ds.dtype)
    if names is not None:
        data = np.array([names.get(int(code), str(code)) for code in data], dtype=object)
    elif data.dtype.kind == "S":
        data = decode(data)
    name = ds.name.rsplit("/", 1)[-1]
    units = decode(ds.attrs.get("units", ""))
    return data, units, plain_long_name(decode(ds.attrs.get("long_name", name)), units)


def read_parameters(entry: h5py.Group) -> dict[str, tuple[Any, str]]:
    """Every parameter as used ``(value, units)`` (a value the run resolved, such as a
    compliance of 0 meaning the config's default, is the one it used)."""
    return {
        name: (read_value(ds), decode(ds.attrs.get("units", "")))
        for name, ds in entry["parameters"].items()
    }


def read_requested_parameters(entry: h5py.Group) -> dict[str, Any]:
    """The parameters whose value as asked differs from the value used: ``{name: asked}``."""
    return {
        name: _read_value_attr(ds.attrs["requested"])
        for name, ds in entry["parameters"].items()
        if "requested" in ds.attrs
    }


def _read_value_attr(value: Any) -> Any:
    value = decode(value)
    return value.item() if isinstance(value, np.generic) else value


def read_resolved_config(entry: h5py.Group) -> dict[str, Any]:
    """The configuration the run used, preset and tables resolved (``{}`` in files
    written before it was stored): leaves ``(value, units)``."""
    return read_tree(entry["resolved_config"]) if "resolved_config" in entry else {}


def read_analysis(entry: h5py.Group) -> dict[str | None, dict[str, tuple[Any, str]]]:
    """Figures by group (None: the run's own), each (value, units)."""
    analysis: dict[str | None, dict[str, tuple[Any, str]]] = {}
    if "analysis" not in entry:
        return analysis
    for name, obj in entry["analysis"].items():
        if isinstance(obj, h5py.Group):
            analysis[name] = {
                k: (read_value(v), decode(v.attrs.get("units", ""))) for k, v in obj.items()
            }
        else:
            analysis.setdefault(None, {})[name] = (
                read_value(obj),
                decode(obj.attrs.get("units", "")),
            )
    return analysis


def read_instruments(entry: h5py.Group) -> dict[str, InstrumentRecord]:
    instruments = {}
    for role, grp in entry.get("instruments", {}).items():
        got = {k: read_value(v) for k, v in grp.items()}
        instruments[role] = InstrumentRecord(
            role=role,
            manufacturer=got.get("manufacturer", ""),
            model=got.get("model", ""),
            serial_number=got.get("serial_number", ""),
            firmware=got.get("firmware", ""),
            idn=got.get("idn", ""),
            resource=got.get("resource", ""),
            driver=got.get("driver", ""),
        )
    return instruments


def read_spectra(
    entry: h5py.Group, values: Callable[[h5py.Dataset], Any] = dataset_values
) -> SpectraData | None:
    if "spectra" not in entry:
        return None
    sp = entry["spectra"]

    def get(name: str) -> np.ndarray:
        return np.asarray(values(sp[name]))

    per_spectrum = {
        name: get(name)
        for name in (
            "counts", "step", "integration_time_s", "scans_averaged", "saturated",
            "dark_subtracted",
        )
    }  # fmt: skip
    n = min(len(v) for v in per_spectrum.values())  # equal lengths, as for the columns
    cut = {name: v[:n] for name, v in per_spectrum.items()}
    dark, dark_step = get("dark"), get("dark_step")
    m = min(len(dark), len(dark_step))
    return SpectraData(
        wavelength_nm=get("wavelength_nm"),
        counts=cut["counts"],
        step=cut["step"],
        integration_time_s=cut["integration_time_s"],
        scans_averaged=cut["scans_averaged"],
        saturated=cut["saturated"].astype(bool),
        dark_subtracted=cut["dark_subtracted"].astype(bool),
        dark=dark[:m],
        dark_step=dark_step[:m],
    )


def read_log(
    entry: h5py.Group, values: Callable[[h5py.Dataset], Any] = dataset_values
) -> list[LogEntry]:
    lg = entry["log"]
    return [
        LogEntry(float(t), int(lv), decode(k), decode(m))
        for t, lv, k, m in zip(
            values(lg["time"]),
            values(lg["level"]),
            values(lg["kind"]),
            values(lg["message"]),
            strict=False,
        )
    ]
