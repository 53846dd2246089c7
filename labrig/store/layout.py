"""What a run file looks like: names, groups, attributes, dtypes and the format version.

Layout (README "The run file")::

    /                 NXroot: default=entry, file_format, labrig_version
    /entry            NXentry: procedure, status, start_time, end_time, sample, operator,
                      simulated, abort_reason (when there is one)
    /entry/parameters every procedure parameter, attr units
    /entry/config     the bench config text exactly as used
    /entry/instruments/<role>   idn, manufacturer, model, serial_number, firmware, resource, driver
    /entry/data       NXdata: one resizable 1-D dataset per column (attrs units, long_name);
                      a constant column (``Column.constant``) is one scalar dataset
    /entry/<group>    extra NXdata groups with the same columns (lifetime channels)
    /entry/spectra    wavelength_nm, counts (steps x pixels), step, integration_time_s, ...
    /entry/analysis   derived figures, attr units (sub-group per data group)
    /entry/log        time, level, kind, message: one row per event

The writer (``labrig.store.writer``) creates it and the reader (``labrig.store.reader``)
reads it; both take every name and dtype from here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labrig import __version__ as LABRIG_VERSION
from labrig.procedure import Column

#: the format written: 3 stores a column that is constant per data group (a lifetime
#: channel's set current and photodiode dark current) once, as a scalar dataset of the
#: group, instead of in every row (a lifetime sample 49 -> 41 bytes)
FILE_FORMAT = "labrig-run/3"
#: format 2 names columns alike in every procedure (``voltage``, ``current``,
#: ``current_density``, ``power_density``, ``compliance``; units in attributes), stores
#: enumerated text as one-byte HDF5 enum codes, float32 where a procedure's columns say
#: so, and figures when they are set; every column has a value per row
V2_FORMAT = "labrig-run/2"
#: the first format (solar-jv and sclc columns ``V``/``I``/``J``/``P``, spectrum's
#: ``in_compliance``, lifetime status as 64-byte text, rows of 8-byte floats)
V1_FORMAT = "labrig-run/1"
#: the formats the reader opens (older ones through ``labrig.store.upgrade``)
READABLE_FORMATS = (FILE_FORMAT, V2_FORMAT, V1_FORMAT)
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
LOG_CHUNK = 64
LOG_KIND_BYTES = 64
LOG_MESSAGE_BYTES = 1024
STRING_COLUMN_BYTES = 64
STR = h5py.string_dtype()
#: the code 0 of an enumerated column: no value, or one outside its vocabulary
UNKNOWN = "?"


def now_iso(timestamp: float | None = None) -> str:
    """ISO 8601 local time with its zone offset (e.g. ``2026-11-21T05:40:02+00:00``)."""
    moment = _dt.datetime.now().astimezone() if timestamp is None else None
    if moment is None:
        moment = _dt.datetime.fromtimestamp(timestamp).astimezone()
    return moment.isoformat(timespec="milliseconds")


def h5_dtype(column: Column) -> Any:
    """The stored dtype of ``column``: an enum of its ``levels`` (code 0, ``UNKNOWN``:
    none given or not one of them), fixed-length UTF-8 text, or numpy's."""
    if column.levels:
        names = (UNKNOWN, *column.levels)
        return h5py.enum_dtype({name: code for code, name in enumerate(names)}, basetype="u1")
    if column.dtype in ("str", "S", "U"):
        return np.dtype(f"S{STRING_COLUMN_BYTES}")
    return np.dtype(column.dtype)


def enum_names(dtype: np.dtype) -> dict[int, str] | None:
    """``{code: name}`` of an enumerated column's dtype, None for any other."""
    mapping = h5py.check_enum_dtype(dtype)
    return None if mapping is None else {int(code): name for name, code in mapping.items()}


def fill_value(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "S":
        return b""
    if dtype.kind == "b":
        return False
    return 0


def encode(text: str, limit: int) -> bytes:
    data = str(text).encode("utf-8")
    if len(data) <= limit:
        return data
    return data[: limit - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."


def decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O"):
        return np.array([decode(v) for v in value.ravel()], dtype=object).reshape(value.shape)
    return value


def write_value(group: h5py.Group, name: str, value: Any, units: str = "") -> None:
    """A scalar, string, bool, sequence or None as a dataset with a units attr."""
    if name in group:
        del group[name]
    if value is None:
        ds = group.create_dataset(name, data=h5py.Empty("f8"))
    elif isinstance(value, str):
        ds = group.create_dataset(name, data=value, dtype=STR)
    elif isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
        ds = group.create_dataset(name, data=[str(v) for v in value], dtype=STR)
    else:
        try:
            ds = group.create_dataset(name, data=np.asarray(value))
        except (TypeError, ValueError):  # a dict, a ragged list...: keep it readable as text
            ds = group.create_dataset(name, data=repr(value), dtype=STR)
    if units:
        ds.attrs["units"] = units


def column_attrs(ds: h5py.Dataset, units: str, long_name: str) -> None:
    """``units`` (only when there are any: an empty string is not a unit) and a
    ``long_name`` that carries them, so every viewer labels its axes with units."""
    if units:
        ds.attrs["units"] = units
    ds.attrs["long_name"] = f"{long_name} ({units})" if units else long_name


def plain_long_name(long_name: str, units: str) -> str:
    """``long_name`` without the ``" (units)"`` the writer appends (files of any age)."""
    suffix = f" ({units})"
    return long_name[: -len(suffix)] if units and long_name.endswith(suffix) else long_name


def write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    """A nested mapping whose leaves are ``(value, units)`` as NXcollection groups and
    datasets with units."""
    group.attrs["NX_class"] = "NXcollection"
    for name, node in tree.items():
        if isinstance(node, Mapping):
            write_tree(group.create_group(name), node)
        else:
            value, units = node
            write_value(group, name, value, units)


def read_tree(group: h5py.Group) -> dict[str, Any]:
    """``write_tree``'s mapping back: leaves ``(value, units)``."""
    return {
        name: read_tree(obj)
        if isinstance(obj, h5py.Group)
        else (read_value(obj), decode(obj.attrs.get("units", "")))
        for name, obj in group.items()
    }


def read_value(ds: h5py.Dataset) -> Any:
    if ds.shape is None:  # h5py.Empty
        return None
    if ds.dtype.kind in ("O", "S") and ds.shape == ():
        return decode(ds[()])
    value = ds[()]
    if isinstance(value, np.ndarray):
        return decode(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def resizable(
    group: h5py.Group, name: str, dtype: Any, chunk: int, width: int | None = None
) -> h5py.Dataset:
    """A dataset that grows along its first axis, uncompressed: an SWMR writer never
    reuses the space a rewritten chunk leaves, and every flush rewrites the last,
    partial chunk, which compressed is a new chunk each time (measured: 9 kB a lifetime
    sample at one row a flush, against 49 bytes raw; benchmarks/README.md)."""
    shape, maxshape, chunks = (0,), (None,), (chunk,)
    if width is not None:
        shape, maxshape, chunks = (0, width), (None, width), (chunk, width)
    return group.create_dataset(name, shape=shape, maxshape=maxshape, chunks=chunks, dtype=dtype)


def constant_column(group: h5py.Group, column: Column) -> h5py.Dataset:
    """The scalar dataset of a column that is constant per data group: the fill value
    until the writer stores the group's value with its first row."""
    dtype = h5_dtype(column)
    if dtype.kind not in "fiu" or h5py.check_enum_dtype(dtype) is not None:
        raise ValueError(f"constant column {column.name!r} must be numeric, not {column.dtype}")
    return group.create_dataset(column.name, shape=(), dtype=dtype, fillvalue=fill_value(dtype))


def is_constant(ds: h5py.Dataset) -> bool:
    """Whether a stored column is a per-group constant (format 3 on): a scalar dataset."""
    return ds.shape == ()


def row_count(group: h5py.Group) -> int:
    """Rows a data group holds: the length of its first per-row column (0: none)."""
    for name in [decode(c) for c in group.attrs.get("columns", [])]:
        if name in group and not is_constant(group[name]):
            return group[name].shape[0]
    return 0


def write_layout(
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
            write_value(entry, name, value)
        entry["simulated"] = bool(simulated)
        params = entry.create_group("parameters")
        params.attrs["NX_class"] = "NXcollection"
        for name, (value, units) in parameters.items():
            write_value(params, name, value, units)
            if name in requested_parameters:
                params[name].attrs["requested"] = requested_parameters[name]
        write_tree(entry.create_group("resolved_config"), resolved_config)
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
                if col.constant:
                    ds = constant_column(grp, col)
                else:
                    ds = resizable(grp, col.name, h5_dtype(col), ROW_CHUNK)
                column_attrs(ds, col.units, col.long_name)
        lg = entry.create_group("log")
        lg.attrs["NX_class"] = "NXcollection"
        column_attrs(
            resizable(lg, "time", "f8", LOG_CHUNK),
            "s",
            "time of the event, seconds since the Unix epoch",
        )
        column_attrs(resizable(lg, "level", "i4", LOG_CHUNK), "", "python logging level")
        resizable(lg, "kind", f"S{LOG_KIND_BYTES}", LOG_CHUNK)
        resizable(lg, "message", f"S{LOG_MESSAGE_BYTES}", LOG_CHUNK)
        if spectrum_pixels:
            create_spectra(entry, spectrum_pixels)


def write_analysis(
    entry: h5py.Group, analysis: Mapping[str | None, Mapping[str, tuple[Any, str]]]
) -> None:
    """Figures ``{group: {name: (value, units)}}`` (group None: the run's own) into
    /entry/analysis, a sub-group per data group."""
    if not analysis:
        return
    an = entry.require_group("analysis")
    an.attrs["NX_class"] = "NXcollection"
    for group, figures in analysis.items():
        target = an if group is None else an.require_group(group)
        target.attrs["NX_class"] = "NXcollection"
        for name, (value, units) in figures.items():
            write_value(target, name, value, units)


def mark_plots(entry: h5py.Group) -> None:
    """At close: a data group that received no rows is no plot (NXcollection, so no
    viewer draws an empty NXdata), and the entry's default plot is a group with data."""
    groups = [decode(g) for g in entry.attrs.get("data_groups", [DEFAULT_GROUP])]
    filled = []
    for gname in groups:
        grp = entry[gname]
        rows = row_count(grp)
        grp.attrs["NX_class"] = "NXdata" if rows else "NXcollection"
        if rows:
            filled.append(gname)
    if "spectra" in entry:
        spectra = entry["spectra"].attrs
        spectra["NX_class"] = "NXdata" if entry["spectra"]["counts"].shape[0] else "NXcollection"
        if spectra["NX_class"] == "NXdata":
            filled.append("spectra")
    if filled and decode(entry.attrs.get("default", DEFAULT_GROUP)) not in filled:
        entry.attrs["default"] = filled[0]


def create_spectra(entry: h5py.Group, pixels: int) -> None:
    sp = entry.create_group("spectra")
    sp.attrs.update(NX_class="NXdata", signal="counts", axes=[".", "wavelength_nm"])
    sp.attrs["wavelength_nm_indices"] = 1
    wl = sp.create_dataset("wavelength_nm", shape=(pixels,), dtype="f8", fillvalue=np.nan)
    column_attrs(wl, "nm", "wavelength")
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
        column_attrs(resizable(sp, name, dtype, chunk, width), units, long_name)
    sp["counts"].attrs["interpretation"] = "spectrum"  # viewers: a curve per row, no image
