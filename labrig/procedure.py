"""The base every labrig procedure derives from.

A procedure is a pymeasure ``Procedure`` (parameters, startup/execute/shutdown,
``should_stop``) with a few class attributes that tell the runner what it needs and what
it produces.  Procedures never talk SCPI and never open files: they use ``self.bench``
(instruments behind the interfaces in ``labrig.interfaces`` plus the clock, calibration
and limits) and ``self.context`` (the run files the runner read for them: the run being
resumed, a reference run a parameter names), and hand what they produce to the run as
typed records
(``labrig.records``), through these helpers:

======================  ==========================================================
helper                  record
======================  ==========================================================
``emit_row``            ``Row``: ``{column: value}`` of the main group or ``group``
``emit_rows``           ``Rows``: ``{column: sequence}`` (same optional group)
``emit_progress``       ``Progress``: percent done (otherwise derived from rows and
                        ``estimated_points()``)
``emit_spectrum``       ``Spectrum``: a spectrum of data row ``step`` (and its dark)
``emit_analysis``       ``Figures``: ``{name: (value, units)}`` derived figures
``log_event``           ``Event``: kind, message, level and structured ``data``
======================  ==========================================================

The runner connects the procedure (``connect``) to the run's dispatcher; who receives
the records (the file, the display, the GUI...) is none of the procedure's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labrig.deferred import defer_pymeasure_packages
from labrig.limits import Drive, check_drives
from labrig.records import Event, Figures, Progress, Record, Row, Rows, Spectrum

defer_pymeasure_packages()  # pymeasure.experiment's parameters and procedure modules alone
from pymeasure.experiment.parameters import FloatParameter  # noqa: E402
from pymeasure.experiment.procedure import Procedure  # noqa: E402

if TYPE_CHECKING:
    from labrig.bench import Bench
    from labrig.config import BenchConfig
    from labrig.interfaces import Spectrum as MeasuredSpectrum
    from labrig.store import RunData


def compliance_current_parameter(name: str = "Compliance current") -> FloatParameter:
    """The SMU's current compliance as every sourcing procedure takes it (A; 0 means the
    config's ``limits.default_compliance_a``).  The maximum only bounds the entry field:
    the config's limits and the driver's ``check_drive`` decide what is allowed."""
    return FloatParameter(
        name,
        units="A",
        default=0.0,
        minimum=0.0,
        maximum=1.05,
        description="0: the config's limits.default_compliance_a",
    )


@dataclass(frozen=True)
class Column:
    """One data column: the key procedures emit, the units stored, and a readable name.

    ``dtype``: numpy's (``"f8"``, ``"f4"`` where the instrument's resolution allows,
    ``"i1"``...) or ``"str"``; with ``levels`` the column is text of a closed vocabulary,
    stored as a one-byte code of an HDF5 enum whose names are ``levels``.  A ``constant``
    column (numeric) holds one value per data group (a lifetime channel's set current):
    the file stores it once, readers give it back as a column."""

    name: str
    units: str
    long_name: str
    dtype: str = "f8"
    levels: tuple[str, ...] = ()
    constant: bool = False


@dataclass(frozen=True)
class RunContext:
    """What the runner read for a procedure before ``validate`` (procedures never open
    files): the run ``--resume`` continues, and the run file ``reference_file()`` names."""

    previous: RunData | None = None
    reference: RunData | None = None


class LabrigProcedure(Procedure):
    """Base class of labrig procedures (see the module docstring for the records)."""

    #: name used on the command line (``labrig run NAME``), as in its
    #: ``labrig.registry.Measurement`` (which also says what devices it measures)
    NAME: ClassVar[str] = ""
    #: one-line description shown by ``labrig procedures``
    SUMMARY: ClassVar[str] = ""
    #: the data columns, in order
    COLUMNS: ClassVar[Sequence[Column]] = ()
    #: NXdata signal and axis column names (what a viewer plots by default)
    SIGNAL: ClassVar[str] = ""
    AXIS: ClassVar[str] = ""
    #: instrument roles the procedure cannot run without, and ones it uses when present
    REQUIRED_ROLES: ClassVar[tuple[str, ...]] = ()
    OPTIONAL_ROLES: ClassVar[tuple[str, ...]] = ()
    #: extra data groups besides /entry/data, each with the same COLUMNS (lifetime channels)
    GROUPS: ClassVar[Sequence[str]] = ()

    #: whether ``labrig run NAME --resume FILE`` can continue an interrupted run
    SUPPORTS_RESUME: ClassVar[bool] = False

    #: set by the runner before ``startup``
    bench: Bench
    #: set by the runner before ``validate``: the previous and reference runs, as read
    context: RunContext = RunContext()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.COLUMNS:
            cls.DATA_COLUMNS = [c.name for c in cls.COLUMNS]

    # ------------------------------------------------------------------ validation
    def validate(self, config: BenchConfig) -> None:
        """Check the parameters against each other and the limits, before any instrument
        is opened; raise ``ParameterError`` or ``SafetyLimitError`` with one line naming
        the parameter and what is allowed.

        Here: every drive ``drives`` declares, against the configured instrument's own
        ranges and the config's limits (``labrig.limits.check_drives``).  A procedure's
        own ``validate`` calls this and adds only the rules that are its own."""
        check_drives(config, self.drives(config))

    def drives(self, config: BenchConfig) -> Sequence[Drive]:
        """What the run will source at worst: one ``Drive`` per output (the largest level
        with its compliance, each ``Requested`` naming the parameter it comes from and
        the unit it is given in).  Default: nothing."""
        return ()

    def reference_file(self) -> Path | None:
        """A run file the parameters name for the runner to read into
        ``context.reference`` (the pulsed-el DC J-V-L); None here.  Raise
        ``ParameterError`` for a path that names no file."""
        return None

    def data_groups(self) -> Sequence[str]:
        """The extra data groups of this run (override when they depend on parameters,
        e.g. one per lifetime channel); the store creates them before the run starts."""
        return tuple(self.GROUPS)

    def columns(self) -> Sequence[Column]:
        """This run's data columns (override when a column's units depend on the
        parameters, e.g. a drive level in V or A); the names must be ``COLUMNS``'."""
        return tuple(self.COLUMNS)

    def default_plot(self) -> str:
        """The data group a viewer shows first ("data", or one of ``data_groups()``)."""
        return "data"

    def resolved_parameters(self, config: BenchConfig) -> dict[str, Any]:
        """``{name: value used}`` for parameters whose value as asked stands for something
        else: the run file stores the value used, with the one asked for beside it.
        Called after ``validate``.  Here: a ``compliance_current`` (A) of 0, which means
        the config's ``limits.default_compliance_a``."""
        param = self.parameter_objects().get("compliance_current")
        if param is None or param.value:
            return {}
        return {"compliance_current": config.limits.default_compliance_a}

    def estimated_points(self) -> int | None:
        """How many rows the run will produce, if known (for the progress bar)."""
        return None

    # ------------------------------------------------------------------ records out
    _publish: Callable[[Record], None] | None = None
    _stop_requested: Callable[[], bool] | None = None
    _requested: Callable[[], bool] | None = None
    #: whether a subscriber takes a record type; until connected, as if every one did
    _wants: Callable[[type], bool] = staticmethod(lambda kind: True)  # type: ignore[assignment]

    def connect(
        self,
        publish: Callable[[Record], None],
        stop_requested: Callable[[], bool],
        wants: Callable[[type], bool] | None = None,
        requested: Callable[[], bool] | None = None,
    ) -> None:
        """Send this run's records to ``publish`` and ask ``stop_requested`` in
        ``should_stop`` (the runner calls it before ``startup``); ``wants(kind)`` says
        whether anyone takes records of ``kind`` (default: everyone takes everything);
        ``requested()`` whether a stop or a pause is asked for, without holding the run
        (default: ``stop_requested``)."""
        self._publish, self._stop_requested = publish, stop_requested
        self._requested = requested or stop_requested
        self._wants = wants or type(self)._wants
        self._rows_done = 0
        self._rows_percent = -1.0
        self._rows_give_progress = True
        self._expected_rows = self.estimated_points()

    def should_stop(self, deliver: Callable[[], object] | None = None) -> bool:
        """True once the run is asked to stop; asking may hold the run where it is (a
        Bluesky pause) until it goes on.  ``deliver`` runs first when a stop or a pause
        is asked for: a procedure that emits a step late (J-V-L stores it while the next
        one is measured) has then shown everything it measured."""
        if self._stop_requested is None:
            return False
        if deliver is not None and self._requested():
            deliver()
        return self._stop_requested()

    def publish(self, record: Record) -> None:
        if self._publish is None:
            raise RuntimeError(
                f"{self.NAME or type(self).__name__}: not connected to a run "
                "(labrig.runner.run_procedure connects it)"
            )
        self._publish(record)

    def _rows_emitted(self, n: int) -> None:
        """Progress from rows and ``estimated_points()``, until the procedure says its
        own (one place: every subscriber sees the same ``Progress``), in steps of 0.1 %
        (a long run's display does not need a record per row)."""
        if not (n and self._rows_give_progress and self._expected_rows):
            return
        self._rows_done += n
        percent = min(100.0, round(100.0 * self._rows_done / self._expected_rows, 1))
        if percent != self._rows_percent:
            self._rows_percent = percent
            self.publish(Progress(percent))

    def emit_row(self, values: Mapping[str, Any], group: str | None = None) -> None:
        self.publish(Row(values, group))
        if self._rows_give_progress:
            self._rows_emitted(1)

    def emit_rows(self, columns: Mapping[str, Sequence[Any]], group: str | None = None) -> None:
        record = Rows(columns, group)
        self.publish(record)
        self._rows_emitted(len(record))

    def emit_progress(self, percent: float) -> None:
        """Percent done; not even made when no subscriber takes ``Progress`` (a J-V-L
        step says it every point, for a display that may not be there)."""
        self._rows_give_progress = False
        if self._wants(Progress):
            self.publish(Progress(float(percent)))

    def emit_spectrum(self, step: int, spectrum: MeasuredSpectrum, dark: Any = None) -> None:
        self.publish(Spectrum(int(step), spectrum, dark))

    def emit_analysis(
        self, figures: Mapping[str, tuple[Any, str]], group: str | None = None
    ) -> None:
        self.publish(Figures(figures, group))

    def log_event(
        self,
        kind: str,
        message: str,
        level: int = logging.INFO,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """An event for the file and the log; ``data`` carries its values on the record
        for subscribers (the file keeps kind, level and message: a value a reader of the
        file needs is emitted as a figure, never parsed from ``message``)."""
        self.publish(Event(kind, message, level, data or {}))
