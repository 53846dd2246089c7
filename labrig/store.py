"""The HDF5 run file: one self-describing, NeXus-flavoured file per run.

Layout (README "The run file")::

    /                 NXroot: default=entry, file_format, labrig_version
    /entry            NXentry: procedure, status, start_time, end_time, sample, operator,
                      simulated, abort_reason (when there is one)
    /entry/parameters every procedure parameter, attr units
    /entry/config     the bench config text exactly as used
    /entry/instruments/<role>   idn, manufacturer, model, serial_number, firmware, resource, driver
    /entry/data       NXdata: one resizable 1-D dataset per column (attrs units, long_name)
    /entry/<group>    extra NXdata groups with the same columns (lifetime channels)
    /entry/spectra    wavelength_nm, counts (steps x pixels), step, integration_time_s, ...
    /entry/analysis   derived figures, attr units (sub-group per data group)
    /entry/log        time, level, kind, message: one row per event

Why it is written the way it is:

* **Crash safety.**  Rows are buffered in memory and written in batches (appending row by
  row straight to HDF5 would cap a run at a few thousand rows/s), but a flush happens at
  least every ``flush_interval_s`` (0.5 s): inline when rows arrive, and from a small
  background thread when they stop arriving.  So a ``kill -9`` loses at most about a
  second of data and leaves a file that opens.
* **Live reading.**  The file is written in HDF5 SWMR mode, so another process can open
  it with ``h5py.File(path, "r", libver="latest", swmr=True)`` (``read_run`` does) while
  the run goes on.  SWMR forbids creating objects once it is on, so the whole layout is
  created first; anything structural that arrives late (an instrument recorded after the
  first row, spectra nobody announced, the analysis and the final status) is written by
  briefly leaving SWMR mode (close, reopen, write, reopen in SWMR).
* **Crashed and damaged files.**  A file left by a crashed SWMR writer keeps its "open
  for writing" flag, and a cut file makes an SWMR read retry for minutes; every reader
  goes through ``open_run_file``, which reads such files through a repaired read-only
  view instead (``labrig.h5access``).  ``resume`` copies a crashed file into a clean one
  (same name) before appending to it again.
* **One writer; a full disk.**  The writer holds ``<run>.h5.lock`` (``WriterLock``) for
  its lifetime.  Free space is checked after every flush (the run is stopped, failed,
  with ``CLOSE_RESERVE`` left to close the file properly); a write that fails anyway
  stops the store for good: it is never written again, and its status goes beside it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import h5py
import numpy as np

from labrig import __version__ as LABRIG_VERSION
from labrig.errors import NotARunFileError, RunFileDamagedError, StoreWriteError, UserInputError
from labrig.h5access import (
    RepairedView,
    Superblock,
    WriterLock,
    note_path,
    space_left,
    superblock,
    writer_alive,
)
from labrig.procedure import Column

if TYPE_CHECKING:
    from labrig.interfaces import InstrumentIdentity, Spectrum

log = logging.getLogger(__name__)

FILE_FORMAT = "labrig-run/1"
#: HDF5 file-format bounds for writing: the oldest that SWMR allows (1.10), and no newer,
#: so HDF5 1.10 tools (Debian's h5dump, h5ls) read every run file; "latest" under the
#: HDF5 2.x that h5py bundles writes objects 1.10 cannot decode
WRITE_LIBVER = ("v110", "v110")
DEFAULT_GROUP = "data"
RESERVED_NAMES = frozenset(
    {"parameters", "config", "instruments", "spectra", "analysis", "log", DEFAULT_GROUP}
)
STATUSES = ("running", "finished", "aborted", "failed")
ROW_CHUNK = 1024
SPECTRUM_CHUNK = 32
#: rows (and events) buffered before a flush even within the interval: each buffered
#: value is a Python object, so 200 000 rows of 11 columns held ~90 MB
MAX_PENDING = 50_000
#: buffered spectra written (not flushed) at once: 4 MB of 2048-pixel spectra
SPECTRA_SPILL = 8 * SPECTRUM_CHUNK
LOG_CHUNK = 64
#: bytes that must stay writable for the file to take its final status: below this the
#: run is stopped (failed) while the file can still be closed properly
CLOSE_RESERVE = 1 << 20
#: a run is not started with less than this writable at the output directory
MIN_FREE = 2 * CLOSE_RESERVE
LOG_KIND_BYTES = 64
LOG_MESSAGE_BYTES = 1024
STRING_COLUMN_BYTES = 64
_STR = h5py.string_dtype()


# ------------------------------------------------------------------------ helpers
def _now() -> float:
    """Wall time of the run's start (a seam for the file-naming tests)."""
    return time.time()


def now_iso(timestamp: float | None = None) -> str:
    """ISO 8601 local time with its zone offset (e.g. ``2026-11-21T05:40:02+00:00``)."""
    moment = _dt.datetime.now().astimezone() if timestamp is None else None
    if moment is None:
        moment = _dt.datetime.fromtimestamp(timestamp).astimezone()
    return moment.isoformat(timespec="milliseconds")


def sanitize(text: str, fallback: str = "run") -> str:
    """A file-name-safe fragment: letters, digits, ``.``, ``-``, ``_`` only, at most 64."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._-")
    return cleaned[:64] or fallback


def check_output_dir(output_dir: Path) -> Path:
    """Create ``output_dir`` if needed and prove it writable; raise ``UserInputError``
    naming it otherwise (before any instrument is touched)."""
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"output directory {output_dir}: cannot create it ({exc.strerror or exc})"
        ) from None
    if not output_dir.is_dir():
        raise UserInputError(f"output directory {output_dir}: not a directory")
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise UserInputError(f"output directory {output_dir}: not writable")
    return output_dir


def _reserve_path(output_dir: Path, stem: str) -> Path:
    """Atomically claim ``stem.h5`` (or ``stem-2.h5``, ``-3``...) so nothing is overwritten."""
    for n in range(1, 10_000):
        path = output_dir / (f"{stem}.h5" if n == 1 else f"{stem}-{n}.h5")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserInputError(
                f"output directory {output_dir}: cannot create {path.name} ({exc.strerror})"
            ) from None
        os.close(fd)
        return path
    raise UserInputError(f"output directory {output_dir}: too many runs named {stem}")


def _h5_dtype(column: Column) -> Any:
    if column.dtype in ("str", "S", "U"):
        return np.dtype(f"S{STRING_COLUMN_BYTES}")
    return np.dtype(column.dtype)


def _fill_value(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "S":
        return b""
    if dtype.kind == "b":
        return False
    return 0


def _encode(text: str, limit: int) -> bytes:
    data = str(text).encode("utf-8")
    if len(data) <= limit:
        return data
    return data[: limit - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O"):
        return np.array([_decode(v) for v in value.ravel()], dtype=object).reshape(value.shape)
    return value


def _write_value(group: h5py.Group, name: str, value: Any, units: str = "") -> None:
    """A scalar, string, bool, sequence or None as a dataset with a units attr."""
    if name in group:
        del group[name]
    if value is None:
        ds = group.create_dataset(name, data=h5py.Empty("f8"))
    elif isinstance(value, str):
        ds = group.create_dataset(name, data=value, dtype=_STR)
    elif isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
        ds = group.create_dataset(name, data=[str(v) for v in value], dtype=_STR)
    else:
        try:
            ds = group.create_dataset(name, data=np.asarray(value))
        except (TypeError, ValueError):  # a dict, a ragged list...: keep it readable as text
            ds = group.create_dataset(name, data=repr(value), dtype=_STR)
    if units:
        ds.attrs["units"] = units


def _column_attrs(ds: h5py.Dataset, units: str, long_name: str) -> None:
    """``units`` (only when there are any: an empty string is not a unit) and a
    ``long_name`` that carries them, so every viewer labels its axes with units."""
    if units:
        ds.attrs["units"] = units
    ds.attrs["long_name"] = f"{long_name} ({units})" if units else long_name


def _plain_long_name(long_name: str, units: str) -> str:
    """``long_name`` without the ``" (units)"`` the writer appends (files of any age)."""
    suffix = f" ({units})"
    return long_name[: -len(suffix)] if units and long_name.endswith(suffix) else long_name


def _write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    """A nested mapping whose leaves are ``(value, units)`` as NXcollection groups and
    datasets with units."""
    group.attrs["NX_class"] = "NXcollection"
    for name, node in tree.items():
        if isinstance(node, Mapping):
            _write_tree(group.create_group(name), node)
        else:
            value, units = node
            _write_value(group, name, value, units)


def _read_tree(group: h5py.Group) -> dict[str, Any]:
    """``_write_tree``'s mapping back: leaves ``(value, units)``."""
    return {
        name: _read_tree(obj)
        if isinstance(obj, h5py.Group)
        else (_read_value(obj), _decode(obj.attrs.get("units", "")))
        for name, obj in group.items()
    }


def _read_value(ds: h5py.Dataset) -> Any:
    if ds.shape is None:  # h5py.Empty
        return None
    if ds.dtype.kind in ("O", "S") and ds.shape == ():
        return _decode(ds[()])
    value = ds[()]
    if isinstance(value, np.ndarray):
        return _decode(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _resizable(group: h5py.Group, name: str, dtype: Any, chunk: int, width: int | None = None):
    shape, maxshape, chunks = (0,), (None,), (chunk,)
    if width is not None:
        shape, maxshape, chunks = (0, width), (None, width), (chunk, width)
    return group.create_dataset(name, shape=shape, maxshape=maxshape, chunks=chunks, dtype=dtype)


def _to_array(values: list, dtype: np.dtype, column: str) -> np.ndarray:
    """Buffered values as a column array.  A value that does not fit the column (a
    procedure bug) becomes the fill value with a warning instead of losing the batch."""
    if dtype.kind == "S":
        return np.asarray(
            [
                v if isinstance(v, bytes) else b"" if v is None else _encode(str(v), dtype.itemsize)
                for v in values
            ],
            dtype=dtype,
        )
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        fill = _fill_value(dtype)
        out = np.full(len(values), fill, dtype=dtype)
        for i, value in enumerate(values):
            try:
                out[i] = fill if value is None else value
            except (TypeError, ValueError):
                log.warning(
                    "column %s: value %r is not %s; stored as %r", column, value, dtype, fill
                )
        return out


def _append(ds: h5py.Dataset, values: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n:] = values


# --------------------------------------------------------------------------- read side
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
      (``read_run`` retries what is torn mid-write);
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


def read_run(path: Path | str, *, attempts: int = 3) -> RunData:
    """Read a whole run file (finished, still running, or left by a crash) or raise.

    A file being written can change under a reader for an instant (the writer briefly
    leaves SWMR mode to add objects or close the run); such a read is retried.  A file
    that stays unreadable, or is truncated, raises ``RunFileDamagedError`` (one line);
    ``labrig.report.data.load_run`` salvages what such a file still holds."""
    path = Path(path)
    for attempt in range(1, attempts + 1):
        try:
            return _read_run(path)
        except UserInputError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            if attempt == attempts:
                raise RunFileDamagedError(
                    f"{path}: damaged ({type(exc).__name__}: {exc})"
                ) from None
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


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


# ---------------------------------------------------------------- reading one section
# ``read_run`` and the report's salvage of damaged files both read a run file section by
# section with these; ``values`` reads a dataset's contents (the salvage passes one that
# stops before data lost off the end of a truncated file).
def dataset_values(ds: h5py.Dataset) -> Any:
    return ds[()]


def read_column(
    ds: h5py.Dataset, values: Callable[[h5py.Dataset], Any] = dataset_values
) -> tuple[np.ndarray, str, str]:
    """(data, units, long_name) of one data column."""
    data = values(ds)
    if data.dtype.kind == "S":
        data = _decode(data)
    name = ds.name.rsplit("/", 1)[-1]
    units = _decode(ds.attrs.get("units", ""))
    return data, units, _plain_long_name(_decode(ds.attrs.get("long_name", name)), units)


def read_parameters(entry: h5py.Group) -> dict[str, tuple[Any, str]]:
    """Every parameter as used ``(value, units)`` (a value the run resolved, such as a
    compliance of 0 meaning the config's default, is the one it used)."""
    return {
        name: (_read_value(ds), _decode(ds.attrs.get("units", "")))
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
    value = _decode(value)
    return value.item() if isinstance(value, np.generic) else value


def read_resolved_config(entry: h5py.Group) -> dict[str, Any]:
    """The configuration the run used, preset and tables resolved (``{}`` in files
    written before it was stored): leaves ``(value, units)``."""
    return _read_tree(entry["resolved_config"]) if "resolved_config" in entry else {}


def read_analysis(entry: h5py.Group) -> dict[str | None, dict[str, tuple[Any, str]]]:
    """Figures by group (None: the run's own), each (value, units)."""
    analysis: dict[str | None, dict[str, tuple[Any, str]]] = {}
    if "analysis" not in entry:
        return analysis
    for name, obj in entry["analysis"].items():
        if isinstance(obj, h5py.Group):
            analysis[name] = {
                k: (_read_value(v), _decode(v.attrs.get("units", ""))) for k, v in obj.items()
            }
        else:
            analysis.setdefault(None, {})[name] = (
                _read_value(obj),
                _decode(obj.attrs.get("units", "")),
            )
    return analysis


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


def read_log(entry: h5py.Group) -> list[LogEntry]:
    lg = entry["log"]
    return [
        LogEntry(float(t), int(lv), _decode(k), _decode(m))
        for t, lv, k, m in zip(
            lg["time"][()], lg["level"][()], lg["kind"][()], lg["message"][()], strict=False
        )
    ]


def _read_run(path: Path) -> RunData:
    with open_run_file(path) as opened:
        if opened.cut is not None:
            raise RunFileDamagedError(
                f"{path}: truncated ({opened.cut.size} of {opened.cut.end} bytes); "
                "labrig report/export/inspect show what it still holds"
            )
        f = opened.file
        fmt = _decode(f.attrs.get("file_format", b""))
        if fmt != FILE_FORMAT or "entry" not in f:
            raise NotARunFileError(
                f"{path}: not a labrig run file (file_format {fmt or 'missing'!r}, "
                f"expected {FILE_FORMAT!r})"
            )
        entry = f["entry"]

        def text(name: str, default: str | None = "") -> Any:
            return _read_value(entry[name]) if name in entry else default

        groups = [_decode(g) for g in entry.attrs.get("data_groups", [DEFAULT_GROUP])]
        columns: dict[str, dict[str, tuple[np.ndarray, str, str]]] = {}
        for gname in groups:
            grp = entry[gname]
            order = [_decode(c) for c in grp.attrs.get("columns", list(grp))]
            columns[gname] = {cname: read_column(grp[cname]) for cname in order}
            equal_lengths(columns[gname])

        parameters = read_parameters(entry)

        analysis = read_analysis(entry)
        spectra = read_spectra(entry)
        log_entries = read_log(entry)

        instruments = {}
        for role, grp in entry.get("instruments", {}).items():
            get = {k: _read_value(v) for k, v in grp.items()}
            instruments[role] = InstrumentRecord(
                role=role,
                manufacturer=get.get("manufacturer", ""),
                model=get.get("model", ""),
                serial_number=get.get("serial_number", ""),
                firmware=get.get("firmware", ""),
                idn=get.get("idn", ""),
                resource=get.get("resource", ""),
                driver=get.get("driver", ""),
            )

        data_attrs = entry[DEFAULT_GROUP].attrs
        run = RunData(
            path=path,
            procedure=text("procedure"),
            status=text("status"),
            start_time=text("start_time"),
            end_time=text("end_time", None),
            sample=text("sample"),
            operator=text("operator"),
            simulated=bool(text("simulated", False)),
            labrig_version=_decode(f.attrs.get("labrig_version", "")),
            parameters=parameters,
            columns=columns,
            analysis=analysis,
            spectra=spectra,
            log=log_entries,
            instruments=instruments,
            config_text=text("config"),
            abort_reason=text("abort_reason", None),
            signal=_decode(data_attrs.get("signal", "")),
            axis=_decode(data_attrs.get("axes", "")),
            groups=groups,
            resolved_config=read_resolved_config(entry),
            requested_parameters=read_requested_parameters(entry),
        )
    apply_failure_note(run)
    return run


# -------------------------------------------------------------------------- write side
class _Buffers:
    """Rows, spectra and log events waiting for the next flush."""

    def __init__(self, groups: Mapping[str, Sequence[Column]]) -> None:
        self.names = {g: frozenset(c.name for c in cols) for g, cols in groups.items()}
        self.fill = {
            g: {c.name: _fill_value(_h5_dtype(c)) for c in cols} for g, cols in groups.items()
        }
        self.rows: dict[str, dict[str, list]] = {
            g: {c.name: [] for c in cols} for g, cols in groups.items()
        }
        self.spectra: list[tuple] = []
        self.darks: list[tuple[int, np.ndarray]] = []
        self.log: list[tuple[float, int, bytes, bytes]] = []
        self.pending = 0

    def clear(self) -> None:
        for cols in self.rows.values():
            for values in cols.values():
                values.clear()
        self.spectra.clear()
        self.darks.clear()
        self.log.clear()
        self.pending = 0


class RunStore:
    """Writes one run file; see the module docstring for the layout and the guarantees."""

    def __init__(
        self,
        path: Path,
        groups: Mapping[str, Sequence[Column]],
        spectrum_pixels: int | None,
        flush_interval_s: float,
        lock: WriterLock | None = None,
    ) -> None:
        """Use ``create`` or ``resume``; this takes over a file whose layout exists (and
        the writer lock they took, released when the run is closed)."""
        self.path = Path(path)
        self._writer_lock = lock
        #: why the file takes no more rows (the disk filled, or is about to); None: fine
        self.write_error: str | None = None
        self._writes_failed = False  # a write did fail: never write to the file again
        self._committed: dict[str, int] = {g: 0 for g in groups}
        self.flush_interval_s = float(flush_interval_s)
        self._groups = {g: list(c) for g, c in groups.items()}
        self._pixels = spectrum_pixels
        self._buf = _Buffers(self._groups)
        self._lock = threading.RLock()
        self._file: h5py.File | None = None
        self._closed = False
        self._analysis: dict[str | None, dict[str, tuple[Any, str]]] = {}
        self._last_flush = time.monotonic()
        self._have_wavelengths = False
        self._open_swmr()
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"labrig-store-flush:{self.path.name}", daemon=True
        )
        self._flusher.start()

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        output_dir: Path,
        *,
        procedure: str,
        sample: str,
        columns: Sequence[Column],
        signal: str,
        axis: str,
        parameters: Mapping[str, tuple[Any, str]],
        config_text: str,
        simulated: bool,
        operator: str = "",
        groups: Sequence[str] = (),
        spectrum_pixels: int | None = None,
        flush_interval_s: float = 0.5,
        resolved_config: Mapping[str, Any] | None = None,
        requested_parameters: Mapping[str, Any] | None = None,
        default_plot: str = DEFAULT_GROUP,
        expected_rows: int | None = None,
    ) -> RunStore:
        """Create ``<sample>_<procedure>_<YYYYmmdd-HHMMSS>.h5`` (never overwriting) with the
        whole layout, status ``running``, and start writing it in SWMR mode.

        ``parameters`` are the values used; ``requested_parameters`` the ones asked for
        where they differ (a 0 that meant a config default).  ``resolved_config`` is the
        configuration as resolved (``labrig.config.resolved_configuration``).
        ``default_plot`` is the data group a viewer shows first.  Refused
        (``UserInputError``) with under ``MIN_FREE`` writable there; a warning (in the
        file's log too) when ``expected_rows`` will not fit."""
        if not columns:
            raise ValueError("a run needs at least one column")
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names in {names}")
        for special, label in ((signal, "signal"), (axis, "axis")):
            if special and special not in names:
                raise ValueError(f"{label} column {special!r} is not one of {names}")
        for g in groups:
            if g in RESERVED_NAMES or not re.fullmatch(r"[A-Za-z0-9_]+", g):
                raise ValueError(f"data group name {g!r} is reserved or not [A-Za-z0-9_]+")
        if default_plot not in (DEFAULT_GROUP, *groups, "spectra"):
            raise ValueError(
                f"default plot {default_plot!r} is not one of the data groups or spectra"
            )
        output_dir = check_output_dir(Path(output_dir))
        left, why = space_left(output_dir)
        if left < MIN_FREE:
            raise UserInputError(
                f"output directory {output_dir}: only {left // 1024} kB can be written "
                f"({why}); a run needs at least {MIN_FREE >> 20} MB"
            )
        start = _now()
        stamp = _dt.datetime.fromtimestamp(start).strftime("%Y%m%d-%H%M%S")
        path = _reserve_path(
            output_dir, f"{sanitize(sample, 'sample')}_{sanitize(procedure)}_{stamp}"
        )
        all_groups = {DEFAULT_GROUP: list(columns), **{g: list(columns) for g in groups}}
        lock = WriterLock(path).acquire("run")
        try:
            _write_layout(
                path,
                start,
                procedure=procedure,
                sample=sample,
                operator=operator,
                config_text=config_text,
                simulated=simulated,
                parameters=parameters,
                requested_parameters=requested_parameters or {},
                resolved_config=resolved_config or {},
                default_plot=default_plot,
                groups=all_groups,
                signal=signal,
                axis=axis,
                spectrum_pixels=spectrum_pixels,
            )
        except BaseException:
            path.unlink(missing_ok=True)  # no half-made file left behind under a run's name
            lock.release()
            raise
        store = cls(path, all_groups, spectrum_pixels, flush_interval_s, lock)
        store.log("start", f"run started: {procedure} on {sample}")
        if expected_rows:
            row = sum(_h5_dtype(c).itemsize for c in columns) * len(all_groups)
            need = expected_rows * (row + 8 * (spectrum_pixels or 0)) + CLOSE_RESERVE
            if need > left:
                message = (
                    f"this run needs about {need >> 20} MB but only {left >> 20} MB can be "
                    f"written ({why}); it will stop, failed, when that runs out"
                )
                log.warning("%s", message)
                store.log("disk_space", message, logging.WARNING)
        return store

    @classmethod
    def resume(cls, path: Path, flush_interval_s: float = 0.5) -> RunStore:
        """Reopen an aborted, failed or crashed run to keep appending to it.

        A crashed SWMR writer leaves the file flagged as open for writing, which HDF5
        refuses to reopen for writing; such a file is copied object by object into a clean
        file that then replaces it (same name, same data).
        """
        path = Path(path)
        # one writer per file: a live run still writing it keeps it (RunFileBusyError)
        lock = WriterLock(path).acquire("resume")
        try:
            return cls._resume_locked(path, lock, flush_interval_s)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _resume_locked(cls, path: Path, lock: WriterLock, flush_interval_s: float) -> RunStore:
        if note_path(path).exists():  # never write again to a file whose writes failed
            raise RunFileDamagedError(
                f"resume {path}: its writes failed (see {note_path(path).name}); it is kept "
                "as it is for reading; start a new run"
            )
        read_run(path)  # proves it is a whole labrig run, with a readable message if not
        try:
            f = h5py.File(path, "r+", libver=WRITE_LIBVER)
        except OSError:
            _rewrite_clean(path)
            f = h5py.File(path, "r+", libver=WRITE_LIBVER)
        with f:
            entry = f["entry"]
            groups: dict[str, list[Column]] = {}
            for gname in [_decode(g) for g in entry.attrs["data_groups"]]:
                grp = entry[gname]
                # a writer killed mid-flush can leave one column a batch longer
                names = [_decode(n) for n in grp.attrs["columns"]]
                rows = min(grp[c].shape[0] for c in names)
                for c in names:
                    if grp[c].shape[0] > rows:
                        grp[c].resize(rows, axis=0)
                groups[gname] = [
                    Column(
                        name=c,
                        units=_decode(grp[c].attrs.get("units", "")),
                        long_name=_decode(grp[c].attrs.get("long_name", c)),
                        dtype="str" if grp[c].dtype.kind == "S" else grp[c].dtype.str,
                    )
                    for c in (_decode(n) for n in grp.attrs["columns"])
                ]
            for gname in groups:  # rows may come again: each is a plot again
                entry[gname].attrs["NX_class"] = "NXdata"
            previous = _read_value(entry["status"])
            _write_value(entry, "status", "running")
            for name in ("end_time", "abort_reason"):
                if name in entry:
                    del entry[name]
            pixels = entry["spectra"]["counts"].shape[1] if "spectra" in entry else None
        store = cls(path, groups, pixels, flush_interval_s, lock)
        store._have_wavelengths = pixels is not None
        store.log("resumed", f"run resumed (was {previous})")
        return store

    # ------------------------------------------------------------------ SWMR file handling
    def _open_swmr(self) -> None:
        f = h5py.File(self.path, "r+", libver=WRITE_LIBVER, locking=False)
        f.swmr_mode = True
        self._file = f
        self._datasets: dict[str, h5py.Dataset] = {}

    def _ds(self, name: str) -> h5py.Dataset:
        """The open dataset ``name`` (under /entry), kept open while the file is: closing
        a dataset writes it out, and such a write failing inside h5py's deallocation is
        only printed, never raised -- writes must happen where a failure can be seen."""
        ds = self._datasets.get(name)
        if ds is None:
            assert self._file is not None
            ds = self._datasets[name] = self._file[f"entry/{name}"]
        return ds

    def _close_file(self) -> None:
        self._datasets.clear()
        assert self._file is not None
        self._file.close()
        self._file = None

    def _structural(self, change) -> None:
        """Leave SWMR mode to create objects, then come back to it."""
        with self._lock:
            self._flush_locked()
            self._check_open()  # never reopen a file whose writes failed
            self._close_file()
            try:
                # locking=False: a live SWMR reader holds a lock that would refuse us
                with h5py.File(self.path, "r+", libver=WRITE_LIBVER, locking=False) as f:
                    change(f["entry"])
            finally:
                self._open_swmr()

    # ------------------------------------------------------------------ recording
    def record_instrument(
        self, role: str, identity: InstrumentIdentity, resource: str, driver: str
    ) -> None:
        """What the instrument in ``role`` said it is, and how it was reached."""
        self.record_instruments({role: (identity, resource, driver)})

    def record_instruments(
        self, identities: Mapping[str, tuple[InstrumentIdentity, str, str]]
    ) -> None:
        """``{role: (identity, resource, driver)}`` in one go (one brief exit from SWMR)."""

        def change(entry: h5py.Group) -> None:
            insts = entry["instruments"]
            for role, (identity, resource, driver) in identities.items():
                if role in insts:
                    del insts[role]
                grp = insts.create_group(role)
                grp.attrs["NX_class"] = "NXinstrument"
                for name, value in (
                    ("name", f"{identity.manufacturer} {identity.model}".strip()),
                    ("manufacturer", identity.manufacturer),
                    ("model", identity.model),
                    ("serial_number", identity.serial),
                    ("firmware", identity.firmware),
                    ("idn", identity.raw),
                    ("resource", resource),
                    ("driver", driver),
                ):
                    _write_value(grp, name, value)

        self._check_open()
        if identities:
            self._structural(change)

    def prepare_spectra(self, pixels: int) -> None:
        """Create /entry/spectra for ``pixels``-long spectra now, before rows stream in
        (so live readers never see the layout change).  No-op when it exists."""
        with self._lock:
            self._check_open()
            if self._pixels is None:
                self._structural(lambda entry: _create_spectra(entry, pixels))
                self._pixels = pixels

    def append_row(self, row: Mapping[str, Any], group: str | None = None) -> None:
        """One row ``{column: value}``; missing columns are stored as NaN (0, "" for
        integer and text columns)."""
        with self._lock:
            self._check_open()
            gname = group or DEFAULT_GROUP
            bufs = self._group_rows(gname)
            extra = row.keys() - self._buf.names[gname]
            if extra:
                raise ValueError(f"unknown column(s) {sorted(extra)} for group {gname!r}")
            fill = self._buf.fill[gname]
            for name, values in bufs.items():
                values.append(row.get(name, fill[name]))
            self._buf.pending += 1
            self._maybe_flush()

    def append_rows(
        self,
        rows: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
        group: str | None = None,
    ) -> None:
        """Rows as columns ``{column: sequence}`` (equal lengths), as a sequence of row
        mappings, or a single row ``{column: scalar}``."""
        if isinstance(rows, Mapping):
            if all(np.ndim(v) == 0 for v in rows.values()):
                self.append_row(rows, group)
                return
            with self._lock:
                self._check_open()
                gname = group or DEFAULT_GROUP
                bufs = self._group_rows(gname)
                extra = rows.keys() - self._buf.names[gname]
                if extra:
                    raise ValueError(f"unknown column(s) {sorted(extra)} for group {gname!r}")
                lengths = {len(v) for v in rows.values()}
                if len(lengths) != 1:
                    raise ValueError(f"columns of unequal length: {lengths}")
                n = lengths.pop()
                fill = self._buf.fill[gname]
                for name, values in bufs.items():
                    given = rows.get(name)
                    values.extend(given if given is not None else [fill[name]] * n)
                self._buf.pending += n
                self._maybe_flush()
            return
        for row in rows:
            self.append_row(row, group)

    def append_spectrum(
        self, step: int, spectrum: Spectrum, dark: np.ndarray | None = None
    ) -> None:
        """One spectrum (and the dark taken for it, if any) belonging to data row ``step``."""
        counts = np.asarray(spectrum.counts, dtype="f8")
        with self._lock:
            self._check_open()
            if self._pixels is None:
                self.prepare_spectra(len(counts))
            if counts.shape != (self._pixels,):
                raise ValueError(f"spectrum has {counts.shape} pixels, the run has {self._pixels}")
            if not self._have_wavelengths:
                assert self._file is not None
                self._ds("spectra/wavelength_nm")[:] = np.asarray(spectrum.wavelength_nm, "f8")
                self._have_wavelengths = True
            self._buf.spectra.append(
                (
                    int(step),
                    counts,
                    float(spectrum.integration_time_s),
                    int(spectrum.scans_averaged),
                    bool(spectrum.saturated),
                    bool(spectrum.dark_subtracted),
                )
            )
            if dark is not None:
                self._buf.darks.append((int(step), np.asarray(dark, dtype="f8")))
            self._buf.pending += 1
            if len(self._buf.spectra) >= SPECTRA_SPILL:
                # write a chunk's worth now: a fast spectrometer would otherwise pile up
                # hundreds of MB before the next flush, and one huge stack is slow
                self._flush_locked()
            self._maybe_flush()

    def set_analysis(
        self, figures: Mapping[str, tuple[Any, str]], group: str | None = None
    ) -> None:
        """Derived figures ``{name: (value, units)}``; written when the run is closed."""
        with self._lock:
            self._check_open()
            self._analysis.setdefault(group, {}).update(figures)

    def log(self, kind: str, message: str, level: int = logging.INFO) -> None:
        """A timestamped event in /entry/log (compliance hits, warnings, the abort...)."""
        with self._lock:
            if self._closed:
                log.debug("log event after close ignored: %s: %s", kind, message)
                return
            self._buf.log.append(
                (
                    time.time(),
                    int(level),
                    _encode(kind, LOG_KIND_BYTES),
                    _encode(message, LOG_MESSAGE_BYTES),
                )
            )
            self._buf.pending += 1
            self._maybe_flush()

    # ------------------------------------------------------------------ flushing
    def flush(self) -> None:
        """Write everything buffered and make it visible to readers and safe from a crash."""
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _maybe_flush(self) -> None:
        if (
            time.monotonic() - self._last_flush >= self.flush_interval_s
            or self._buf.pending >= MAX_PENDING
        ):
            self._flush_locked()

    def _flush_loop(self) -> None:
        """Flush from the background while nothing arrives, so buffered rows never wait
        longer than the flush interval (a procedure may block in an instrument call)."""
        while not self._stop.wait(self.flush_interval_s / 2):
            with self._lock:
                if self._closed:
                    return
                if time.monotonic() - self._last_flush >= self.flush_interval_s:
                    try:
                        self._flush_locked()
                    except Exception:  # noqa: BLE001 - report, keep the thread alive
                        log.exception("flushing %s failed", self.path)

    def _write_spectra(self) -> None:
        """Append the buffered spectra and darks to their datasets (no HDF5 flush: the
        next ``_flush_locked`` makes them visible and crash-safe)."""
        buf = self._buf
        if not buf.spectra and not buf.darks:
            return
        assert self._file is not None
        if buf.spectra:
            step, counts, itime, scans, sat, dsub = zip(*buf.spectra, strict=True)
            _append(self._ds("spectra/counts"), np.stack(counts))
            _append(self._ds("spectra/step"), np.asarray(step, "i8"))
            _append(self._ds("spectra/integration_time_s"), np.asarray(itime, "f8"))
            _append(self._ds("spectra/scans_averaged"), np.asarray(scans, "i4"))
            _append(self._ds("spectra/saturated"), np.asarray(sat, "i1"))
            _append(self._ds("spectra/dark_subtracted"), np.asarray(dsub, "i1"))
            buf.spectra.clear()
        if buf.darks:
            _append(self._ds("spectra/dark"), np.stack([d for _, d in buf.darks]))
            _append(self._ds("spectra/dark_step"), np.asarray([s for s, _ in buf.darks], "i8"))
            buf.darks.clear()

    def _flush_locked(self) -> None:
        """Write what is buffered; the first write that fails stops the store for good
        (``StoreWriteError``), and nothing is written to that file again."""
        self._last_flush = time.monotonic()
        if self._writes_failed:
            self._buf.clear()  # nowhere to go; the note says how many rows reached disk
            return
        if not self._buf.pending:
            return
        try:
            self._write_buffered()
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError or RuntimeError
            self._fail_writes(exc)
            raise StoreWriteError(self.write_error) from None
        self._committed = {
            g: self._ds(f"{g}/{cols[0].name}").shape[0] for g, cols in self._groups.items()
        }
        left, why = space_left(self.path)
        if left < CLOSE_RESERVE and self.write_error is None:
            # stop while the file can still take its status: the disk is about to fill
            self.write_error = (
                f"stopped before the disk filled: {left // 1024} kB left ({why}); the "
                f"file keeps every row written ({self._rows_text()})"
            )
            log.error("%s: %s", self.path.name, self.write_error)

    def _rows_text(self) -> str:
        return ", ".join(f"{g} {n} rows" for g, n in self._committed.items() if n or g == "data")

    def _fail_writes(self, exc: BaseException) -> None:
        found = re.search(r"errno = (\d+)", str(exc))
        code = int(found.group(1)) if found else None
        what = {
            errno.EFBIG: "file-size limit (ulimit -f) reached",
            errno.ENOSPC: "disk full",
            errno.EDQUOT: "disk quota exceeded",
        }.get(code or -1, os.strerror(code) if code else f"{type(exc).__name__}: {exc}")
        self._writes_failed = True
        self._buf.clear()
        self.write_error = (
            f"writing the run file failed ({what}); the run was stopped and the file keeps "
            f"the rows that reached the disk before ({self._rows_text()})"
        )
        log.error("%s: %s", self.path.name, self.write_error)

    def _write_buffered(self) -> None:
        buf = self._buf
        assert self._file is not None
        for gname, cols in buf.rows.items():
            first = next(iter(cols.values()))
            if not first:
                continue
            for col in self._groups[gname]:
                data = _to_array(cols[col.name], _h5_dtype(col), col.name)
                _append(self._ds(f"{gname}/{col.name}"), data)
        self._write_spectra()
        if buf.log:
            t, lv, kind, msg = zip(*buf.log, strict=True)
            _append(self._ds("log/time"), np.asarray(t, "f8"))
            _append(self._ds("log/level"), np.asarray(lv, "i4"))
            _append(self._ds("log/kind"), np.asarray(kind, f"S{LOG_KIND_BYTES}"))
            _append(self._ds("log/message"), np.asarray(msg, f"S{LOG_MESSAGE_BYTES}"))
        buf.clear()
        self._file.flush()

    # ------------------------------------------------------------------ ending
    def close(
        self, status: Literal["finished", "aborted", "failed"], reason: str | None = None
    ) -> None:
        """Write everything, set status, end time, reason and analysis; close.  Idempotent."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {STATUSES[1:]}, got {status!r}")
        with self._lock:
            if self._closed:
                return
            if self.write_error is not None:  # the run ended because the file could not grow
                status = "failed"
                reason = self.write_error + (
                    f"; then {reason}" if reason and self.write_error not in reason else ""
                )
            if self._writes_failed:
                self._abandon(reason or "")
                return
            level = logging.INFO if status == "finished" else logging.WARNING
            self.log(status, f"run {status}" + (f": {reason}" if reason else ""), level)
            self._stop.set()
            try:
                self._flush_locked()
            finally:
                self._closed = True
                self._close_file()
            with h5py.File(self.path, "r+", libver=WRITE_LIBVER, locking=False) as f:
                entry = f["entry"]
                _write_value(entry, "status", status)
                _write_value(entry, "end_time", now_iso())
                if reason:
                    _write_value(entry, "abort_reason", reason)
                if self._analysis:
                    an = entry.require_group("analysis")
                    an.attrs["NX_class"] = "NXcollection"
                    for group, figures in self._analysis.items():
                        target = an if group is None else an.require_group(group)
                        target.attrs["NX_class"] = "NXcollection"
                        for name, (value, units) in figures.items():
                            _write_value(target, name, value, units)
                _mark_plots(entry)
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        if self._writer_lock is not None:
            self._writer_lock.release()

    def _abandon(self, reason: str) -> None:
        """Close a file whose writes failed without writing to it again: HDF5's handle is
        pointed at /dev/null first, so what it still wants to write at close (and
        cannot) goes nowhere instead of crashing the process.  The status and reason go
        to ``<run>.h5.failed`` beside it (the block was reserved with the lock)."""
        self._stop.set()
        self._closed = True
        if self._file is not None:
            with contextlib.suppress(Exception):
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, self._file.id.get_vfd_handle())
                os.close(null)
            with contextlib.suppress(Exception):
                self._close_file()
            self._file = None
        note = {
            "status": "failed",
            "reason": reason,
            "end_time": now_iso(),
            "rows": self._committed,
        }
        if self._writer_lock is not None:
            try:
                where = self._writer_lock.write_note(json.dumps(note))
                log.error("%s: status recorded in %s", self.path.name, where.name)
            except OSError as exc:
                log.error("%s: its status could not be recorded either (%s)", self.path.name, exc)
            self._writer_lock.release()
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """For scripts: a run still open at the end is closed as finished, or as failed
        (aborted for Ctrl-C) with the exception as the reason."""
        if exc is None:
            self.close("finished")
        elif isinstance(exc, KeyboardInterrupt):
            self.close("aborted", "interrupted by SIGINT")
        else:
            self.close("failed", f"{type(exc).__name__}: {exc}")

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"run file {self.path} is already closed")
        if self.write_error is not None:
            raise StoreWriteError(self.write_error)

    def _group_rows(self, gname: str) -> dict[str, list]:
        try:
            return self._buf.rows[gname]
        except KeyError:
            raise ValueError(
                f"unknown data group {gname!r}; this run has {sorted(self._buf.rows)}"
            ) from None

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r}, closed={self._closed})"


def _write_layout(
    path: Path,
    start: float,
    *,
    procedure: str,
    sample: str,
    operator: str,
    config_text: str,
    simulated: bool,
    parameters: Mapping[str, tuple[Any, str]],
    requested_parameters: Mapping[str, Any],
    resolved_config: Mapping[str, Any],
    default_plot: str,
    groups: Mapping[str, Sequence[Column]],
    signal: str,
    axis: str,
    spectrum_pixels: int | None,
) -> None:
    """Everything a run file holds before its first row (SWMR cannot add objects later)."""
    with h5py.File(path, "w", libver=WRITE_LIBVER) as f:
        f.attrs.update(
            NX_class="NXroot",
            default="entry",
            file_format=FILE_FORMAT,
            labrig_version=LABRIG_VERSION,
            creator="labrig",
            HDF5_Version=h5py.version.hdf5_version,
            h5py_version=h5py.version.version,
            file_name=path.name,
            file_time=now_iso(start),
        )
        entry = f.create_group("entry")
        entry.attrs.update(NX_class="NXentry", default=default_plot)
        entry.attrs["data_groups"] = list(groups)
        for name, value in (
            ("procedure", procedure),
            ("status", "running"),
            ("start_time", now_iso(start)),
            ("sample", sample),
            ("operator", operator),
            ("config", config_text),
        ):
            _write_value(entry, name, value)
        entry["simulated"] = bool(simulated)
        params = entry.create_group("parameters")
        params.attrs["NX_class"] = "NXcollection"
        for name, (value, units) in parameters.items():
            _write_value(params, name, value, units)
            if name in requested_parameters:
                params[name].attrs["requested"] = requested_parameters[name]
        _write_tree(entry.create_group("resolved_config"), resolved_config)
        entry.create_group("instruments").attrs["NX_class"] = "NXcollection"
        for gname, cols in groups.items():
            grp = entry.create_group(gname)
            grp.attrs.update(NX_class="NXdata", columns=[c.name for c in cols])
            if signal:
                grp.attrs["signal"] = signal
            if axis:
                grp.attrs["axes"] = axis
                grp.attrs[f"{axis}_indices"] = 0
            for col in cols:
                ds = _resizable(grp, col.name, _h5_dtype(col), ROW_CHUNK)
                _column_attrs(ds, col.units, col.long_name)
        lg = entry.create_group("log")
        lg.attrs["NX_class"] = "NXcollection"
        _column_attrs(
            _resizable(lg, "time", "f8", LOG_CHUNK),
            "s",
            "time of the event, seconds since the Unix epoch",
        )
        _column_attrs(_resizable(lg, "level", "i4", LOG_CHUNK), "", "python logging level")
        _resizable(lg, "kind", f"S{LOG_KIND_BYTES}", LOG_CHUNK)
        _resizable(lg, "message", f"S{LOG_MESSAGE_BYTES}", LOG_CHUNK)
        if spectrum_pixels:
            _create_spectra(entry, spectrum_pixels)


def _mark_plots(entry: h5py.Group) -> None:
    """At close: a data group that received no rows is no plot (NXcollection, so no
    viewer draws an empty NXdata), and the entry's default plot is a group with data."""
    groups = [_decode(g) for g in entry.attrs.get("data_groups", [DEFAULT_GROUP])]
    filled = []
    for gname in groups:
        grp = entry[gname]
        columns = [_decode(c) for c in grp.attrs.get("columns", [])]
        rows = grp[columns[0]].shape[0] if columns and columns[0] in grp else 0
        grp.attrs["NX_class"] = "NXdata" if rows else "NXcollection"
        if rows:
            filled.append(gname)
    if "spectra" in entry:
        spectra = entry["spectra"].attrs
        spectra["NX_class"] = "NXdata" if entry["spectra"]["counts"].shape[0] else "NXcollection"
        if spectra["NX_class"] == "NXdata":
            filled.append("spectra")
    if filled and _decode(entry.attrs.get("default", DEFAULT_GROUP)) not in filled:
        entry.attrs["default"] = filled[0]


def _create_spectra(entry: h5py.Group, pixels: int) -> None:
    sp = entry.create_group("spectra")
    sp.attrs.update(NX_class="NXdata", signal="counts", axes=[".", "wavelength_nm"])
    sp.attrs["wavelength_nm_indices"] = 1
    wl = sp.create_dataset("wavelength_nm", shape=(pixels,), dtype="f8", fillvalue=np.nan)
    _column_attrs(wl, "nm", "wavelength")
    for name, dtype, width, units, long_name in (
        ("counts", "f8", pixels, "counts", "spectrometer counts"),  # rows: spectra
        ("step", "i8", None, "", "data row the spectrum belongs to"),
        ("integration_time_s", "f8", None, "s", "integration time"),
        ("scans_averaged", "i4", None, "", "scans averaged"),
        ("saturated", "i1", None, "", "saturated (1) or not (0)"),
        ("dark_subtracted", "i1", None, "", "dark subtracted (1)"),
        ("dark", "f8", pixels, "counts", "dark spectrum"),
        ("dark_step", "i8", None, "", "step each dark belongs to"),
    ):
        chunk = SPECTRUM_CHUNK if width else ROW_CHUNK
        _column_attrs(_resizable(sp, name, dtype, chunk, width), units, long_name)
    sp["counts"].attrs["interpretation"] = "spectrum"  # viewers: a curve per row, no image


def _rewrite_clean(path: Path) -> None:
    """Copy a crashed writer's file (SWMR-readable only) into a clean file that replaces it."""
    tmp = path.with_name(path.name + ".resume-tmp")
    with open_run_file(path) as opened, h5py.File(tmp, "w", libver=WRITE_LIBVER) as dst:
        src = opened.file
        dst.attrs.update(dict(src.attrs))
        for name in src:
            src.copy(src[name], dst, name=name)
    os.replace(tmp, path)
