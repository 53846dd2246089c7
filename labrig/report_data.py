"""Run files as the report, watch and export commands see them: whatever is readable,
and what is wrong with the file in plain words.

``labrig.store.read_run`` reads a file whole or not at all.  A run file cut short (a
disk filled up, a copy interrupted, a crash at the wrong instant) can still hold every
row that reached the disk, so when ``read_run`` fails for any reason other than "this is
not a labrig run", the file is read again piece by piece here and each piece that
cannot be read is named in ``problems``.  A file whose status is still ``running`` is
either being written right now or was left by a writer that died; both are reported
from what exists, and ``problems`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labrig.errors import NotARunFileError
from labrig.store import (
    DEFAULT_GROUP,
    FILE_FORMAT,
    RunData,
    _decode,
    _read_value,
    read_analysis,
    read_column,
    read_log,
    read_parameters,
    read_run,
    read_spectra,
)


@dataclass
class LoadedRun:
    """A run file's content plus the reasons it may be incomplete."""

    run: RunData
    problems: list[str] = field(default_factory=list)
    salvaged: bool = False

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def complete(self) -> bool:
        return not self.problems

    def table(self, group: str = DEFAULT_GROUP) -> dict[str, np.ndarray]:
        """Columns of ``group`` cut to a common length (a live file's columns can differ
        by the rows of one flush for an instant)."""
        cols = self.run.columns.get(group, {})
        if not cols:
            return {}
        n = min(len(data) for data, _, _ in cols.values())
        return {name: data[:n] for name, (data, _, _) in cols.items()}

    def units(self, name: str, group: str = DEFAULT_GROUP) -> str:
        cols = self.run.columns.get(group, {})
        return cols[name][1] if name in cols else ""

    def figures(self, group: str | None = None) -> dict[str, tuple[Any, str]]:
        return self.run.analysis.get(group, {})

    def rows(self, group: str = DEFAULT_GROUP) -> int:
        table = self.table(group)
        return len(next(iter(table.values()))) if table else 0


def load_run(path: Path | str) -> LoadedRun:
    """Read ``path``; salvage what is readable from a damaged file.

    Raises ``NotARunFileError`` (a ``UserInputError``: one line, exit status 2) for a
    missing file, a file that is not HDF5, or an HDF5 file that is not a labrig run."""
    path = Path(path)
    cut = _truncation(path)
    if cut is not None:
        size, stored = cut
        loaded = _salvage_truncated(path, size, stored)
        loaded.problems.insert(
            0,
            f"file truncated ({size} of {stored} bytes); shown: the rows wholly inside the "
            "file, items beyond its end are named as unreadable",
        )
        return loaded
    try:
        run = read_run(path)
    except NotARunFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read failure: try piece by piece
        loaded = _salvage(path)
        loaded.problems.insert(
            0, f"file damaged or truncated ({type(exc).__name__}: {exc}); shown: what is readable"
        )
        return loaded
    loaded = LoadedRun(run)
    loaded.problems.extend(_status_problems(run))
    return loaded


def _status_problems(run: RunData) -> list[str]:
    if run.status == "running":
        return [
            "run in progress (status 'running': still being written, or its writer stopped "
            "without closing the file); shown: the data written so far"
        ]
    if run.status in ("aborted", "failed"):
        reason = f": {run.abort_reason}" if run.abort_reason else ""
        return [f"run {run.status}{reason}"]
    if run.status not in ("finished",):
        return [f"run status {run.status!r} unknown"]
    return []


# ----------------------------------------------------------------------------- salvage
def _truncation(path: Path) -> tuple[int, int] | None:
    """(size, end-of-file address the superblock records) when the file is shorter than
    HDF5 wrote it, else None.  Checked before anything else: an SWMR read (the only
    kind a crashed writer's file allows) of data beyond the end retries for minutes."""
    try:
        with path.open("rb") as f:
            head = f.read(48)
        size = path.stat().st_size
    except OSError:
        return None
    # superblock version 2/3 (what libver="latest" writes): signature, version, size of
    # offsets, size of lengths, flags, then base, extension and end-of-file addresses
    if len(head) < 48 or head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3):
        return None
    width = head[9]
    if width not in (4, 8):
        return None
    start = 12 + 2 * width
    stored = int.from_bytes(head[start : start + width], "little")
    return (size, stored) if size < stored else None


def _salvage_truncated(path: Path, size: int, stored: int) -> LoadedRun:
    """Read a truncated file through a copy padded with zeros to its recorded length:
    HDF5 then opens it normally (no SWMR retries), metadata in the lost part fails its
    checksum at once, and data chunks that lie past ``size`` are cut off."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="labrig-salvage-") as tmp:
        padded = Path(tmp) / path.name
        shutil.copyfile(path, padded)
        with padded.open("r+b") as f:
            f.truncate(stored)
        try:
            handle = h5py.File(padded, "r")
        except OSError as exc:
            raise NotARunFileError(
                f"{path}: truncated ({size} of {stored} bytes) and not readable ({exc})"
            ) from None
        loaded = _salvage(path, handle, size)
    return loaded


def _intact(ds: h5py.Dataset, size: int | None) -> Any:
    """``ds``'s values, cut before the first chunk that reaches past ``size`` bytes."""
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


def _salvage(path: Path, handle: h5py.File | None = None, size: int | None = None) -> LoadedRun:
    """Read a damaged run file item by item, keeping every readable piece (``handle``
    and ``size``: an already opened padded copy of a truncated file, and its real size)."""
    problems: list[str] = []
    f = handle
    if f is None:
        try:
            f = h5py.File(path, "r", libver="latest", swmr=True)
        except OSError:
            try:
                f = h5py.File(path, "r")
            except OSError as exc:
                raise NotARunFileError(
                    f"{path}: not an HDF5 file labrig can open ({exc})"
                ) from None
    with f:
        fmt = _decode(f.attrs.get("file_format", b""))
        if fmt != FILE_FORMAT or "entry" not in f:
            raise NotARunFileError(
                f"{path}: not a labrig run file (file_format {fmt or 'missing'!r}, "
                f"expected {FILE_FORMAT!r})"
            )
        entry = f["entry"]

        def intact(ds: h5py.Dataset) -> Any:
            return _intact(ds, size)

        def get(what: str, read, default):
            try:
                return read()
            except Exception:  # noqa: BLE001 - the damaged part is named, the rest kept
                problems.append(f"{what} unreadable")
                return default

        def text(name: str, default: Any = "") -> Any:
            return get(
                name, lambda: _read_value(entry[name]) if name in entry else default, default
            )

        groups = get(
            "data group list",
            lambda: [_decode(g) for g in entry.attrs.get("data_groups", [DEFAULT_GROUP])],
            [DEFAULT_GROUP],
        )
        columns: dict[str, dict[str, tuple[np.ndarray, str, str]]] = {}
        for gname in groups:
            grp = get(f"data group {gname}", lambda g=gname: entry[g], None)
            if grp is None:
                continue
            order = get(
                f"{gname} column list",
                lambda g=grp: [_decode(c) for c in g.attrs.get("columns", list(g))],
                [],
            )
            cols = {}
            for cname in order:
                item = get(
                    f"column {gname}/{cname}",
                    lambda g=grp, c=cname: read_column(g[c], intact),
                    None,
                )
                if item is not None:
                    cols[cname] = item
            longest = max((len(data) for data, _, _ in cols.values()), default=0)
            for cname in [c for c, (data, _, _) in cols.items() if longest and not len(data)]:
                del cols[cname]  # wholly past the end of a truncated file
                problems.append(f"column {gname}/{cname} lost")
            columns[gname] = cols

        parameters = get(
            "parameters",
            lambda: read_parameters(entry),
            {},
        )
        analysis = get("analysis", lambda: read_analysis(entry), {})
        spectra = get("spectra", lambda: read_spectra(entry, intact), None)
        log = get("log", lambda: read_log(entry), [])
        status = text("status", "unknown")
        run = RunData(
            path=path,
            procedure=text("procedure", "unknown"),
            status=status if status else "unknown",
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
            log=log,
            instruments={},
            config_text=text("config"),
            abort_reason=text("abort_reason", None),
            signal=get("signal", lambda: _decode(entry[DEFAULT_GROUP].attrs.get("signal", "")), ""),
            axis=get("axis", lambda: _decode(entry[DEFAULT_GROUP].attrs.get("axes", "")), ""),
            groups=groups,
        )
    loaded = LoadedRun(run, salvaged=True)
    if run.status != "unknown":  # an unreadable status is named among ``problems``
        loaded.problems.extend(_status_problems(run))
    loaded.problems.extend(problems)
    return loaded
