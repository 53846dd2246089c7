"""Keithley 2400 SourceMeter: pymeasure's driver plus what LED and solar work needs.

pymeasure's ``Keithley2400`` (subclassed, not forked) already speaks the basic source,
sense and output commands.  This module adds the instrument's own buffered sweeps (list
and staircase, every point back from one ``:READ?``), abort on compliance, the
auto-output-off cycles that are the 2400's only way to pulse a device, per-reading
compliance from the status word, a shutdown that survives an interrupted transaction,
and the ``labrig.interfaces.SourceMeter`` methods procedures use.

Limits are checked before any SCPI is sent (2400 User's Manual, 2400S-900-01 §18):
±210 V source range at up to 105 mA, ±21 V at up to ±1.05 A; NPLC 0.01–10; sweeps and
lists of at most 2500 points, lists sent 100 values per command (``:SOURce:LIST`` and
``:APPend`` take at most 100 each).  With ``:FORMat:ELEMents VOLT,CURR,RES,TIME,STAT``
each reading is five numbers; status bit 3 is "real compliance" and bit 16 "range
compliance", both meaning the source was limited.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
from pymeasure.instruments import Instrument as PymeasureInstrument
from pymeasure.instruments.validators import (
    strict_discrete_range,
    strict_discrete_set,
    strict_range,
)

from labrig.deferred import defer_pymeasure_packages
from labrig.drivers.visa import VisaTransport, connect_instrument, parse_floats, parse_identity
from labrig.errors import (
    GarbledReplyError,
    InstrumentError,
    InstrumentSettingError,
    OutputStateUnknownError,
    OverRangeError,
)
from labrig.interfaces import InstrumentIdentity, SourceFunction, SourceMeter, SourceReading

# the package's __init__ imports all its eighteen Keithley drivers, the 2281S's with
# pandas (~0.5 s, ~30 MB): only the 2400's module is loaded, the package when used
defer_pymeasure_packages()
from pymeasure.instruments.keithley.keithley2400 import (  # noqa: E402
    Keithley2400 as PymeasureKeithley2400,
)

log = logging.getLogger(__name__)

MODELS = ("2400",)
MAX_VOLTAGE_V = 210.0
LOW_RANGE_MAX_V = 21.0  # above this the 2400 is on its 210 V range...
HIGH_VOLTAGE_MAX_A = 0.105  # ...which sources or limits at most 105 mA
MAX_CURRENT_A = 1.05
NPLC_LIMITS = (0.01, 10.0)
DELAY_LIMITS_S = (0.0, 999.9999)
MAX_POINTS = 2500
LIST_CHUNK = 100
#: instrument time per buffered sweep: a stop waits at most this long for the 2400
SWEEP_CHUNK_S = 0.5
COMPLIANCE_BITS = (1 << 3) | (1 << 16)  # real compliance | range compliance
OVERFLOW = 9.9e37
ELEMENTS_PER_READING = 5  # VOLT, CURR, RES, TIME, STAT (pymeasure's :FORM:ELEM order)
SHUTDOWN_RAMP_STEPS = 5
SHUTDOWN_RAMP_PAUSE_S = 0.02
CONFIRM_TIMEOUT_S = 1.0
SHUTDOWN_RESYNC_S = 10.0
AUTO_DELAY_ESTIMATE_S = 0.005
LINE_FREQUENCY_WORST_HZ = 50.0
TRIGGER_LINES = range(1, 5)
#: from a trigger to the start of the source-delay-measure cycle, autozero off (2400
#: manual, specifications): the off time a pulse train cannot go below
TRIGGER_LATENCY_S = 1e-4

_SCPI_FUNCTION = {"voltage": "VOLT", "current": "CURR"}
_OPPOSITE = {"voltage": "current", "current": "voltage"}
_UNIT = {"voltage": "V", "current": "A"}
#: the level commands of pymeasure's ``source_voltage`` / ``source_current`` (``measure_at``
#: sends one in the same write as its ``:READ?``)
_LEVEL_SCPI = {"voltage": ":SOURCE:VOLTAGE %g", "current": ":SOURCE:CURRENT %g"}
_MODES = {"fixed": "FIX", "sweep": "SWE", "list": "LIST"}


def _reject(message: str) -> InstrumentSettingError:
    return InstrumentSettingError(f"Keithley 2400: {message}")


def _check_nplc(nplc: float) -> None:
    lo, hi = NPLC_LIMITS
    if not lo <= nplc <= hi:
        raise _reject(f"nplc {nplc:g} is outside the allowed {lo:g}–{hi:g} power-line cycles")


def _check_delay(name: str, seconds: float) -> None:
    lo, hi = DELAY_LIMITS_S
    if not lo <= seconds <= hi:
        raise _reject(f"{name} {seconds:g} s is outside the allowed {lo:g}–{hi:g} s")


def _check_points(points: int, minimum: int = 1) -> None:
    if not minimum <= points <= MAX_POINTS:
        raise _reject(
            f"a sweep of {points} points is not possible; allowed {minimum}–{MAX_POINTS} points"
        )


class Keithley2400(VisaTransport, PymeasureKeithley2400, SourceMeter):
    """The bench's SMU: pymeasure's 2400 with buffered sweeps, pulsing and safe shutdown."""

    #: the instrument's own limits, for procedures that plan around them before opening it
    NPLC_LIMITS = NPLC_LIMITS
    DELAY_LIMITS_S = DELAY_LIMITS_S
    TRIGGER_LATENCY_S = TRIGGER_LATENCY_S

    # ---------------------------------------------------------------- extra SCPI
    source_voltage_mode = PymeasureInstrument.control(
        ":SOUR:VOLT:MODE?",
        ":SOUR:VOLT:MODE %s",
        """Control the voltage sourcing mode ('fixed', 'sweep' or 'list').""",
        validator=strict_discrete_set,
        values=_MODES,
        map_values=True,
    )
    source_current_mode = PymeasureInstrument.control(
        ":SOUR:CURR:MODE?",
        ":SOUR:CURR:MODE %s",
        """Control the current sourcing mode ('fixed', 'sweep' or 'list').""",
        validator=strict_discrete_set,
        values=_MODES,
        map_values=True,
    )
    sweep_points = PymeasureInstrument.control(
        ":SOUR:SWE:POIN?",
        ":SOUR:SWE:POIN %d",
        """Control the number of staircase-sweep points (int, 2 to 2500).""",
        validator=lambda v, vs: strict_discrete_range(v, vs, 1),
        values=(2, MAX_POINTS),
        cast=int,
    )
    sweep_spacing = PymeasureInstrument.control(
        ":SOUR:SWE:SPAC?",
        ":SOUR:SWE:SPAC %s",
        """Control the staircase spacing ('linear' or 'log').""",
        validator=strict_discrete_set,
        values={"linear": "LIN", "log": "LOG"},
        map_values=True,
    )
    sweep_ranging = PymeasureInstrument.control(
        ":SOUR:SWE:RANG?",
        ":SOUR:SWE:RANG %s",
        """Control the source ranging during a sweep ('best', 'auto' or 'fixed').""",
        validator=strict_discrete_set,
        values={"best": "BEST", "auto": "AUTO", "fixed": "FIX"},
        map_values=True,
    )
    sweep_compliance_abort = PymeasureInstrument.control(
        ":SOUR:SWE:CAB?",
        ":SOUR:SWE:CAB %s",
        """Control abort-on-compliance of sweeps ('never', 'early' or 'late').""",
        validator=strict_discrete_set,
        values={"never": "NEV", "early": "EARL", "late": "LATE"},
        map_values=True,
    )
    source_voltage_start = PymeasureInstrument.control(
        ":SOUR:VOLT:STAR?",
        ":SOUR:VOLT:STAR %g",
        """Control the staircase start voltage (V, -210 to 210).""",
        validator=strict_range,
        values=(-MAX_VOLTAGE_V, MAX_VOLTAGE_V),
    )
    source_voltage_stop = PymeasureInstrument.control(
        ":SOUR:VOLT:STOP?",
        ":SOUR:VOLT:STOP %g",
        """Control the staircase stop voltage (V, -210 to 210).""",
        validator=strict_range,
        values=(-MAX_VOLTAGE_V, MAX_VOLTAGE_V),
    )
    source_current_start = PymeasureInstrument.control(
        ":SOUR:CURR:STAR?",
        ":SOUR:CURR:STAR %g",
        """Control the staircase start current (A, -1.05 to 1.05).""",
        validator=strict_range,
        values=(-MAX_CURRENT_A, MAX_CURRENT_A),
    )
    source_current_stop = PymeasureInstrument.control(
        ":SOUR:CURR:STOP?",
        ":SOUR:CURR:STOP %g",
        """Control the staircase stop current (A, -1.05 to 1.05).""",
        validator=strict_range,
        values=(-MAX_CURRENT_A, MAX_CURRENT_A),
    )
    # The two trigger-model counts, as plain one-write settings; the public
    # ``trigger_count``/``arm_count`` below add pymeasure's guard on their product.
    _trigger_count_scpi = PymeasureInstrument.control(
        ":TRIG:COUN?",
        ":TRIG:COUN %d",
        """Control the trigger-layer count (int, 1 to 2500), unguarded.""",
        validator=lambda v, vs: strict_discrete_range(v, vs, 1),
        values=(1, MAX_POINTS),
        cast=int,
    )
    _arm_count_scpi = PymeasureInstrument.control(
        ":ARM:COUN?",
        ":ARM:COUN %d",
        """Control the arm-layer count (int, 1 to 2500), unguarded.""",
        validator=lambda v, vs: strict_discrete_range(v, vs, 1),
        values=(1, MAX_POINTS),
        cast=int,
    )

    @property
    def trigger_count(self) -> int:
        """Control the trigger-layer count (int, 1 to 2500; trigger × arm ≤ 2500)."""
        return self._trigger_count_scpi

    @trigger_count.setter
    def trigger_count(self, count: int) -> None:
        self._set_count("trigger", count)

    @property
    def arm_count(self) -> int:
        """Control the arm-layer count (int, 1 to 2500; trigger × arm ≤ 2500)."""
        return self._arm_count_scpi

    @arm_count.setter
    def arm_count(self, count: int) -> None:
        self._set_count("arm", count)

    def __init__(self, adapter, name: str = "Keithley 2400 SourceMeter", **kwargs) -> None:
        # what this driver last told the instrument (None: unknown, so it is re-sent)
        self._function: SourceFunction | None = None
        self._compliance: float | None = None
        self._nplc: float = 1.0
        self._source_delay: float | None = None
        self._autozero: bool = True
        self._level: float | None = None
        self._output_on: bool | None = None
        self._auto_clear: bool = False
        self._trigger_count: int | None = None
        self._arm_count: int | None = None
        self._fixed_mode: bool = False
        self._identity: InstrumentIdentity | None = None
        super().__init__(adapter, name, **kwargs)

    # ------------------------------------------------------------------ identity
    def identity(self) -> InstrumentIdentity:
        if self._identity is None:
            self._identity = parse_identity(self.query("*IDN?"), self.resource)
        return self._identity

    # -------------------------------------------------------------- validation
    def _require_function(self) -> SourceFunction:
        if self._function is None:
            raise _reject("no source function configured; call configure_source() first")
        return self._function

    def _check_level(self, level: float, function: SourceFunction | None = None) -> None:
        """``level`` within the 2400's envelope at the configured compliance."""
        function = function or self._require_function()
        self.check_drive(function, level, None)
        self._check_envelope(function, level, self._compliance or 0.0)

    @classmethod
    def check_drive(
        cls, function: SourceFunction, level: float, compliance: float | None = None
    ) -> None:
        """Refuse (``InstrumentSettingError``) a drive the 2400 cannot source: a level
        beyond its ranges, a compliance outside them, or a pair outside its envelope
        (±210 V at ≤105 mA, ±21 V at ≤1.05 A).  Needs no instrument: procedures ask it
        before anything is opened, and every level set asks it again."""
        if function not in _SCPI_FUNCTION:
            raise _reject(f"source function {function!r} is not one of 'voltage', 'current'")
        if not math.isfinite(level):
            raise _reject(f"source {function} level {level!r} is not a number")
        limit = MAX_VOLTAGE_V if function == "voltage" else MAX_CURRENT_A
        if abs(level) > limit:
            raise _reject(
                f"source {function} {level:g} {_UNIT[function]} is beyond the "
                f"±{limit:g} {_UNIT[function]} range"
            )
        if compliance is not None:
            cls._check_compliance(function, compliance)
            cls._check_envelope(function, level, compliance)

    @staticmethod
    def _check_envelope(function: SourceFunction, level: float, compliance: float) -> None:
        """The 2400's source envelope: ±210 V at ≤105 mA, ±21 V at ≤1.05 A."""
        if function == "voltage":
            if abs(level) > LOW_RANGE_MAX_V and compliance > HIGH_VOLTAGE_MAX_A:
                raise _reject(
                    f"source voltage {level:g} V needs the ±{MAX_VOLTAGE_V:g} V range, which "
                    f"limits current to {HIGH_VOLTAGE_MAX_A * 1e3:g} mA, but compliance is "
                    f"{compliance:g} A (±1.05 A only up to ±{LOW_RANGE_MAX_V:g} V)"
                )
        elif abs(level) > HIGH_VOLTAGE_MAX_A and compliance > LOW_RANGE_MAX_V:
            raise _reject(
                f"source current {level:g} A is above {HIGH_VOLTAGE_MAX_A * 1e3:g} mA, "
                f"allowed only up to ±{LOW_RANGE_MAX_V:g} V, but compliance is {compliance:g} V"
            )

    @staticmethod
    def _check_compliance(function: SourceFunction, compliance: float) -> None:
        limit = MAX_CURRENT_A if function == "voltage" else MAX_VOLTAGE_V
        unit = "A" if function == "voltage" else "V"
        if not 0 < compliance <= limit:
            raise _reject(
                f"compliance {compliance:g} {unit} is outside the allowed (0, {limit:g}] {unit} "
                f"when sourcing {function}"
            )

    @staticmethod
    def _check_range(name: str, quantity: SourceFunction, value: float | None) -> None:
        if value is None:
            return
        limit = MAX_VOLTAGE_V if quantity == "voltage" else MAX_CURRENT_A
        unit = _UNIT[quantity]
        if not 0 < abs(value) <= limit:
            raise _reject(f"{name} {value:g} {unit} is outside the allowed (0, {limit:g}] {unit}")

    # --------------------------------------------------------------- SourceMeter
    def configure_source(
        self,
        function: SourceFunction,
        compliance: float,
        *,
        nplc: float = 1.0,
        source_delay: float | None = None,
        autozero: bool = True,
        source_range: float | None = None,
        measure_range: float | None = None,
    ) -> None:
        """Source ``function``, measure both V and I concurrently, fixed (non-sweep) mode."""
        if function not in _SCPI_FUNCTION:
            raise _reject(f"source function {function!r} is not one of 'voltage', 'current'")
        sensed: SourceFunction = _OPPOSITE[function]  # type: ignore[assignment]
        self._check_compliance(function, compliance)
        _check_nplc(nplc)
        if source_delay is not None:
            _check_delay("source_delay", source_delay)
        self._check_range("source_range", function, source_range)
        self._check_range("measure_range", sensed, measure_range)

        self.source_mode = function
        self._set_mode_fixed(function)
        self.write(":SENS:FUNC:CONC 1")
        self.write(':SENS:FUNC "VOLT","CURR"')
        if function == "voltage":
            self.compliance_current = compliance
            if source_range is None:
                self.source_voltage_range_auto_enabled = True
            else:
                self.source_voltage_range = abs(source_range)
            if measure_range is None:
                self.current_range_auto_enabled = True
            else:
                self.current_range = abs(measure_range)
            self.current_nplc = nplc
        else:
            self.compliance_voltage = compliance
            if source_range is None:
                self.source_current_range_auto_enabled = True
            else:
                self.source_current_range = abs(source_range)
            if measure_range is None:
                self.voltage_range_auto_enabled = True
            else:
                self.voltage_range = abs(measure_range)
            self.voltage_nplc = nplc
        if source_delay is None:
            self.source_delay_auto_enabled = True
        else:
            self.source_delay = source_delay
        self.auto_zero_enabled = autozero
        if self._arm_count != 1:  # buffered readings assume one arm cycle
            self.arm_count = 1
        self._set_trigger_count(1)
        self._function = function
        self._compliance = compliance
        self._nplc = nplc
        self._source_delay = source_delay
        self._autozero = autozero

    def set_level(self, level: float) -> None:
        """Program the source level; returns once the 2400 has applied it, so a dwell or
        a reading that follows starts at the new level (see ``_write_level``)."""
        function = self._require_function()
        self._check_level(level, function)
        self._set_mode_fixed(function)
        self._write_level(function, level)

    def measure_at(
        self, level: float, meanwhile: Callable[[], object] | None = None
    ) -> SourceReading:
        """``set_level`` then ``measure`` without the ``*OPC?`` round trip between them:
        the 2400 executes commands in order, so the ``:READ?`` right behind the level
        command is taken at the new level and is itself the confirmation.  Both go in one
        write (two SCPI messages, one packet: one send, and one wake-up of the instrument's
        interface, a J-V-L point instead of two); nothing is sent when the level or the
        output state is refused.  ``meanwhile`` runs once they are sent, while the 2400
        sources and measures (see ``SourceMeter.measure_at``)."""
        function = self._require_function()
        self._check_level(level, function)
        self._require_output_on()
        self._set_mode_fixed(function)
        self._set_trigger_count(1)
        self.write(f"{_LEVEL_SCPI[function] % level}\n:READ?")
        self._level = level
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                # the reading is on its way: take it, so the next exchange (the
                # shutdown's) is in step, and let the caller's exception go on
                with contextlib.suppress(InstrumentError):
                    self._read_readings(1, expected=1, sent=True)
                raise
        return self._read_readings(1, expected=1, sent=True)[0]

    def enable_output(self) -> None:
        """Output on; returns once the 2400 has switched it (``*OPC?``), like a level."""
        self.source_enabled = True
        self._confirm_applied("OUTPUT 1")
        self._output_on = True

    def disable_output(self) -> None:
        self.source_enabled = False
        self._output_on = False

    @property
    def output_enabled(self) -> bool:
        on = bool(self.source_enabled)
        self._output_on = on
        return on

    def measure(self) -> SourceReading:
        function = self._require_function()
        self._require_output_on()
        self._set_mode_fixed(function)
        self._set_trigger_count(1)
        readings = self._read_readings(1, expected=1)
        return readings[0]

    def sweep(
        self, levels: Sequence[float], *, abort_on_compliance: bool = False
    ) -> list[SourceReading]:
        """List sweep over ``levels`` (see ``sweep_chunks``), every point in one list."""
        chunks = self.sweep_chunks(levels, abort_on_compliance=abort_on_compliance)
        return [reading for chunk in chunks for reading in chunk]

    def sweep_chunks(
        self, levels: Sequence[float], *, abort_on_compliance: bool = False
    ) -> Iterator[list[SourceReading]]:
        """List sweep over ``levels``, yielded as the instrument's buffered sweeps of at
        most ``SWEEP_CHUNK_S`` of instrument time each (every point of a chunk back from
        one ``:READ?``).

        Why chunks: while the 2400 runs a sweep it reads no command, and a device clear
        does not reach it over every link (pyvisa-py's ``clear()`` on a TCPIP SOCKET only
        drains the local buffer), so a stop would wait for the whole sweep.  Between
        chunks the output returns to the bias level, set to each chunk's first level: it
        never goes beyond what the sweep has reached.  Afterwards the bias is back where
        it was.  With ``abort_on_compliance`` (``:SOUR:SWE:CAB EARL``) the instrument
        aborts at the start of the first source-delay-measure cycle that is in compliance,
        so that point is not measured: only the points before it come back (possibly
        none), and no chunk follows."""
        function = self._require_function()
        values = [float(v) for v in levels]
        _check_points(len(values))
        for value in values:
            self._check_level(value, function)
        size = max(1, int(SWEEP_CHUNK_S / self._cycle_time_s()))
        if len(values) <= size:  # one sweep: the bias is left alone
            self._load_list(function, values)
            yield self._run_buffered(len(values), abort_on_compliance)
            return
        bias = self._level or 0.0
        for start in range(0, len(values), size):
            chunk = values[start : start + size]
            self._write_level(function, chunk[0])
            self._load_list(function, chunk, first=start == 0)
            readings = self._run_buffered(len(chunk), abort_on_compliance)
            yield readings
            if len(readings) < len(chunk):
                break  # aborted on compliance: the output is off
        self._write_level(function, bias)

    def _load_list(self, function: SourceFunction, values: list[float], first: bool = True) -> None:
        """The source list (``:SOURce:LIST`` takes at most 100 values a command); list
        mode once, with the first list."""
        scpi = _SCPI_FUNCTION[function]
        for start in range(0, len(values), LIST_CHUNK):
            chunk = ",".join(f"{v:g}" for v in values[start : start + LIST_CHUNK])
            suffix = "" if start == 0 else ":APP"
            self.write(f":SOUR:LIST:{scpi}{suffix} {chunk}")
        if first:
            self._set_mode(function, "list")

    def staircase_sweep(
        self,
        start: float,
        stop: float,
        points: int,
        *,
        spacing: Literal["linear", "log"] = "linear",
        ranging: Literal["best", "auto", "fixed"] = "best",
        abort_on_compliance: bool = False,
    ) -> list[SourceReading]:
        """The instrument's own staircase sweep (``:SOUR:<f>:MODE SWE``) from ``start`` to
        ``stop`` in ``points`` steps; every point back from one ``:READ?``."""
        function = self._require_function()
        _check_points(points, minimum=2)
        self._check_level(start, function)
        self._check_level(stop, function)
        if spacing not in ("linear", "log"):
            raise _reject(f"sweep spacing {spacing!r} is not one of 'linear', 'log'")
        if ranging not in ("best", "auto", "fixed"):
            raise _reject(f"sweep ranging {ranging!r} is not one of 'best', 'auto', 'fixed'")
        if spacing == "log" and (start * stop <= 0):
            raise _reject(f"a log sweep from {start:g} to {stop:g} must not cross or touch zero")
        if function == "voltage":
            self.source_voltage_start = start
            self.source_voltage_stop = stop
        else:
            self.source_current_start = start
            self.source_current_stop = stop
        self.sweep_points = points
        self.sweep_spacing = spacing
        self.sweep_ranging = ranging
        self._set_mode(function, "sweep")
        return self._run_buffered(points, abort_on_compliance)

    def set_output_off_mode(self, mode: Literal["normal", "zero", "himp", "guard"]) -> None:
        """What the terminals do with the output off (``:OUTP:SMOD``): NORM (V-source at
        0 V), ZERO, HIMP (output relay open; not for frequent switching) or GUAR."""
        scpi = {"normal": "NORM", "zero": "ZERO", "himp": "HIMP", "guard": "GUAR"}
        if mode not in scpi:
            raise _reject(f"output-off mode {mode!r} is not one of {', '.join(map(repr, scpi))}")
        self.output_off_state = scpi[mode]

    def pulsed_cycles(
        self,
        level: float,
        count: int,
        *,
        source_delay: float,
        nplc: float,
        off_time: float = 0.0,
        output_off_mode: Literal["normal", "zero", "guard"] = "normal",
    ) -> list[SourceReading]:
        """``count`` auto-output-off cycles at ``level``: the output is on only for each
        source-delay-measure cycle (``:SOUR:CLE:AUTO ON``), off for ``off_time`` between
        them (trigger delay).  On time ≈ ``source_delay`` + the ``nplc`` conversion.

        The output-off state switches at every pulse, so it must be a solid-state one
        (NORM, ZERO or GUAR); HIMP opens the output relay and is refused.  Afterwards
        auto-off is cleared and the programmed level is back at 0, so a later
        ``enable_output()`` cannot drive the device DC at the pulse level."""
        function = self._require_function()
        self._check_level(level, function)
        _check_points(count)
        _check_delay("source_delay", source_delay)
        _check_delay("off_time", off_time)
        _check_nplc(nplc)
        if output_off_mode not in ("normal", "zero", "guard"):
            raise _reject(
                f"output-off mode {output_off_mode!r} cannot be used for pulsing; allowed "
                "'normal', 'zero', 'guard' (HIMP switches the output relay every pulse)"
            )
        if self._output_on is not False:
            self.disable_output()
        self.output_off_state = output_off_mode
        self._set_mode_fixed(function)
        self._write_level(function, level)
        self.source_delay = source_delay
        self._source_delay = source_delay
        self.current_nplc = nplc  # NPLC is global to all sense functions
        self._nplc = nplc
        if off_time:
            self.trigger_delay = off_time
        self._set_trigger_count(count)
        self.auto_output_off_enabled = True
        self._auto_clear = True
        readings = self._read_readings(count, expected=count, extra_s=count * off_time)
        self.auto_output_off_enabled = False
        self._auto_clear = False
        if off_time:
            self.trigger_delay = 0
        self._write_level(function, 0.0)
        return readings

    def set_trigger_output(
        self, events: Sequence[Literal["source", "delay", "sense"]] = (), *, line: int = 2
    ) -> None:
        """Trigger Link output (``:TRIG:OLIN``, ``:TRIG:OUTP``): a trigger on ``line``
        (1–4) after the source is set, after the source delay and/or after the measurement
        of every source-delay-measure cycle; no events: none.  With ``"source"`` a
        picoammeter armed on the same line starts as each auto-off pulse starts."""
        scpi = {"source": "SOUR", "delay": "DEL", "sense": "SENS"}
        bad = [e for e in events if e not in scpi]
        if bad:
            raise _reject(
                f"trigger output event(s) {', '.join(map(repr, bad))}; allowed "
                "'source', 'delay', 'sense'"
            )
        if line not in TRIGGER_LINES:
            raise _reject(f"Trigger Link line {line!r}; allowed 1–4")
        self.write(f":TRIG:OLIN {line}")
        self.write(":TRIG:OUTP " + (",".join(scpi[e] for e in dict.fromkeys(events)) or "NONE"))

    def reset_timestamp(self) -> None:
        """Zero the reading timestamps (``:SYST:TIME:RES``).  They come with 7 digits, so
        timing µs-scale pulses needs them small."""
        self.write(":SYST:TIME:RES")

    # ---------------------------------------------------------------- shutdown
    def shutdown(self, ramp: bool = True) -> None:
        """Leave the output off, whatever state the link and the instrument are in.

        Clears any half-read reply (a Ctrl-C may have landed inside a ``:READ?``),
        aborts a running sweep, ramps the programmed level to 0 in a few steps (unless
        ``ramp`` is False) and turns the output off, all as plain writes that need no
        reply; then gets back in step past a late reply and reads ``OUTPUT?`` back.  A
        dropped connection is reopened once to reach the output switch.  Every step is
        tried whatever fails; only then, if the read-back did not say the output is off,
        ``OutputStateUnknownError`` is raised (an unconfirmed off is never a success)."""
        log.info("%s: shutting down (ramp=%s)", self.resource, ramp)
        # the output-off commands go out first, without waiting for a late reply
        stale = self._interrupted
        self._interrupted = False
        self.clear_if_unanswered(stale)
        if self.connection_state() == "closed":
            self.reopen()
            stale = False
        # (command, programmed level once it has gone through)
        steps: list[tuple[str, float | None]] = [(":ABOR", None)]
        function = self._function
        if function is None and ramp and not stale:
            function = self._adopt_source_state()
        if function is not None:
            scpi = _SCPI_FUNCTION[function]
            long_name = "VOLTAGE" if function == "voltage" else "CURRENT"
            steps.append((f":SOUR:{scpi}:MODE FIX", None))
            if ramp and self._level:
                for value in np.linspace(self._level, 0.0, SHUTDOWN_RAMP_STEPS + 1)[1:]:
                    steps.append((f":SOURCE:{long_name} {value:g}", float(value)))
        steps.append((":SOURCE:CLEAR:AUTO 0", None))
        steps.append(("OUTPUT 0", None))
        reconnected = False
        for command, level in steps:
            try:
                self.write(command)
            except InstrumentError as exc:
                log.info("%s: shutdown step %r failed: %s", self.resource, command, exc)
                if self.connection_state() != "closed":
                    continue
                if reconnected:
                    break  # the link is gone again: nothing more can reach the instrument
                reconnected = True
                if not self.reopen():
                    break
                try:
                    self.write(command)
                except InstrumentError as again:
                    log.warning("%s: %r failed again: %s", self.resource, command, again)
                    continue
            if level is not None:
                self._level = level
                time.sleep(SHUTDOWN_RAMP_PAUSE_S)
        problem: str | None = "a late reply is still pending"
        if not stale or self.resynchronise(limit_s=min(self._stale_budget_s, SHUTDOWN_RESYNC_S)):
            problem = self._confirm_output_off()
        self._output_on = False
        self._auto_clear = False
        self._fixed_mode = function is not None
        self._trigger_count = None
        self.isShutdown = True
        if problem is not None:
            log.info("%s: output state unknown after shutdown: %s", self.resource, problem)
            raise OutputStateUnknownError(f"{self.resource}: output state unknown: {problem}")

    def _adopt_source_state(self) -> SourceFunction | None:
        """What a fresh connection finds (``labrig safe-off`` after a crash): the source
        function and, if the output is on, its level, so shutdown can ramp from it.
        None (no ramp, straight off) when the instrument does not say."""
        try:
            with self.temporary_timeout(CONFIRM_TIMEOUT_S):
                scpi = self.query(":SOUR:FUNC?").strip().upper()
                function = next((f for f, s in _SCPI_FUNCTION.items() if scpi.startswith(s)), None)
                if function is None or self.query("OUTPUT?").strip() not in ("1", "ON"):
                    return None
                level = parse_floats(self.query(f":SOUR:{scpi[:4]}?"), self.resource, "level")
        except InstrumentError as exc:
            log.warning("%s: source state unknown, no ramp: %s", self.resource, exc)
            return None
        self._level = level[0]
        return function  # type: ignore[return-value]

    def _confirm_output_off(self) -> str | None:
        """Read the output state back (briefly); None when it is off, else the problem."""
        if self.connection_state() == "closed":
            return "the instrument could not be reached"
        try:
            with self.temporary_timeout(CONFIRM_TIMEOUT_S):
                state = self.query("OUTPUT?").strip()
        except InstrumentError as exc:
            return f"OUTPUT? got no answer ({exc})"
        if state not in ("0", "OFF"):
            return f"OUTPUT? still answers {state!r}"
        return None

    # ----------------------------------------------------------------- helpers
    def _require_output_on(self) -> None:
        if self._output_on is False and not self._auto_clear:
            raise _reject("measure() needs the output on; call enable_output() first")

    def _set_mode(self, function: SourceFunction, mode: str) -> None:
        if function == "voltage":
            self.source_voltage_mode = mode
        else:
            self.source_current_mode = mode
        self._fixed_mode = mode == "fixed"

    def _set_mode_fixed(self, function: SourceFunction) -> None:
        if not self._fixed_mode:
            self._set_mode(function, "fixed")

    def _set_trigger_count(self, count: int) -> None:
        if self._trigger_count != count:
            self.trigger_count = count

    def _set_count(self, layer: Literal["trigger", "arm"], count: int) -> None:
        """Set one trigger-model count, keeping trigger × arm ≤ 2500 (pymeasure's guard):
        a larger product makes the 2400 file -221 and silently keep its old count, so it
        is refused before any SCPI.  The other count is the one this driver last wrote,
        asked for only when unknown and it matters (``count`` > 1)."""
        if isinstance(count, bool) or not isinstance(count, int | np.integer):
            raise _reject(f"{layer}_count {count!r} is not a whole number; allowed 1–{MAX_POINTS}")
        if not 1 <= count <= MAX_POINTS:
            raise _reject(f"{layer}_count {count} is outside the allowed 1–{MAX_POINTS}")
        other_layer = "arm" if layer == "trigger" else "trigger"
        other: int | None = getattr(self, f"_{other_layer}_count")
        if other is None and count > 1:
            other = getattr(self, f"_{other_layer}_count_scpi")
            setattr(self, f"_{other_layer}_count", other)
        if other is not None and count * other > MAX_POINTS:
            raise _reject(
                f"{layer}_count {count} × {other_layer}_count {other} = {count * other} "
                f"readings; the product is allowed at most {MAX_POINTS}"
            )
        setattr(self, f"_{layer}_count", None)  # unknown until the write went through
        setattr(self, f"_{layer}_count_scpi", count)
        setattr(self, f"_{layer}_count", int(count))

    def _write_level(self, function: SourceFunction, level: float) -> None:
        """The one way a level reaches the 2400: written, then confirmed with ``*OPC?``.

        A write returns as soon as the bytes are sent; the instrument applies the level
        when it has parsed the command.  Without the confirmation a dwell started at once
        runs (partly) at the old level -- the DC reference of pulsed EL came out up to 24 %
        off and different on every run that way."""
        self._send_level(function, level)
        self._confirm_applied(f"source {function} {level:g}")

    def _send_level(self, function: SourceFunction, level: float) -> None:
        if function == "voltage":
            self.source_voltage = level
        else:
            self.source_current = level
        self._level = level

    def _confirm_applied(self, what: str) -> None:
        """Wait until every command sent so far has been executed (``*OPC?`` -> 1)."""
        reply = self.query("*OPC?").strip()
        if reply != "1":
            raise GarbledReplyError(
                f"{self.resource}: *OPC? after {what} returned {reply!r}, expected '1'"
            )

    def _cycle_time_s(self) -> float:
        """A generous estimate of one source-delay-measure cycle, for time-outs."""
        delay = AUTO_DELAY_ESTIMATE_S if self._source_delay is None else self._source_delay
        conversions = 3 if self._autozero else 1  # signal, reference and zero phases
        return delay + conversions * self._nplc / LINE_FREQUENCY_WORST_HZ + 0.002

    def _run_buffered(self, points: int, abort_on_compliance: bool) -> list[SourceReading]:
        self.sweep_compliance_abort = "early" if abort_on_compliance else "never"
        self._set_trigger_count(points)
        if not self._output_on and not self._auto_clear:
            self.enable_output()
        return self._read_readings(points, expected=None if abort_on_compliance else points)

    def _read_readings(
        self, points: int, *, expected: int | None, extra_s: float = 0.0, sent: bool = False
    ) -> list[SourceReading]:
        """``:READ?`` (already written when ``sent``) with a time-out stretched to the
        expected duration, parsed."""
        budget = self._timeout_s + 2.0 * (points * self._cycle_time_s() + extra_s)
        with self.extended_timeout(budget):
            reply = self.read() if sent else self.query(":READ?")
        if expected is None and not reply.strip():
            return []  # aborted on compliance before the first point was measured
        readings = self._parse_readings(reply)
        if expected is not None and len(readings) != expected:
            raise GarbledReplyError(
                f"{self.resource}: :READ? returned {len(readings)} readings, expected {expected}"
            )
        if expected is None and len(readings) > points:
            raise GarbledReplyError(
                f"{self.resource}: :READ? returned {len(readings)} readings for a "
                f"{points}-point sweep"
            )
        return readings

    def _parse_readings(self, reply: str) -> list[SourceReading]:
        values = parse_floats(reply, self.resource, ":READ?")
        if len(values) % ELEMENTS_PER_READING:
            raise GarbledReplyError(
                f"{self.resource}: :READ? returned {len(values)} numbers, not a multiple of "
                f"{ELEMENTS_PER_READING} (VOLT,CURR,RES,TIME,STAT)"
            )
        readings = []
        fields = iter(values)  # five at a time: VOLT,CURR,RES,TIME,STAT
        for n, (volts, amps, _ohms, stamp, status) in enumerate(
            zip(*[fields] * ELEMENTS_PER_READING, strict=True), 1
        ):
            if abs(volts) >= OVERFLOW or abs(amps) >= OVERFLOW:
                raise OverRangeError(
                    f"{self.resource}: source-meter reading {n} "
                    "is over range; use auto range or a larger measure range"
                )
            readings.append(SourceReading(volts, amps, stamp, bool(int(status) & COMPLIANCE_BITS)))
        return readings


def connect(resource: str, *, timeout_s: float = 5.0) -> Keithley2400:
    """Open the 2400 at ``resource`` (pyvisa-py, '\\n' terminations); a wrong ``*IDN?``
    model is refused before any other command is sent."""
    instrument, identity = connect_instrument(
        Keithley2400, resource, timeout_s=timeout_s, models=MODELS
    )
    instrument._identity = identity
    return instrument
