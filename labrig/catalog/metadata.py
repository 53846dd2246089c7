"""A run's searchable metadata: the one place that says what the catalogue knows about a
run, whether the server reads the file itself or a bench publishes it.

Plain JSON (no NaN, no numpy), built from the store's one reader (``load_run``), so a
run served from a directory and the same run published from a bench carry the same
metadata and answer the same searches.  Figures keep their units beside them:
``figures.peak_eqe`` is searchable as a number, ``units.peak_eqe`` says it is ``%``; a
data group's own figures (a lifetime channel's T50) sit under the group's name,
``figures.channel_01.T50``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from labrig.store import LoadedRun

#: the plain fields a search may name directly (``procedure=jvl``); anything else is a figure
FIELDS = (
    "procedure",
    "status",
    "sample",
    "operator",
    "start_time",
    "end_time",
    "bench",
    "device_kind",
    "simulated",
    "file",
    "problems",
    "reason",
    "labrig_version",
    "file_format",
    #: "directory" (a file of the served directory) or "published" (sent by a bench)
    "origin",
)

#: the status of a file the catalogue lists but cannot read as a run
UNREADABLE = "unreadable"


def plain(value: Any) -> Any:
    """``value`` as JSON: numpy scalars and arrays as Python numbers and lists; NaN and
    infinities (a figure a run could not determine) as None."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _leaf(tree: dict[str, Any], *keys: str) -> Any:
    """A ``(value, units)`` leaf of a stored config tree (``resolved_config``), or ""."""
    node: Any = tree
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return ""
        node = node[key]
    return plain(node[0]) if isinstance(node, tuple) else ""


def run_metadata(loaded: LoadedRun, file: str | None = None) -> dict[str, Any]:
    """The catalogue metadata of one run file; ``file``: the name the catalogue shows
    for it (default: the file's name)."""
    run = loaded.run
    figures: dict[str, Any] = {}
    units: dict[str, Any] = {}
    for group, items in run.analysis.items():
        values = {name: plain(value) for name, (value, _) in items.items()}
        unit_of = {name: unit for name, (_, unit) in items.items()}
        if group is None:
            figures.update(values)
            units.update(unit_of)
        else:
            figures[group] = values
            units[group] = unit_of
    instruments = {
        role: {
            "manufacturer": plain(rec.manufacturer),
            "model": plain(rec.model),
            "serial_number": plain(rec.serial_number),
            "firmware": plain(rec.firmware),
            "driver": plain(rec.driver),
        }
        for role, rec in run.instruments.items()
    }
    return {
        "procedure": run.procedure,
        "status": run.status,
        "reason": run.abort_reason or "",
        "sample": run.sample,
        "operator": run.operator,
        "start_time": run.start_time,
        "end_time": run.end_time or "",
        "bench": _leaf(run.resolved_config, "name"),
        "device_kind": _leaf(run.resolved_config, "device", "kind"),
        "simulated": bool(run.simulated),
        "labrig_version": run.labrig_version,
        "file_format": run.file_format,
        "file": file or Path(run.path).name,
        "groups": list(run.groups),
        "rows": {group: loaded.rows(group) for group in run.groups},
        "spectra": 0 if run.spectra is None else len(run.spectra.counts),
        "instruments": instruments,
        "parameters": {name: plain(value) for name, (value, _) in run.parameters.items()},
        "figures": figures,
        "units": units,
        "problems": list(loaded.problems),
    }


def unreadable_metadata(path: Path, problem: str, file: str | None = None) -> dict[str, Any]:
    """What the catalogue lists for a file it cannot read: its name and why."""
    return {"status": UNREADABLE, "file": file or path.name, "problems": [problem]}
