"""A labrig run as event-model documents, live, for any Bluesky callback.

``DocumentEmitter(callback)`` is a run subscriber (``run_procedure(subscribers=...)``):
it turns the run's records into the documents a RunEngine would emit and calls
``callback(name, doc)`` for each (``LiveTable``, ``BestEffortCallback``, a Tiled or
suitcase writer, ``RunRouter``...).  event-model composes every document and validates
it against its schema as it is made (a stream's later events, made the same way as its
first, only have their keys checked: a J-V-L row's cost).

    start       procedure, sample, parameters ``{name: {value, units}}``, the config's
                name and SHA-256, the run file, simulated or not
    descriptor  one per data stream, made at its first row: ``primary`` for the main
                data group, the group's name for the others (lifetime ``channel_NN``),
                ``spectra`` (wavelengths and counts as arrays), ``analysis`` (the run's
                figures, one event per group at the end); units and shapes in data_keys
    event       one per row (a batch of rows: one each), per spectrum, per group's figures
    stop        exit status (finished -> success, aborted -> abort, failed -> fail) and
                the reason
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import event_model
import numpy as np

from labrig.records import (
    BenchOpened,
    Figures,
    Record,
    Row,
    Rows,
    RunEnded,
    RunStarted,
    Spectrum,
)

DocumentCallback = Callable[[str, dict], None]
EXIT_STATUS = {"finished": "success", "aborted": "abort", "failed": "fail"}
MAIN_STREAM = "primary"


_PLAIN_TYPES = frozenset({float, int, str, bool, type(None)})


def _plain(value: Any) -> Any:
    """A JSON-able value (numpy scalars and arrays, paths) as event-model wants it."""
    if type(value) in _PLAIN_TYPES:  # most of a row: no conversion, no isinstance chain
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _stream_name(group: str | None) -> str:
    """The stream of a data group's rows: ``primary`` for the main one."""
    return MAIN_STREAM if group in (None, "data") else group


def _data_key(value: Any, units: str, source: str) -> dict:
    """event-model's description of one value: dtype, shape, units."""
    array = np.asarray(value)
    if array.ndim:
        dtype = "array"
    elif array.dtype.kind == "b":
        dtype = "boolean"
    elif array.dtype.kind in "iu":
        dtype = "integer"
    elif array.dtype.kind == "f":
        dtype = "number"
    else:
        dtype = "string"
    key = {"dtype": dtype, "shape": list(array.shape), "source": source}
    if units:
        key["units"] = units
    return key


class DocumentEmitter:
    """A run subscriber emitting the run's event-model documents to ``callback``."""

    def __init__(
        self, callback: DocumentCallback, metadata: Mapping[str, Any] | None = None
    ) -> None:
        self.callback = callback
        #: more for the start document (a queued plan's user and item), under labrig's own
        self.metadata = dict(metadata or {})
        self._run: Any = None  # event_model.ComposeRunBundle of the run in progress
        self._streams: dict[str, Any] = {}  # stream name -> ComposeDescriptorBundle
        self._units: dict[str, str] = {}
        self._source = ""
        self._instruments: dict[str, str] = {}
        self._figures: dict[str | None, dict[str, tuple[Any, str]]] = {}

    def __call__(self, record: Record) -> None:
        if isinstance(record, RunStarted):
            self._start(record)
        elif self._run is None:
            return  # a subscriber added mid-run: nothing to hang the records on
        elif isinstance(record, BenchOpened):
            self._instruments = {
                role: f"{driver} {ident.model} #{ident.serial} @ {resource}"
                for role, (ident, resource, driver) in record.identities.items()
            }
        elif isinstance(record, Row):
            self._event(_stream_name(record.group), record.values, self._units)
        elif isinstance(record, Rows):
            self._events(record.group, record.columns)
        elif isinstance(record, Spectrum):
            self._spectrum(record)
        elif isinstance(record, Figures):
            self._figures.setdefault(record.group, {}).update(record.figures)
        elif isinstance(record, RunEnded):
            self._stop(record)

    def _emit(self, name: str, doc: Mapping) -> None:
        self.callback(name, dict(doc))

    # ------------------------------------------------------------------ documents
    def _start(self, record: RunStarted) -> None:
        self._units = {c.name: c.units for c in record.columns}
        self._source = f"labrig:{record.procedure}"
        self._streams, self._figures, self._instruments = {}, {}, {}
        self._run = event_model.compose_run(
            metadata={
                **self.metadata,
                "plan_name": f"labrig {record.procedure}",
                "procedure": record.procedure,
                "sample": record.sample,
                "parameters": {
                    name: {"value": _plain(value), "units": units}
                    for name, (value, units) in record.parameters.items()
                },
                "config_name": record.config_name,
                "config_sha256": record.config_sha256,
                "run_file": str(record.path),
                "simulated": record.simulated,
                "resumed": record.resumed,
            }
        )
        self._emit("start", self._run.start_doc)

    def _stream(self, name: str, sample: Mapping[str, Any], units: Mapping[str, str]) -> Any:
        """The descriptor bundle of stream ``name``, composed (and emitted) at its first
        event from that event's values."""
        if name not in self._streams:
            keys = {
                k: _data_key(v, units.get(k, ""), f"{self._source}/{name}/{k}")
                for k, v in sample.items()
            }
            bundle = self._run.compose_descriptor(
                name=name,
                data_keys=keys,
                configuration={
                    "bench": {
                        "data": dict(self._instruments),
                        "timestamps": dict.fromkeys(self._instruments, time.time()),
                        "data_keys": {
                            r: {"dtype": "string", "shape": [], "source": f"labrig:{r}"}
                            for r in self._instruments
                        },
                    }
                },
                object_keys={"bench": list(keys)},
            )
            self._emit("descriptor", bundle.descriptor_doc)
            self._streams[name] = bundle
        return self._streams[name]

    def _event(self, stream: str, data: Mapping[str, Any], units: Mapping[str, str]) -> None:
        data = {k: _plain(v) for k, v in data.items()}
        fresh = stream not in self._streams
        bundle = self._stream(stream, data, units)
        if not fresh and data.keys() != bundle.descriptor_doc["data_keys"].keys():
            raise event_model.EventModelValidationError(
                f"stream {stream}: event keys {sorted(data)} are not its descriptor's"
            )
        now = time.time()
        # a stream's first event is checked against the schema; the rest are made the
        # same way from rows of the same columns, so their keys are what is left to check
        event = bundle.compose_event(data=data, timestamps=dict.fromkeys(data, now), validate=fresh)
        self.callback("event", event)  # made here, shared with no one: no copy

    def _events(self, group: str | None, columns: Mapping[str, Any]) -> None:
        stream = _stream_name(group)
        names = list(columns)
        for values in zip(*(columns[n] for n in names), strict=True):
            self._event(stream, dict(zip(names, values, strict=True)), self._units)

    def _spectrum(self, record: Spectrum) -> None:
        spectrum = record.spectrum
        data = {
            "step": record.step,
            "wavelength_nm": np.asarray(spectrum.wavelength_nm, dtype=float),
            "counts": np.asarray(spectrum.counts, dtype=float),
            "integration_time": float(spectrum.integration_time_s),
            "saturated": bool(spectrum.saturated),
        }
        units = {"wavelength_nm": "nm", "counts": "counts", "integration_time": "s"}
        self._event("spectra", data, units)

    def _stop(self, record: RunEnded) -> None:
        for group, figures in self._figures.items():
            stream = "analysis" if group is None else f"analysis_{group}"
            values = {name: value for name, (value, _) in figures.items()}
            self._event(stream, values, {name: units for name, (_, units) in figures.items()})
        reason = record.reason or ""
        if record.unsafe:
            reason = f"{reason} (unconfirmed off: {'; '.join(record.unsafe)})".strip()
        stop = self._run.compose_stop(exit_status=EXIT_STATUS[record.status], reason=reason)
        self._emit("stop", stop)
        self._run = None


class JsonLinesWriter:
    """A document callback writing ``[name, doc]`` per line (suitcase-jsonl's layout),
    flushed as it goes so another program can follow the run (``labrig run
    --documents FILE``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: TextIO = self.path.open("w", encoding="utf-8")

    def __call__(self, name: str, doc: dict) -> None:
        self._file.write(json.dumps([name, doc]) + "\n")
        self._file.flush()
        if name == "stop":
            self._file.close()
