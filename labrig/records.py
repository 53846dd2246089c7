"""What a run produces, as typed records.

A procedure's ``emit_*`` calls and the runner's own milestones become these frozen
records; the runner hands each one to every subscriber (``labrig.dispatch``): the HDF5
writer, the progress display, Python logging, the GUI, and whatever a caller adds (a
Bluesky document emitter, a catalogue publisher).  Records are values: a subscriber reads
them and never changes them, so one subscriber cannot alter what the next one sees
(mappings are read-only views).

A run's records come in this order: ``RunStarted``; ``BenchOpened`` (unless the run
stopped before the instruments opened); any number of ``Row``, ``Rows``, ``Spectrum``,
``Figures``, ``Event`` and ``Progress``; ``RunEnded``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from labrig.interfaces import Spectrum as MeasuredSpectrum
    from labrig.procedure import Column

#: how a run can end (the run file's status)
Status = Literal["finished", "aborted", "failed"]


def _frozen(record: Any, name: str) -> None:
    """Replace a mapping field by a read-only copy (frozen dataclasses only stop
    reassignment, not a subscriber editing a shared dict in place)."""
    object.__setattr__(record, name, MappingProxyType(dict(getattr(record, name))))


@dataclass(frozen=True)
class RunStarted:
    """The run file exists and the instruments are about to open: what is run, how,
    on what, and where it is recorded."""

    procedure: str
    #: every parameter as used, ``{name: (value, units)}``
    parameters: Mapping[str, tuple[Any, str]]
    #: the bench config's name and the SHA-256 of its text (which config, exactly)
    config_name: str
    config_sha256: str
    sample: str
    path: Path
    columns: Sequence[Column]
    #: the data groups of this run: "data" and any extra (one per lifetime channel)
    groups: Sequence[str]
    #: rows the procedure expects to emit, if known
    expected_rows: int | None = None
    simulated: bool = False
    #: True when continuing an earlier, unfinished run in the same file
    resumed: bool = False

    def __post_init__(self) -> None:
        _frozen(self, "parameters")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "groups", tuple(self.groups))


@dataclass(frozen=True)
class BenchOpened:
    """Every instrument answered: who they are, and the spectrometer's pixel count."""

    #: ``{role: (identity, resource, driver)}`` as ``Bench.identities()`` gives them
    identities: Mapping[str, tuple[Any, str, str]]
    spectrum_pixels: int | None = None

    def __post_init__(self) -> None:
        _frozen(self, "identities")


@dataclass(frozen=True)
class Row:
    """One data row ``{column: value}`` of ``group`` (None: the main data group)."""

    values: Mapping[str, Any]
    group: str | None = None

    def __post_init__(self) -> None:
        _frozen(self, "values")

    def __len__(self) -> int:
        return 1


@dataclass(frozen=True)
class Rows:
    """Many rows of ``group`` as equal-length columns ``{column: sequence}``."""

    columns: Mapping[str, Sequence[Any]]
    group: str | None = None

    def __post_init__(self) -> None:
        _frozen(self, "columns")

    def __len__(self) -> int:
        return max((len(v) for v in self.columns.values()), default=0)


@dataclass(frozen=True)
class Spectrum:
    """One spectrum belonging to data row ``step``, with the dark taken for it."""

    step: int
    spectrum: MeasuredSpectrum
    dark: Any = None


@dataclass(frozen=True)
class Figures:
    """Derived figures ``{name: (value, units)}`` of ``group`` (None: the main group)."""

    figures: Mapping[str, tuple[Any, str]]
    group: str | None = None

    def __post_init__(self) -> None:
        _frozen(self, "figures")


@dataclass(frozen=True)
class Event:
    """Something that happened: ``kind`` names it (``compliance``, ``stop``,
    ``channel_end``...), ``message`` says it for a person, ``data`` carries the values
    for a program (nobody parses ``message``)."""

    kind: str
    message: str
    level: int = logging.INFO
    data: Mapping[str, Any] = field(default_factory=dict)
    #: already written to Python logging by whoever made it (the runner's own events),
    #: so the logging subscriber does not say it twice
    logged: bool = False

    def __post_init__(self) -> None:
        _frozen(self, "data")


@dataclass(frozen=True)
class Progress:
    """Percent of the run done, 0-100."""

    percent: float


@dataclass(frozen=True)
class RunEnded:
    """How the run ended; ``unsafe`` lists what the safe shutdown could not confirm
    ("role: problem"; empty when every output is off)."""

    status: Status
    reason: str | None = None
    unsafe: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "unsafe", tuple(self.unsafe))


Record = RunStarted | BenchOpened | Row | Rows | Spectrum | Figures | Event | Progress | RunEnded
