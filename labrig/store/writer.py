"""Writes one run file: ``RunStore``.

Why it is written the way it is:

* **Crash safety.**  Rows are buffered in memory and written in batches (appending row by
  row straight to HDF5 would cap a run at a few thousand rows/s), but a flush happens at
  least every ``flush_interval_s`` (0.5 s): inline when rows arrive, and from a small
  background thread when they stop arriving.  So a ``kill -9`` loses at most about a
  second of data and leaves a file that opens.
* **Live reading.**  The file is written in HDF5 SWMR mode, so another process can open
  it with ``h5py.File(path, "r", libver="latest", swmr=True)`` (``load_run`` does) while
  the run goes on.  SWMR forbids creating objects once it is on, so the whole layout
  (``labrig.store.layout``) is created first; anything structural that arrives late (an
  instrument recorded after the first row, spectra nobody announced, the analysis and the
  final status) is written by briefly leaving SWMR mode (close, reopen, write, reopen in
  SWMR).
* **Crashed and damaged files.**  A file left by a crashed SWMR writer keeps its "open
  for writing" flag; ``resume`` copies such a file into a clean one (same name) before
  appending to it again.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import h5py
import numpy as np

from labrig.errors import RunFileDamagedError, StoreWriteError, UserInputError
from labrig.procedure import Column
from labrig.store.access import WriterLock, note_path, space_left
from labrig.store.layout import (
    DEFAULT_GROUP,
    LOG_KIND_BYTES,
    LOG_MESSAGE_BYTES,
    RESERVED_NAMES,
    SPECTRUM_CHUNK,
    STATUSES,
    UNKNOWN,
    WRITE_LIBVER,
    create_spectra,
    decode,
    encode,
    enum_names,
    fill_value,
    h5_dtype,
    is_constant,
    mark_plots,
    now_iso,
    read_value,
    write_analysis,
    write_layout,
    write_value,
)
from labrig.store.reader import open_run_file, read_run

if TYPE_CHECKING:
    from labrig.interfaces import InstrumentIdentity, Spectrum

log = logging.getLogger(__name__)

#: rows (and events) buffered before a flush even within the interval: each buffered
#: value is a Python object, so 200 000 rows of 11 columns held ~90 MB
MAX_PENDING = 50_000
#: buffered spectra written (not flushed) at once: 4 MB of 2048-pixel spectra
#: chunk caches of the appending writer.  Rows: a writer touches each dataset's last
#: chunk only, and HDF5 2's default of 8 MiB per open dataset, over the 88 datasets of an
#: 8-channel lifetime file, grew a 1000-h run to ~870 MB (benchmarks/lifetime_memory.py).
#: Spectra keep HDF5's 8 MiB: a spilled batch of spectra goes through the cache whole
#: (a smaller cache writes part of it at once, and a filling disk then ends the run before
#: any spectrum is in the file: tests/test_fault_matrix_store.py).
ROW_CACHE_BYTES = 64 * 1024
SPECTRA_CACHE_BYTES = 8 * 1024 * 1024
SPECTRA_SPILL = 8 * SPECTRUM_CHUNK
#: bytes that must stay writable for the file to take its final status: below this the
#: run is stopped (failed) while the file can still be closed properly
CLOSE_RESERVE = 1 << 20
#: a run is not started with less than this writable at the output directory
MIN_FREE = 2 * CLOSE_RESERVE


# ------------------------------------------------------------------------ helpers
def _now() -> float:
    """Wall time of the run's start (a seam for the file-naming tests)."""
    return time.time()


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


def _to_array(values: list, dtype: np.dtype, column: str) -> np.ndarray:
    """Buffered values as a column array.  A value that does not fit the column (a
    procedure bug) becomes the fill value with a warning instead of losing the batch."""
    names = enum_names(dtype)
    if names is not None:
        return _to_codes(values, {name: code for code, name in names.items()}, dtype, column)
    if dtype.kind == "S":
        return np.asarray(
            [
                v if isinstance(v, bytes) else b"" if v is None else encode(str(v), dtype.itemsize)
                for v in values
            ],
            dtype=dtype,
        )
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        fill = fill_value(dtype)
        out = np.full(len(values), fill, dtype=dtype)
        for i, value in enumerate(values):
            try:
                out[i] = fill if value is None else value
            except (TypeError, ValueError):
                log.warning(
                    "column %s: value %r is not %s; stored as %r", column, value, dtype, fill
                )
        return out


def _to_codes(values: list, codes: dict[str, int], dtype: np.dtype, column: str) -> np.ndarray:
    """Text of an enumerated column as its codes; one outside the vocabulary is stored
    as ``UNKNOWN`` (code 0) with a warning."""
    out = np.fromiter((codes.get(v, 0) for v in values), dtype="u1", count=len(values))
    for value in {v for v, code in zip(values, out, strict=True) if not code and v is not None}:
        log.warning(
            "column %s: %r is not one of %s; stored as %r", column, value, list(codes)[1:], UNKNOWN
        )
    return out.astype(dtype)


def _append(ds: h5py.Dataset, values: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n:] = values


# -------------------------------------------------------------------------- write side
class _Buffers:
    """Rows, spectra and log events waiting for the next flush."""

    def __init__(self, groups: Mapping[str, Sequence[Column]]) -> None:
        self.names = {g: frozenset(c.name for c in cols) for g, cols in groups.items()}
        self.fill = {
            g: {c.name: fill_value(h5_dtype(c)) for c in cols if not c.constant}
            for g, cols in groups.items()
        }
        self.rows: dict[str, dict[str, list]] = {
            g: {c.name: [] for c in cols if not c.constant} for g, cols in groups.items()
        }
        #: per group, (column, its buffer's ``append``, its fill value) for every
        #: per-row column: what one row needs, looked up once (``clear`` keeps the lists)
        self.appenders = {
            g: tuple((name, values.append, self.fill[g][name]) for name, values in cols.items())
            for g, cols in self.rows.items()
        }
        #: a constant column's value for its group, to be written: {(group, column): value}
        self.constants: dict[tuple[str, str], Any] = {}
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
        self.constants.clear()
        self.pending = 0


def _open_dataset(f: h5py.File, path: str) -> h5py.Dataset:
    """``f[path]`` with the appending writer's chunk cache (opened through the low-level
    API: HDF5 fixes an open dataset's cache at its first open)."""
    parent, name = path.rsplit("/", 1)
    spectra = path.startswith("entry/spectra/")
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(521, SPECTRA_CACHE_BYTES if spectra else ROW_CACHE_BYTES, 0.75)
    return h5py.Dataset(h5py.h5d.open(f[parent].id, name.encode(), dapl))


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
        #: each group's constant columns: {column: dtype}, and the value a row gave
        self._constant_dtypes = {
            g: {c.name: h5_dtype(c) for c in cols if c.constant} for g, cols in groups.items()
        }
        self._constants: dict[str, dict[str, Any]] = {g: {} for g in groups}
        #: the column whose length is a group's row count
        self._count_column = {
            g: next(c.name for c in cols if not c.constant) for g, cols in groups.items()
        }
        self._pixels = spectrum_pixels
        self._buf = _Buffers(self._groups)
        self._lock = threading.RLock()
        self._file: h5py.File | None = None
        self._closed = False
        #: figures set but not yet in the file
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
        if all(c.constant for c in columns):
            raise ValueError("a run needs at least one column with a value per row")
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
            write_layout(
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
            row = sum(h5_dtype(c).itemsize for c in columns if not c.constant) * len(all_groups)
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
            known: dict[str, dict[str, Any]] = {}  # constant columns' stored values
            for gname in [decode(g) for g in entry.attrs["data_groups"]]:
                grp = entry[gname]
                # a writer killed mid-flush can leave one column a batch longer
                names = [decode(n) for n in grp.attrs["columns"]]
                per_row = [c for c in names if not is_constant(grp[c])]
                rows = min(grp[c].shape[0] for c in per_row)
                for c in per_row:
                    if grp[c].shape[0] > rows:
                        grp[c].resize(rows, axis=0)
                groups[gname] = [_stored_column(grp[c]) for c in names]
                for c in set(names) - set(per_row):
                    value = grp[c][()]
                    if value == value:  # NaN: no row gave it yet
                        known.setdefault(gname, {})[c] = value.item()
            for gname in groups:  # rows may come again: each is a plot again
                entry[gname].attrs["NX_class"] = "NXdata"
            previous = read_value(entry["status"])
            write_value(entry, "status", "running")
            for name in ("end_time", "abort_reason"):
                if name in entry:
                    del entry[name]
            pixels = entry["spectra"]["counts"].shape[1] if "spectra" in entry else None
        store = cls(path, groups, pixels, flush_interval_s, lock)
        store._have_wavelengths = pixels is not None
        for gname, values in known.items():
            store._constants[gname].update(values)
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
            ds = self._datasets[name] = _open_dataset(self._file, f"entry/{name}")
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
                    write_value(grp, name, value)

        self._check_open()
        if identities:
            self._structural(change)

    def prepare_spectra(self, pixels: int) -> None:
        """Create /entry/spectra for ``pixels``-long spectra now, before rows stream in
        (so live readers never see the layout change).  No-op when it exists."""
        with self._lock:
            self._check_open()
            if self._pixels is None:
                self._structural(lambda entry: create_spectra(entry, pixels))
                self._pixels = pixels

    def append_row(self, row: Mapping[str, Any], group: str | None = None) -> None:
        """One row ``{column: value}``; missing columns are stored as NaN (0, "" for
        integer and text columns)."""
        with self._lock:
            self._check_open()
            gname = group or DEFAULT_GROUP
            self._group_rows(gname)  # an unknown group raises, naming the groups there are
            names = self._buf.names[gname]
            if not row.keys() <= names:
                extra = row.keys() - names
                raise ValueError(f"unknown column(s) {sorted(extra)} for group {gname!r}")
            if self._constant_dtypes[gname]:
                self._take_constants(gname, {n: row.get(n) for n in self._constant_dtypes[gname]})
            get = row.get
            for name, append, fill in self._buf.appenders[gname]:
                append(get(name, fill))
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
                if self._constant_dtypes[gname]:
                    self._take_constants(gname, self._batch_constants(gname, rows))
                fill = self._buf.fill[gname]
                for name, values in bufs.items():
                    given = rows.get(name)
                    values.extend(given if given is not None else [fill[name]] * n)
                self._buf.pending += n
                self._maybe_flush()
            return
        for row in rows:
            self.append_row(row, group)

    def _take_constants(self, gname: str, given: Mapping[str, Any]) -> None:
        """Rows' values of the constant columns ``{column: value}``: the first is the
        group's (written at the next flush); a different one later is a procedure bug,
        refused before anything of the rows is buffered.  None or NaN: not given."""
        new = {}
        for name, value in given.items():
            if value is None or value != value:
                continue
            known = self._constants[gname].get(name)
            if known is None:
                new[name] = value
            elif value != known:
                kind = self._constant_dtypes[gname][name].type
                if kind(value) != kind(known):
                    raise ValueError(
                        f"column {name!r} is constant per data group; {gname} has "
                        f"{known!r}, a row gave {value!r}"
                    )
        for name, value in new.items():
            self._constants[gname][name] = value
            self._buf.constants[(gname, name)] = value

    def _batch_constants(self, gname: str, rows: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        """The one value each constant column has in a batch of rows (refused if two)."""
        values = {}
        for name, dtype in self._constant_dtypes[gname].items():
            given = np.asarray(rows.get(name, ()), dtype=dtype)
            given = given[given == given]  # NaN: not given
            if given.size:
                if (given != given[0]).any():
                    raise ValueError(
                        f"column {name!r} is constant per data group; rows for {gname} "
                        f"gave {sorted(set(given.tolist()))[:3]}"
                    )
                values[name] = given[0].item()
        return values

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
        """Derived figures ``{name: (value, units)}``, written at once (briefly leaving
        SWMR): a run killed later keeps every figure set before, and a live reader sees
        them (a lifetime channel's end, the J-V-L light threshold)."""
        with self._lock:
            self._check_open()
            self._analysis.setdefault(group, {}).update(figures)
            self._structural(lambda entry: write_analysis(entry, self._analysis))
            self._analysis = {}

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
                    encode(kind, LOG_KIND_BYTES),
                    encode(message, LOG_MESSAGE_BYTES),
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
            g: self._ds(f"{g}/{name}").shape[0] for g, name in self._count_column.items()
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
                if not col.constant:
                    data = _to_array(cols[col.name], h5_dtype(col), col.name)
                    _append(self._ds(f"{gname}/{col.name}"), data)
        for (gname, name), value in buf.constants.items():
            self._ds(f"{gname}/{name}")[()] = value
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
                write_value(entry, "status", status)
                write_value(entry, "end_time", now_iso())
                if reason:
                    write_value(entry, "abort_reason", reason)
                write_analysis(entry, self._analysis)  # any not written when set
                mark_plots(entry)
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


def _stored_column(ds: h5py.Dataset) -> Column:
    """The ``Column`` a stored dataset was made for (a resumed run appends as it was
    written, in whichever format)."""
    name = ds.name.rsplit("/", 1)[-1]
    names = enum_names(ds.dtype)
    if names is not None:
        levels = tuple(names[code] for code in sorted(names) if code)
        dtype = "enum"
    else:
        levels, dtype = (), "str" if ds.dtype.kind == "S" else ds.dtype.str
    return Column(
        name=name,
        units=decode(ds.attrs.get("units", "")),
        long_name=decode(ds.attrs.get("long_name", name)),
        dtype=dtype,
        levels=levels,
        constant=is_constant(ds),
    )


def _rewrite_clean(path: Path) -> None:
    """Copy a crashed writer's file (SWMR-readable only) into a clean file that replaces it."""
    tmp = path.with_name(path.name + ".resume-tmp")
    with open_run_file(path) as opened, h5py.File(tmp, "w", libver=WRITE_LIBVER) as dst:
        src = opened.file
        dst.attrs.update(dict(src.attrs))
        for name in src:
            src.copy(src[name], dst, name=name)
    os.replace(tmp, path)
