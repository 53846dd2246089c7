"""What a run's node in the catalogue holds besides metadata: one container per data
group (``data``, and ``channel_NN`` of a lifetime run) holding the group's NXdata columns
as 1-D arrays of equal length, each with its units and long name (as NeXus keeps them),
and, for a run with spectra, the spectra as a 2-D array (steps x pixels) with its
wavelength axis and the data row each spectrum belongs to.

Columns as arrays rather than one table: every column grows by an array append of its
own (Tiled's file-backed arrays), which any number of benches can do at once; Tiled's
embedded SQL tables take one appender at a time.

Built from the store's one reader, so the server's adapter (a run file in the served
directory) and the publisher (a run a bench sends) hold the same children.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labrig.store import LoadedRun

#: the children a run with spectra has besides its data groups
SPECTRA = "spectra"
WAVELENGTH = "wavelength_nm"
SPECTRUM_STEP = "spectrum_step"


@dataclass(frozen=True)
class Group:
    """A data group: equal-length columns, and each column's units and long name."""

    columns: dict[str, np.ndarray]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


@dataclass(frozen=True)
class Array:
    values: np.ndarray
    dims: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)


#: characters kept of a text column (enumerated levels, reasons); fixed, so that rows
#: appended later fit the array the first rows made
TEXT = "<U64"


def column_values(data: np.ndarray) -> np.ndarray:
    """A column as the catalogue holds it: text (enumerated names, object arrays) as
    fixed-width unicode."""
    return data.astype(TEXT) if data.dtype == object or data.dtype.kind in "SU" else data


def column_metadata(units: str, long_name: str) -> dict[str, Any]:
    return {"units": units, "long_name": long_name}


def run_parts(loaded: LoadedRun) -> dict[str, Group | Array]:
    """The children of a run's node, in a stable order: data groups, then spectra."""
    run = loaded.run
    parts: dict[str, Group | Array] = {}
    for group in run.groups:
        cols = run.columns.get(group, {})
        parts[group] = Group(
            {name: column_values(data) for name, (data, _, _) in cols.items()},
            {
                "units": {name: units for name, (_, units, _) in cols.items()},
                "long_names": {name: long for name, (_, _, long) in cols.items()},
            },
        )
    spectra = run.spectra
    if spectra is not None and len(spectra.counts):  # an empty array has no chunks to serve
        parts[SPECTRA] = Array(
            np.asarray(spectra.counts, dtype=float),
            ("step", "pixel"),
            {"units": "counts", "axes": [SPECTRUM_STEP, WAVELENGTH]},
        )
        parts[WAVELENGTH] = Array(
            np.asarray(spectra.wavelength_nm, dtype=float), ("pixel",), {"units": "nm"}
        )
        parts[SPECTRUM_STEP] = Array(
            np.asarray(spectra.step, dtype=np.int64),
            ("step",),
            {"units": "", "long_name": "data row of each spectrum"},
        )
    return parts
