"""Keithley 6485 picoammeter reading the calibrated photodiode (pymeasure has no driver).

Commands follow the Model 6485 Instruction Manual (6485-901-01): zero check and zero
correct (``SYST:ZCH``, ``SYST:ZCOR:ACQ``, ``SYST:ZCOR``) done the manual's way on the
2 nA range; ranges 2 nA–20 mA in decades with auto range and its limits
(``:SENS:CURR:RANG[:AUTO[:LLIM|:ULIM]]``); NPLC 0.01–60 (at most 50 on 50 Hz mains: 1 s); the averaging filter
(``:SENS:AVER``, repeat type, count 2–100); ``:FORM:ELEM READ,TIME`` so ``READ?``
returns reading and timestamp; buffered bursts through ``TRAC`` (at most 2500
readings).  An over-range or overload reading comes back as +9.9E37 (NAN as +9.91E37);
this driver raises ``OverRangeError`` for it and never returns it as a number.
"""

from __future__ import annotations

import logging

from pymeasure.instruments import Instrument as PymeasureInstrument
from pymeasure.instruments import SCPIMixin
from pymeasure.instruments.validators import (
    strict_discrete_range,
    strict_discrete_set,
    strict_range,
)

from labrig.drivers.visa import VisaTransport, connect_instrument, parse_floats, parse_identity
from labrig.errors import GarbledReplyError, InstrumentError, InstrumentSettingError, OverRangeError
from labrig.interfaces import CurrentReading, InstrumentIdentity, Picoammeter

log = logging.getLogger(__name__)

MODELS = ("6485",)
RANGES_A = (2e-9, 2e-8, 2e-7, 2e-6, 2e-5, 2e-4, 2e-3, 2e-2)
NPLC_LIMITS = (0.01, 60.0)
FILTER_COUNT_LIMITS = (2, 100)
MAX_BURST = 2500
OVERFLOW = 9.9e37
ELEMENTS = "READ,TIME"
ELEMENTS_PER_READING = 2
LINE_FREQUENCY_WORST_HZ = 50.0
TRIGGER_LINES = range(1, 7)
MAX_TRIGGER_DELAY_S = 999.9998


def _reject(message: str) -> InstrumentSettingError:
    return InstrumentSettingError(f"Keithley 6485: {message}")


def _range_text(current_range: float | None) -> str:
    return "auto range" if current_range is None else f"{current_range:g} A range"


def _check_range(name: str, value: float) -> float:
    """The decade range equal to ``value`` (the 6485 ranges are exactly 2·10^n A)."""
    for r in RANGES_A:
        if abs(value - r) <= r * 1e-6:
            return r
    allowed = ", ".join(f"{r:g}" for r in RANGES_A)
    raise _reject(f"{name} {value:g} A is not a 6485 range; allowed {allowed} A")


class Keithley6485(VisaTransport, SCPIMixin, PymeasureInstrument, Picoammeter):
    """The bench's photometer: one photodiode current, or a buffered burst of them."""

    zero_check_enabled = PymeasureInstrument.control(
        "SYST:ZCH?",
        "SYST:ZCH %d",
        """Control zero check (bool): input shunted, for zeroing and safe reconnection.""",
        validator=strict_discrete_set,
        values={True: 1, False: 0},
        map_values=True,
    )
    zero_correct_enabled = PymeasureInstrument.control(
        "SYST:ZCOR?",
        "SYST:ZCOR %d",
        """Control whether the acquired zero correction is subtracted (bool).""",
        validator=strict_discrete_set,
        values={True: 1, False: 0},
        map_values=True,
    )
    current_range = PymeasureInstrument.control(
        ":SENS:CURR:RANG?",
        ":SENS:CURR:RANG %g",
        """Control the fixed current range in A (2e-9 … 2e-2; setting it ends auto range).""",
        validator=strict_discrete_set,
        values=RANGES_A,
    )
    current_range_auto_enabled = PymeasureInstrument.control(
        ":SENS:CURR:RANG:AUTO?",
        ":SENS:CURR:RANG:AUTO %d",
        """Control auto range (bool).""",
        validator=strict_discrete_set,
        values={True: 1, False: 0},
        map_values=True,
    )
    auto_range_lower_limit = PymeasureInstrument.control(
        ":SENS:CURR:RANG:AUTO:LLIM?",
        ":SENS:CURR:RANG:AUTO:LLIM %g",
        """Control the lowest range auto range may pick (A).""",
        validator=strict_discrete_set,
        values=RANGES_A,
    )
    auto_range_upper_limit = PymeasureInstrument.control(
        ":SENS:CURR:RANG:AUTO:ULIM?",
        ":SENS:CURR:RANG:AUTO:ULIM %g",
        """Control the highest range auto range may pick (A).""",
        validator=strict_discrete_set,
        values=RANGES_A,
    )
    nplc = PymeasureInstrument.control(
        ":SENS:CURR:NPLC?",
        ":SENS:CURR:NPLC %g",
        """Control the integration time in power-line cycles (0.01 to 60).""",
        validator=strict_range,
        values=NPLC_LIMITS,
    )
    filter_enabled = PymeasureInstrument.control(
        ":SENS:AVER?",
        ":SENS:AVER %d",
        """Control the digital averaging filter (bool).""",
        validator=strict_discrete_set,
        values={True: 1, False: 0},
        map_values=True,
    )
    filter_repeat = PymeasureInstrument.control(
        ":SENS:AVER:TCON?",
        ":SENS:AVER:TCON %s",
        """Control the filter type: True repeat (independent readings), False moving.""",
        validator=strict_discrete_set,
        values={True: "REP", False: "MOV"},
        map_values=True,
    )
    filter_count = PymeasureInstrument.control(
        ":SENS:AVER:COUN?",
        ":SENS:AVER:COUN %d",
        """Control the number of readings averaged by the filter (2 to 100).""",
        validator=lambda v, vs: strict_discrete_range(v, vs, 1),
        values=FILTER_COUNT_LIMITS,
        cast=int,
    )
    trigger_count = PymeasureInstrument.control(
        ":TRIG:COUN?",
        ":TRIG:COUN %d",
        """Control the trigger count (readings per INIT / READ?, 1 to 2500).""",
        validator=lambda v, vs: strict_discrete_range(v, vs, 1),
        values=(1, MAX_BURST),
        cast=int,
    )
    buffer_points = PymeasureInstrument.control(
        ":TRAC:POIN?",
        ":TRAC:POIN %d",
        """Control the buffer size in readings (1 to 2500).""",
        validator=lambda v, vs: strict_discrete_range(v, vs, 1),
        values=(1, MAX_BURST),
        cast=int,
    )

    def __init__(self, adapter, name: str = "Keithley 6485 Picoammeter", **kwargs) -> None:
        self._range: float | None = None  # None: auto range
        self._auto_limits: tuple[float, float] = (RANGES_A[0], RANGES_A[-1])
        self._nplc: float = 6.0  # the *RST default
        self._filter_count: int = 0
        self._trigger_count: int | None = None
        #: what one ``READ?`` may take beyond the time-out: twice a reading (set with the
        #: NPLC and filter, not worked out again for every reading)
        self._read_margin_s = 2 * self._reading_time_s()
        self._line_frequency: float | None = None
        self._identity: InstrumentIdentity | None = None
        super().__init__(adapter, name, **kwargs)
        self.write(f":FORM:ELEM {ELEMENTS}")

    @staticmethod
    def check_range(name: str, value: float) -> float:
        """The 6485 range equal to ``value`` (2·10^n A, 2 nA–20 mA), or
        ``InstrumentSettingError`` naming ``name``; needs no instrument (procedures ask
        before anything is opened)."""
        return _check_range(name, value)

    def identity(self) -> InstrumentIdentity:
        if self._identity is None:
            self._identity = parse_identity(self.query("*IDN?"), self.resource)
        return self._identity

    # --------------------------------------------------------------- Picoammeter
    def configure(
        self,
        *,
        nplc: float = 1.0,
        current_range: float | None = None,
        autorange_limits: tuple[float, float] | None = None,
        filter_count: int = 0,
    ) -> None:
        """Integration time, range, filter; then zero check off so the input measures."""
        lo, hi = NPLC_LIMITS
        if not lo <= nplc <= hi:
            raise _reject(f"nplc {nplc:g} is outside the allowed {lo:g}–{hi:g} power-line cycles")
        if nplc > 50 and self.line_frequency_hz() < 55:
            raise _reject(f"nplc {nplc:g} is outside the allowed {lo:g}–50 cycles on 50 Hz mains")
        fixed = None if current_range is None else _check_range("current_range", current_range)
        limits = None
        if autorange_limits is not None:
            if fixed is not None:
                raise _reject("autorange_limits apply to auto range; give current_range=None")
            low = _check_range("autorange lower limit", autorange_limits[0])
            high = _check_range("autorange upper limit", autorange_limits[1])
            if low > high:
                raise _reject(f"autorange limits {low:g} A > {high:g} A; give (lower, upper)")
            limits = (low, high)
        fmin, fmax = FILTER_COUNT_LIMITS
        if filter_count != 0 and not fmin <= filter_count <= fmax:
            raise _reject(
                f"filter_count {filter_count} is outside the allowed {fmin}–{fmax} (0: filter off)"
            )

        self.nplc = nplc
        if fixed is not None:
            self.current_range = fixed
        else:
            self.current_range_auto_enabled = True
            if limits is not None:
                self.auto_range_lower_limit, self.auto_range_upper_limit = limits
        if filter_count:
            self.filter_repeat = True
            self.filter_count = filter_count
            self.filter_enabled = True
        else:
            self.filter_enabled = False
        # the 6485 powers up and resets with zero check on (input shunted): measuring
        # needs it off, or every reading is the ~0 A of the shorted input
        self.zero_check_enabled = False
        self._nplc = nplc
        self._range = fixed
        self._auto_limits = limits or (RANGES_A[0], RANGES_A[-1])
        self._filter_count = filter_count
        self._read_margin_s = 2 * self._reading_time_s()

    def zero_correct(self) -> None:
        """The manual's sequence: zero check on, 2 nA range, one reading, acquire it as
        the zero, correction on, back to the configured range, zero check off."""
        self.zero_check_enabled = True
        self.current_range = RANGES_A[0]
        self._set_trigger_count(1)
        self.write(":INIT")
        with self.extended_timeout(self._timeout_s + self._read_margin_s):
            self._wait_complete()
        self.write("SYST:ZCOR:ACQ")
        self.zero_correct_enabled = True
        if self._range is None:
            self.current_range_auto_enabled = True
        else:
            self.current_range = self._range
        self.zero_check_enabled = False

    def read(self) -> CurrentReading:  # type: ignore[override]  # Instrument.read is the transport
        """One reading from ``READ?``; OverRangeError instead of +9.9E37."""
        self._set_trigger_count(1)
        with self.extended_timeout(self._timeout_s + self._read_margin_s):
            readings = self._parse(self.query("READ?"), "READ?")
        if len(readings) != 1:
            raise GarbledReplyError(f"{self.resource}: READ? returned {len(readings)} readings")
        return readings[0]

    def read_burst(self, count: int) -> list[CurrentReading]:
        """``count`` readings back to back into the buffer, then read in one go."""
        if not 1 <= count <= MAX_BURST:
            raise _reject(f"a burst of {count} readings is not possible; allowed 1–{MAX_BURST}")
        self.write(":TRAC:CLE")
        self.buffer_points = count
        self.write(":TRAC:FEED SENS")
        self.write(":TRAC:FEED:CONT NEXT")
        self._set_trigger_count(count)
        self.write(":INIT")
        with self.extended_timeout(self._timeout_s + 2 * count * self._reading_time_s()):
            self._wait_complete()
        readings = self._parse(self.query(":TRAC:DATA?"), ":TRAC:DATA?")
        if len(readings) != count:
            raise GarbledReplyError(
                f"{self.resource}: :TRAC:DATA? returned {len(readings)} readings, expected {count}"
            )
        return readings

    def arm_link_burst(self, count: int, *, line: int = 2, delay_s: float = 0.0) -> None:
        """Arm ``count`` conversions, one per Trigger Link trigger on ``line`` (1–6), each
        starting ``delay_s`` after its trigger, into the buffer (``TRIG:SOUR TLIN``,
        ``INIT``).  Returns once the instrument is armed; another instrument then sends
        the triggers and ``fetch_link_burst`` collects the readings."""
        if not 1 <= count <= MAX_BURST:
            raise _reject(f"a burst of {count} readings is not possible; allowed 1–{MAX_BURST}")
        if line not in TRIGGER_LINES:
            raise _reject(f"Trigger Link line {line!r}; allowed 1–6")
        if not 0 <= delay_s <= MAX_TRIGGER_DELAY_S:
            raise _reject(
                f"trigger delay {delay_s:g} s is outside the allowed 0–{MAX_TRIGGER_DELAY_S:g} s"
            )
        self.write(":TRAC:CLE")
        self.buffer_points = count
        self.write(":TRAC:FEED SENS")
        self.write(":TRAC:FEED:CONT NEXT")
        self._set_trigger_count(count)
        self.write(f":TRIG:DEL {delay_s:.6g}")
        self.write(f":TRIG:ILIN {line}")
        self.write(":TRIG:SOUR TLIN")
        self.write(":INIT")
        # answered only after INIT is taken: armed before the triggers can come
        source = self.query(":TRIG:SOUR?").strip()
        if source not in ("TLIN", "TLINK"):
            raise GarbledReplyError(f"{self.resource}: trigger source {source!r} after arming")

    def fetch_link_burst(self, count: int) -> list[CurrentReading]:
        """The readings of an ``arm_link_burst`` (waiting for conversions still running);
        back to immediate triggering afterwards, whatever happened.  Fewer readings than
        ``count`` means triggers never came (cable, line or the other instrument)."""
        try:
            with self.extended_timeout(self._timeout_s + self._read_margin_s):
                readings = self._parse(self.query(":TRAC:DATA?"), ":TRAC:DATA?")
        finally:
            self.write(":ABOR")
            self.write(":TRIG:SOUR IMM")
            self.write(":TRIG:DEL 0")
        if len(readings) != count:
            raise InstrumentError(
                f"{self.resource}: {len(readings)} of {count} triggers reached the 6485; is "
                "the Trigger Link cable connected and the line right?"
            )
        return readings

    def shutdown(self) -> None:
        """The 6485 sources nothing; abort a running burst, clear a half-read reply.
        Never raises."""
        stale = self._interrupted
        self._interrupted = False  # :ABOR goes out at once; getting in step can wait
        self.clear_if_unanswered(stale)
        try:
            self.write(":ABOR")
        except InstrumentError as exc:
            log.warning("%s: shutdown: %s", self.resource, exc)
        self._interrupted = stale
        self._trigger_count = None
        self.isShutdown = True

    def line_frequency_hz(self) -> float:
        """The mains frequency the instrument integrates over (asked once, then cached):
        the longest integration is 1 s, i.e. 60 PLC at 60 Hz but only 50 PLC at 50 Hz."""
        if self._line_frequency is None:
            self._line_frequency = self.query_floats("SYST:LFR?")[0]
        return self._line_frequency

    # ----------------------------------------------------------------- helpers
    # ``read`` is the Picoammeter reading here, so pymeasure's transport read (used by
    # ``ask``/``values`` and the properties) is reached through ``read_reply``.
    def read_reply(self, **kwargs) -> str:
        return VisaTransport.read(self, **kwargs)

    def ask(self, command: str, query_delay: float | None = None) -> str:
        self.write(command)
        self.wait_for(query_delay)
        return self.read_reply()

    def query(self, command: str) -> str:
        self.write(command)
        return self.read_reply()

    def _wait_complete(self) -> None:
        reply = self.query("*OPC?").strip()
        if reply != "1":
            raise GarbledReplyError(f"{self.resource}: *OPC? replied {reply!r}, expected '1'")

    def _set_trigger_count(self, count: int) -> None:
        if self._trigger_count != count:
            self._trigger_count = None
            self.trigger_count = count
            self._trigger_count = count

    def _reading_time_s(self) -> float:
        per = self._nplc / LINE_FREQUENCY_WORST_HZ * 3 + 0.002  # autozero phases
        return per * max(1, self._filter_count)

    def _parse(self, reply: str, command: str) -> list[CurrentReading]:
        values = parse_floats(reply.replace("A", ""), self.resource, command)
        if len(values) % ELEMENTS_PER_READING:
            raise GarbledReplyError(
                f"{self.resource}: {command} returned {len(values)} numbers, not "
                f"reading,timestamp pairs"
            )
        readings = []
        fields = iter(values)  # reading,timestamp pairs
        for amps, stamp in zip(fields, fields, strict=True):
            if abs(amps) >= OVERFLOW:
                raise OverRangeError(
                    f"photometer over range at {_range_text(self._range)}; "
                    "increase the range or enable auto range"
                    if self._range is not None
                    else f"photometer over range on auto range (top {self._auto_limits[1]:g} A); "
                    "raise the auto-range upper limit or reduce the light"
                )
            readings.append(CurrentReading(amps, stamp))
        return readings


def connect(resource: str, *, timeout_s: float = 5.0) -> Keithley6485:
    """Open the 6485 at ``resource`` (pyvisa-py, '\\n' terminations); a wrong ``*IDN?``
    model is refused before any other command is sent."""
    instrument, identity = connect_instrument(
        Keithley6485, resource, timeout_s=timeout_s, models=MODELS
    )
    instrument._identity = identity
    return instrument
