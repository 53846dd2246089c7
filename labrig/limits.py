"""The bench's safety limits and the one check of a requested drive against them.

The config's ``limits:`` block (``Limits``) says what this bench may ever apply to the
device: a largest voltage and current, and optionally a largest current density and
power.  ``Limits.check(drive)`` is the only place those rules are written: the bench calls
it before a level is set, and every procedure's default ``validate`` calls it (through
``check_drives``) on the drives the procedure declares, before anything is opened.  What
the *instruments* can do is not here: each driver owns its own ranges
(``SourceMeter.check_drive``), and ``check_drives`` asks the configured driver as well.

A refusal is one line naming the value asked for, the limit and where it is set::

    stop_voltage=15 V exceeds limits.max_voltage_v (12 V)
    voltages: the sweep reaches 13 V, beyond limits.max_voltage_v (12 V)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, PositiveFloat, model_validator

from labrig.devices import StrictModel
from labrig.errors import InstrumentSettingError, SafetyLimitError

if TYPE_CHECKING:
    from labrig.config import BenchConfig

Quantity = Literal["voltage", "current"]
_SI = {"voltage": "V", "current": "A"}
#: display units a parameter may be given in, as a multiple of its SI unit
_SCALE = {"V": 1.0, "mV": 1e-3, "A": 1.0, "mA": 1e-3, "uA": 1e-6, "µA": 1e-6}
_OPPOSITE: dict[str, Quantity] = {"voltage": "current", "current": "voltage"}


@dataclass(frozen=True)
class Requested:
    """One value a run asks for: ``value`` in V or A, and how to name it in a refusal.

    ``name`` is the parameter it comes from ("" for a direct bench call: "current 0.5 A");
    ``units`` the unit that parameter is given in ("mA"; default V or A); ``context`` says
    how the value follows from the parameter when it is not the parameter itself ("the
    sweep reaches", "channel 3 needs")."""

    quantity: Quantity
    value: float
    name: str = ""
    units: str = ""
    context: str = ""

    @property
    def shown_units(self) -> str:
        return self.units or _SI[self.quantity]

    def show(self, si_value: float) -> str:
        """``si_value`` in this request's display units: ``200 mA``."""
        return f"{si_value / _SCALE[self.shown_units]:g} {self.shown_units}"

    def describe(self) -> str:
        """The value as the user asked for it: ``drive_current=200 mA``,
        ``voltages: the sweep reaches 13 V``, or ``current 0.5 A``."""
        if self.context:
            return f"{self.name}: {self.context} {self.show(self.value)}"
        if self.name:
            return f"{self.name}={self.show(self.value)}"
        return f"{self.quantity} {self.show(self.value)}"


@dataclass(frozen=True)
class Drive:
    """What one output will do: source ``level`` with ``compliance`` (the opposite
    quantity) as its limit, on the instrument of ``role``."""

    level: Requested
    compliance: Requested | None = None
    role: str = "smu"

    def __post_init__(self) -> None:
        if self.compliance is not None and self.compliance.quantity == self.level.quantity:
            raise ValueError("a drive's compliance is the opposite quantity of its level")


class Limits(StrictModel):
    """Safety limits checked before any output is enabled (the config's ``limits:``)."""

    max_voltage_v: Annotated[float, Field(gt=0, le=210)]
    max_current_a: Annotated[float, Field(gt=0, le=1.05)]
    default_compliance_a: PositiveFloat
    #: largest current density through the device (mA/cm², with ``device.active_area_cm2``)
    max_current_density_ma_cm2: PositiveFloat | None = None
    #: largest power the device may take: level × compliance at the worst point (W)
    max_power_w: PositiveFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> Limits:
        if self.default_compliance_a > self.max_current_a:
            raise ValueError(
                f"default_compliance_a ({self.default_compliance_a}) must not exceed "
                f"max_current_a ({self.max_current_a})"
            )
        return self

    def check(self, drive: Drive | Requested, area_cm2: float | None = None) -> None:
        """Raise ``SafetyLimitError`` (one line) if ``drive`` could exceed a limit.

        A level and its compliance are each held to the maximum of their quantity; a
        current (level or compliance) to the current density on ``area_cm2``; the
        worst-case power is the level times its compliance."""
        if isinstance(drive, Requested):
            drive = Drive(drive)
        for requested in (drive.level, drive.compliance):
            if requested is not None:
                self._check_one(requested, area_cm2)
        if self.max_power_w is not None and drive.compliance is not None:
            power = abs(drive.level.value * drive.compliance.value)
            if _exceeds(power, self.max_power_w):
                raise SafetyLimitError(
                    f"{drive.level.describe()} with {drive.compliance.describe()} may put "
                    f"{power:g} W into the device, beyond limits.max_power_w "
                    f"({self.max_power_w:g} W)"
                )

    def _check_one(self, requested: Requested, area_cm2: float | None) -> None:
        value = abs(requested.value)
        if not math.isfinite(value):
            raise SafetyLimitError(f"{requested.describe()}: not a finite number")
        if requested.quantity == "voltage":
            field, limit = "max_voltage_v", self.max_voltage_v
        else:
            field, limit = "max_current_a", self.max_current_a
        if _exceeds(value, limit):
            raise SafetyLimitError(_refusal(requested, field, requested.show(limit)))
        density_limit = self.max_current_density_ma_cm2
        if requested.quantity == "current" and density_limit is not None and area_cm2:
            density = value / area_cm2 * 1e3
            if _exceeds(density, density_limit):
                raise SafetyLimitError(
                    f"{requested.describe()} is {density:g} mA/cm² on the {area_cm2:g} cm² "
                    f"device, beyond limits.max_current_density_ma_cm2 ({density_limit:g} mA/cm²)"
                )


def _exceeds(value: float, limit: float) -> bool:
    """Beyond ``limit`` by more than rounding (6 V × 50 mA is 0.3 W, not 0.30000000000000004)."""
    return value > limit * (1 + 1e-9)


def _refusal(requested: Requested, field: str, limit: str) -> str:
    joint = ", beyond" if requested.context else " exceeds"
    return f"{requested.describe()}{joint} limits.{field} ({limit})"


def check_drives(config: BenchConfig, drives: Iterable[Drive]) -> None:
    """Each drive against the instrument that will source it (its driver's own ranges,
    e.g. the 2400's ±21 V at 1.05 A, ±210 V at 105 mA) and then the config's limits.

    Called before anything is opened: a driver's refusal becomes a ``SafetyLimitError``
    naming the parameter."""
    from labrig.instruments import driver_class

    area = config.device.active_area_cm2
    for drive in drives:
        inst = config.instruments.get(drive.role)
        if inst is not None:
            check = getattr(driver_class(inst.driver), "check_drive", None)
            compliance = drive.compliance.value if drive.compliance is not None else None
            if check is not None:
                try:
                    check(drive.level.quantity, drive.level.value, compliance)
                except InstrumentSettingError as exc:
                    raise SafetyLimitError(f"{drive.level.name or drive.role}: {exc}") from None
        config.limits.check(drive, area)


def opposite(quantity: Quantity) -> Quantity:
    """The quantity a source of ``quantity`` limits by compliance."""
    return _OPPOSITE[quantity]
