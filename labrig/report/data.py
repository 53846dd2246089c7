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

from labrig.errors import NotARunFileError, RunFileDamagedError, UserInputError
from labrig.store import (
    DEFAULT_GROUP,
    FILE_FORMAT,
    RunData,
    _decode,
    _read_value,
    apply_failure_note,
    equal_lengths,
    open_run_file,
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
    """Read ``path``; salvage what is readable from a damaged file.  Bounded in time on
    any file (``labrig.store.open_run_file``); columns always of equal length.

    Raises ``NotARunFileError`` (a ``UserInputError``: one line, exit status 2) for a
    missing file, a file that is not HDF5, or an HDF5 file that is not a labrig run."""
    path = Path(path)
    try:
        run = read_run(path)
    except NotARunFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read failure: try piece by piece
        try:
            loaded = _salvage(path)
        except UserInputError:
            raise
        except Exception as again:  # noqa: BLE001 - not even the layout is readable
            raise RunFileDamagedError(
                f"{path}: damaged, nothing readable ({type(again).__name__}: {again})"
            ) from None
        if not any(p.startswith("file truncated") for p in loaded.problems):
            loaded.problems.insert(
                0,
                f"file damaged ({type(exc).__name__}: {exc}); shown: what is readable",
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


def _salvage(path: Path) -> LoadedRun:
    """Read a damaged run file item by item, keeping every readable piece; data past the
    end of a truncated file is cut off (``_intact``), never shown as zeros."""
    problems: list[str] = []
    with open_run_file(path) as opened:
        f, size = opened.file, opened.size
        if opened.cut is not None:
            problems.append(
                f"file truncated ({opened.cut.size} of {opened.cut.end} bytes); shown: the "
                "rows wholly inside the file, items beyond its end are named as unreadable"
            )
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
            equal_lengths(cols)
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
    apply_failure_note(run)
    loaded = LoadedRun(run, salvaged=True)
    loaded.problems.extend(problems[:1] if opened.cut is not None else [])
    if run.status != "unknown":  # an unreadable status is named among ``problems``
        loaded.problems.extend(_status_problems(run))
    loaded.problems.extend(problems[1:] if opened.cut is not None else problems)
    return loaded
