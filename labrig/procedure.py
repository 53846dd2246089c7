"""The base every labrig procedure derives from.

A procedure is a pymeasure ``Procedure`` (parameters, startup/execute/shutdown,
``should_stop``, ``emit``) with a few class attributes that tell the runner what it
needs and what it produces.  Procedures never talk SCPI and never open files: they use
``self.bench`` (instruments behind the interfaces in ``labrig.interfaces`` plus the clock,
calibration and limits) and hand their data to the runner through ``emit``:

=================  =========================================================
topic              record
=================  =========================================================
``results``        one row: ``{column: value}``; optional key ``"__group__"``
                   names a data group other than the default (lifetime channels)
``batch results``  many rows: ``{column: sequence}`` (same optional group key)
``progress``       float, percent done
``spectrum``       ``{"step": int, "spectrum": Spectrum, "dark": ndarray|None}``
``analysis``       ``{name: (value, units)}`` derived figures
``log``            ``{"kind": str, "message": str, "level": int}``
=================  =========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pymeasure.experiment import Procedure

from labrig.limits import Drive, check_drives

if TYPE_CHECKING:
    from labrig.bench import Bench
    from labrig.config import BenchConfig
    from labrig.interfaces import Spectrum


@dataclass(frozen=True)
class Column:
    """One data column: the key procedures emit, the units stored, and a readable name."""

    name: str
    units: str
    long_name: str
    dtype: str = "f8"


GROUP_KEY = "__group__"


class LabrigProcedure(Procedure):
    """Base class of labrig procedures (see the module docstring for the emit topics)."""

    #: name used on the command line (``labrig run NAME``)
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
    #: the device kinds (config ``device.kind``) the procedure measures; empty: any
    DEVICE_KINDS: ClassVar[tuple[str, ...]] = ()
    #: extra data groups besides /entry/data, each with the same COLUMNS (lifetime channels)
    GROUPS: ClassVar[Sequence[str]] = ()

    #: whether ``labrig run NAME --resume FILE`` can continue an interrupted run
    SUPPORTS_RESUME: ClassVar[bool] = False

    #: set by the runner before ``startup``
    bench: Bench
    #: set by the runner before ``validate`` when resuming: the run file to continue
    resume_from: Path | None = None

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

    @classmethod
    def check_device(cls, config: BenchConfig) -> None:
        """Refuse a bench whose device this procedure does not measure (``solar-jv`` on an
        LED), before anything is opened; one ``ConfigError`` line."""
        from labrig.errors import ConfigError

        kind = config.device.kind
        if cls.DEVICE_KINDS and kind not in cls.DEVICE_KINDS:
            allowed = " or ".join(cls.DEVICE_KINDS)
            raise ConfigError(
                f"device.kind: procedure {cls.NAME} needs a device of kind {allowed}, but "
                f"config {config.name!r} has kind {kind} ({config.device.sample}); "
                f"use a config whose device.kind is {allowed}"
            )

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

    # ------------------------------------------------------------------ emit helpers
    def emit_row(self, values: Mapping[str, Any], group: str | None = None) -> None:
        record = dict(values)
        if group is not None:
            record[GROUP_KEY] = group
        self.emit("results", record)

    def emit_rows(self, columns: Mapping[str, Sequence[Any]], group: str | None = None) -> None:
        record: dict[str, Any] = dict(columns)
        if group is not None:
            record[GROUP_KEY] = group
        self.emit("batch results", record)

    def emit_progress(self, percent: float) -> None:
        self.emit("progress", float(percent))

    def emit_spectrum(self, step: int, spectrum: Spectrum, dark: Any = None) -> None:
        self.emit("spectrum", {"step": int(step), "spectrum": spectrum, "dark": dark})

    def emit_analysis(self, figures: Mapping[str, tuple[Any, str]]) -> None:
        self.emit("analysis", dict(figures))

    def log_event(self, kind: str, message: str, level: int = logging.INFO) -> None:
        self.emit("log", {"kind": kind, "message": message, "level": level})
