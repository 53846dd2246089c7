"""The web view's one way to the runs: a Tiled client of the lab catalogue.

A run is a catalogue node: its searchable metadata (``labrig.catalog.metadata``) and its
children (``labrig.catalog.parts``: per data group its columns as arrays, spectra as a
2-D array).
This module turns a node back into the ``LoadedRun`` that labrig's readers and figure
helpers take, so the web view draws from exactly what the catalogue serves and never
opens a file.  Searching is Tiled's own queries on that metadata.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labrig.catalog.metadata import UNREADABLE
from labrig.store import DEFAULT_GROUP, LoadedRun, RunData, SpectraData, layout

#: runs on one page of the list
PAGE_SIZE = 50
#: arrays read from the catalogue at once (a lifetime run: 8 channels x 4 columns)
READERS = 8
#: the children of a run's node that are not data groups
SPECTRA, WAVELENGTH, SPECTRUM_STEP = "spectra", "wavelength_nm", "spectrum_step"
#: a figure name a threshold filter may use (a metadata key, never a path or an expression)
FIGURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: what the run list filters on: a run's status, or the catalogue's for a file it cannot read
STATUSES = (*layout.STATUSES, UNREADABLE)


class BadRequest(ValueError):
    """A request the view refuses: one line saying what is wrong and what is allowed."""


class RunNotFound(LookupError):
    """The catalogue has no run of that key."""


@dataclass(frozen=True)
class Filters:
    """The run list's filters, checked; empty fields filter nothing."""

    procedure: str = ""
    status: str = ""
    sample: str = ""
    figure: str = ""
    above: float | None = None
    search: str = ""
    page: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        """From a query string; a value the list cannot filter on is a ``BadRequest``."""
        status = params.get("status", "").strip()
        if status and status not in STATUSES:
            raise BadRequest(f"status {status!r} is not one of {', '.join(STATUSES)}")
        figure = params.get("figure", "").strip()
        if figure and not FIGURE_NAME.match(figure):
            raise BadRequest(f"figure {figure!r}: a figure name is letters, digits and _")
        above_text = params.get("above", "").strip()
        above = None
        if above_text:
            try:
                above = float(above_text)
            except ValueError:
                raise BadRequest(f"above {above_text!r} is not a number") from None
            if not math.isfinite(above):
                raise BadRequest(f"above {above_text!r} is not a finite number")
            if not figure:
                raise BadRequest("above needs a figure to compare (e.g. figure=peak_eqe)")
        try:
            page = int(params.get("page", "0") or 0)
        except ValueError:
            raise BadRequest(f"page {params.get('page')!r} is not a whole number") from None
        if page < 0:
            raise BadRequest("page must be 0 or more")
        return cls(
            procedure=params.get("procedure", "").strip()[:64],
            status=status,
            sample=params.get("sample", "").strip()[:128],
            figure=figure,
            above=above,
            search=params.get("search", "").strip()[:512],
            page=page,
        )

    def text(self) -> str:
        """The filters as one ``labrig catalog search`` text (the free search first)."""
        terms = [self.search] if self.search else []
        for name, op, value in (
            ("procedure", "=", self.procedure),
            ("status", "=", self.status),
            ("sample", "~", self.sample),
        ):
            if value:
                terms.append(f"{name}{op}{shlex.quote(value)}")
        if self.figure and self.above is not None:
            terms.append(f"{self.figure}>{self.above!r}")
        return " ".join(terms)

    def queries(self) -> list[Any]:
        """Tiled queries on the catalogue's metadata, made by the catalogue's own search
        syntax (``labrig.catalog.query``), so the page and ``labrig catalog search``
        find the same runs."""
        from labrig.catalog.query import parse

        text = self.text()
        return parse(text) if text else []


@dataclass(frozen=True)
class RunRow:
    """One line of the run list."""

    key: str
    procedure: str
    status: str
    sample: str
    operator: str
    start_time: str
    figures: list[tuple[str, Any, str]]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunPage:
    rows: list[RunRow]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PAGE_SIZE))


def headline(metadata: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """The run's headline figures as ``(name, value, units)``, from the catalogue's
    metadata: the ones ``labrig run`` prints (its measurement's registry keys)."""
    from labrig import registry
    from labrig.headline import shown_names

    entry = registry.find_measurement(str(metadata.get("procedure", "")))
    units = metadata.get("units") or {}
    figures = {
        name: (value, units.get(name, ""))
        for name, value in (metadata.get("figures") or {}).items()
        if not isinstance(value, Mapping)  # a data group's figures
    }
    names = shown_names(figures, entry.headline if entry is not None else ())
    return [(name, *figures[name]) for name in names]


class Catalogue:
    """The runs of one Tiled catalogue (a client of its root container)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pool = ThreadPoolExecutor(READERS, thread_name_prefix="catalogue-read")

    def runs(self, filters: Filters) -> RunPage:
        """One page of the runs that match, newest first."""
        node = self.client
        for query in filters.queries():
            node = node.search(query)
        node = node.sort(("start_time", -1))
        total = len(node)
        start = filters.page * PAGE_SIZE
        rows = [_row(key, value.metadata) for key, value in node.items()[start : start + PAGE_SIZE]]
        return RunPage(rows, total, filters.page)

    def node(self, key: str) -> Any:
        """The run's node; ``RunNotFound`` when the catalogue has no such run."""
        if not key or any(part in ("", ".", "..") for part in key.split("/")):
            raise RunNotFound(key)
        try:
            return self.client[key]
        except KeyError:
            raise RunNotFound(key) from None

    def load(
        self, key: str, choose: Callable[[str], tuple[Collection[str] | None, bool]]
    ) -> LoadedRun:
        """The run as labrig's readers see it, read through the catalogue: of its data,
        what ``choose(procedure)`` names (the columns, None for all; the spectra?)."""
        node = self.node(key)
        columns, spectra = choose(str(node.metadata.get("procedure", "")))
        return loaded_from_node(key, node, self.pool, columns, spectra)

    def running(self, procedure: str) -> list[str]:
        """Keys of the runs of ``procedure`` still being written, newest first."""
        from tiled.queries import Eq

        node = self.client.search(Eq("procedure", procedure)).search(Eq("status", "running"))
        return list(node.sort(("start_time", -1)).keys())


def _row(key: str, metadata: Mapping[str, Any]) -> RunRow:
    return RunRow(
        key=key,
        procedure=str(metadata.get("procedure", "")),
        status=str(metadata.get("status", "")),
        sample=str(metadata.get("sample", "")),
        operator=str(metadata.get("operator", "")),
        start_time=str(metadata.get("start_time", "")),
        figures=headline(metadata),
        problems=[str(p) for p in metadata.get("problems") or ()],
    )


def loaded_from_node(
    key: str,
    node: Any,
    pool: Executor,
    columns: Collection[str] | None = None,
    spectra: bool = True,
) -> LoadedRun:
    """A ``LoadedRun`` from a run's catalogue node: what the run is and its figures from
    the metadata; of its data only ``columns`` (None: all) of each data group and, if
    ``spectra``, the spectra, each array read in ``pool`` (one request an array: Tiled
    serves a group's columns as arrays of their own).  A column a live run grew between
    two reads is cut to the group's shortest, as the store's reader cuts a live file."""
    md = node.metadata
    groups = [str(g) for g in md.get("groups") or ()]
    wanted = columns is None or bool(columns)
    children = dict(node.items()) if wanted or spectra else {}
    listed = [g for g in groups if g in children] if wanted else []
    group_items = dict(
        zip(listed, pool.map(lambda g: dict(children[g].items()), listed), strict=True)
    )
    reads = {
        (group, name): pool.submit(_read, array)
        for group, items in group_items.items()
        for name, array in items.items()
        if columns is None or name in columns
    }
    parts = (SPECTRA, WAVELENGTH, SPECTRUM_STEP)
    spectra_reads = (
        {part: pool.submit(_read, children[part]) for part in parts if part in children}
        if spectra
        else {}
    )
    data: dict[str, dict[str, tuple[np.ndarray, str, str]]] = {}
    for (group, name), read in reads.items():
        meta = group_items[group][name].metadata
        data.setdefault(group, {})[name] = (
            _column(read.result()),
            str(meta.get("units", "")),
            str(meta.get("long_name", name)),
        )
    for group, cols in data.items():
        rows = min(len(values) for values, _, _ in cols.values())
        data[group] = {n: (v[:rows], u, ln) for n, (v, u, ln) in cols.items()}
    run = RunData(
        path=Path(str(md.get("file") or key)),
        procedure=str(md.get("procedure", "")),
        status=str(md.get("status", "")),
        start_time=str(md.get("start_time", "")),
        end_time=str(md.get("end_time") or "") or None,
        sample=str(md.get("sample", "")),
        operator=str(md.get("operator", "")),
        simulated=bool(md.get("simulated", False)),
        labrig_version=str(md.get("labrig_version", "")),
        parameters={k: (v, "") for k, v in (md.get("parameters") or {}).items()},
        columns=data,
        analysis=analysis_from_metadata(md),
        spectra=_spectra({k: v.result() for k, v in spectra_reads.items()}),
        log=[],
        instruments={},
        config_text="",
        abort_reason=str(md.get("reason") or "") or None,
        groups=groups or [DEFAULT_GROUP],
    )
    return LoadedRun(run, problems=[str(p) for p in md.get("problems") or ()])


def _read(array: Any) -> np.ndarray:
    """The rows the catalogue listed: a live run's array grows between its listing and
    its read, and Tiled refuses a read whose shape is not the one listed, so ask for
    the listed rows (what the rest of the run was read with)."""
    return array[: array.shape[0]] if array.shape else array.read()


def _spectra(parts: Mapping[str, Any]) -> SpectraData | None:
    """The spectra as the store's reader gives them (what the catalogue serves of them:
    counts, wavelengths, the data row of each)."""
    if SPECTRA not in parts or WAVELENGTH not in parts:
        return None
    counts = np.asarray(parts[SPECTRA], float)
    n = len(counts)
    step = np.asarray(parts.get(SPECTRUM_STEP, np.arange(n)))
    none = np.zeros(0)
    return SpectraData(
        wavelength_nm=np.asarray(parts[WAVELENGTH], float),
        counts=counts,
        step=step,
        integration_time_s=none,
        scans_averaged=none,
        saturated=np.zeros(n, bool),
        dark_subtracted=np.zeros(n, bool),
        dark=np.zeros((0, counts.shape[1] if counts.ndim == 2 else 0)),
        dark_step=none,
    )


def analysis_from_metadata(md: Mapping[str, Any]) -> dict[str | None, dict[str, tuple[Any, str]]]:
    """The store's ``analysis`` shape (``{group or None: {name: (value, units)}}``) from
    the metadata's ``figures``/``units`` (a group's figures nested under its name)."""
    figures = md.get("figures") or {}
    units = md.get("units") or {}
    analysis: dict[str | None, dict[str, tuple[Any, str]]] = {None: {}}
    for name, value in figures.items():
        if isinstance(value, Mapping):
            group_units = units.get(name) or {}
            analysis[name] = {k: (_figure(v), group_units.get(k, "")) for k, v in value.items()}
        else:
            analysis[None][name] = (_figure(value), units.get(name, ""))
    return analysis


def _figure(value: Any) -> Any:
    """JSON's None back to NaN (the catalogue stores an undetermined figure as null)."""
    return float("nan") if value is None else value


def _column(values: Any) -> np.ndarray:
    """An array as labrig's reader gives a column: text as Python strings."""
    values = np.asarray(values)
    return values.astype(object) if values.dtype.kind in "OUS" else values
