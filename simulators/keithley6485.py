"""Simulated Keithley 6485 picoammeter reading the bench's photodiode.

The subset labrig's driver uses, after the 6485 Instruction Manual (6485-901-01):
``SYST:ZCH``, ``SYST:ZCOR[:STAT]``, ``SYST:ZCOR:ACQ``, ``CONF[:CURR[:DC]]``,
``[SENS:]CURR[:DC]:RANG[:UPP]`` (2 nA … 20 mA decades), ``:RANG:AUTO``,
``:RANG:AUTO:ULIM/LLIM``, ``[SENS:]CURR:NPLC`` (0.01–60 at 60 Hz, 0.01–50 at 50 Hz),
``SYST:AZER``, ``[SENS:]AVER[:STAT]/:COUN/:TCON REP|MOV``, ``[SENS:]MED[:STAT]/:RANK``,
``FORM:ELEM READ,UNIT,TIME,STAT``, ``INIT``, ``READ?``, ``FETC?``, ``MEAS?``,
``TRIG:COUN``, ``TRIG:DEL``, ``ARM:COUN``, ``TRAC:POIN/CLE/FEED/FEED:CONT/DATA?``,
``TRAC:TST:FORM ABS|DELT``, Trigger Link input (``TRIG:SOUR IMM|TLIN``, ``TRIG:ILIN``),
``ARM:SOUR BUS`` + ``*TRG``, ``CALC3:FORM/DATA?`` (buffer statistics; fewer than two
readings: -230), the measurement event register summed into ``*STB?``.  The 6485 has
no ``*OPT?`` among its common commands: it answers -113, as an unknown command.

Triggered by the Trigger Link (``TRIG:SOUR TLIN``, then ``INIT``), each trigger starts one
conversion at the moment another instrument (the 2400) outputs it, after the trigger
delay: the light is sampled across the integration aperture (NPLC / line frequency) at
the simulated times it falls on, while the 2400 goes on driving the device — so a window
that outlasts the pulse honestly reads the dark after it.  Filters do not apply to
triggered conversions.  ``TRAC:DATA?`` waits for conversions still running; triggers that
never came leave the buffer short.

A reading is ``+1.040564E-06A,+2.236299E+02,+0.000000E+00`` with the default elements
(READ,UNIT,TIME,STAT): the unit ``A`` is glued to the reading.  Over-range reads
+9.9E37 (status bit 0, OFLO; bit 1 flags the filter).  The input has a small offset
(a constant input offset plus a range-proportional one): with zero check on the
instrument reads just that offset; ``SYST:ZCOR:ACQ`` (zero check on) stores a fresh
offset reading and ``SYST:ZCOR ON`` subtracts it.  A reading's noise is the bench's
photodiode noise plus the 6485's own range-scaled noise; readings are quantised to
5½ digits of the range.  A conversion takes NPLC / line frequency (× 3 with autozero,
as on the 2400), plus trigger delay and a small overhead; the repeat filter takes COUNT
conversions per reading.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from labrig.config import FaultSpec
from labrig.registry import driver
from labrig.simulators.faults import FaultInjector
from labrig.simulators.keithley_common import ARM, MEAS_ROF, TRIG, KeithleyTriggerModel
from labrig.simulators.scpi import (
    NoReply,
    SCPIError,
    SCPIInstrument,
    nr1,
    nr3,
    one_param,
    parse_bool,
    parse_choice,
    parse_int,
    parse_number,
)

if TYPE_CHECKING:
    from labrig.simulators.lab import SimulatorRequest, Started

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 6485,{serial},B03   Jun 13 2005 10:50:27/A02  /E"
RANGES = (2e-9, 2e-8, 2e-7, 2e-6, 2e-5, 2e-4, 2e-3, 2e-2)
OVER_RANGE_FACTOR = 1.05  # the 2 nA range reads up to 2.1 nA
OVERFLOW = 9.9e37
MAX_READINGS = 2500
ELEMENTS = ("READ", "UNIT", "TIME", "STAT")
ST_OFLO, ST_FILTER = 1 << 0, 1 << 1
CONVERSION_OVERHEAD_S = 5e-4
#: simulated input offset: constant part and the part proportional to the range (why zero
#: correction matters: ~0.3 pA on the 2 nA range, ~1 µA on the 20 mA range)
INPUT_OFFSET_A = 2.0e-13
RANGE_OFFSET_FRACTION = 5e-5
#: instrument noise, rms, as a fraction of the range at 1 PLC
RANGE_NOISE_FRACTION = 2e-6
RESOLUTION_COUNTS = 200_000  # 5½ digits: 2.00000 nA -> 10 fA steps
#: light samples across the aperture of one triggered conversion
APERTURE_SAMPLES = 5


def _range_for(amps: float, low: float, high: float) -> float:
    """The lowest range within [low, high] that holds ``amps`` (auto range)."""
    allowed = [r for r in RANGES if low * (1 - 1e-9) <= r <= high * (1 + 1e-9)]
    for r in allowed:
        if abs(amps) <= r * OVER_RANGE_FACTOR:
            return r
    return allowed[-1]


def _fixed_range(value: float) -> float:
    """``CURR:RANG <n>`` selects the lowest range that holds ``|n|``."""
    for r in RANGES:
        if abs(value) <= r * (1 + 1e-9):
            return r
    return RANGES[-1]


class SimulatedKeithley6485(KeithleyTriggerModel, SCPIInstrument):
    """A Keithley 6485 on the simulated bench; serve it with ``SCPIServer``."""

    ELEMENTS = ELEMENTS
    ELEMENT_CHOICES = ("READing", "UNITs", "TIME", "STATus")
    MAX_READINGS = MAX_READINGS
    TRIG_DELAY_MAX_S = 999.9998
    LINK_LINES = 6
    STAT_MIN_READINGS = 2  # CALC3:DATA? on one reading or none: -230 (6485/6487 manual)

    def __init__(
        self, physics: Any, faults: list[FaultSpec] | None = None, serial: str = "1234567"
    ) -> None:
        self.physics = physics
        self.serial = serial
        self.line_frequency = float(physics.config.simulation.line_frequency_hz)
        super().__init__()
        self.faults = FaultInjector(faults, physics, driver("keithley6485").faults)
        self._rng = np.random.default_rng(physics.config.simulation.seed + 6485)
        self._t0 = physics.clock.time()
        self._arm_lock = threading.Lock()
        self._armed: dict[str, Any] | None = None
        self.reset()
        self.esr = 128

    def idn(self) -> str:
        return IDN.format(serial=self.serial)

    def reset(self) -> None:
        self.zero_check = True
        self.zero_correct = False
        self.zcor_value = 0.0
        self.range = RANGES[-1]
        self.auto_range = True
        self.ulim, self.llim = RANGES[-1], RANGES[0]
        self.nplc = 6.0 if self.line_frequency == 60 else 5.0
        self.autozero = True
        self.average = False
        self.average_count = 10
        self.average_tcon = "MOV"
        self.median = False
        self.median_rank = 1
        self._reset_trigger_model()
        self.trace_tst_delta = False
        self._window: deque[float] = deque()
        self.trig_source = "IMM"
        self._disarm()

    # ------------------------------------------------------------- command tree
    def _build_tree(self) -> None:
        t = self.tree
        self._add_bool(t, ":SYSTem:ZCHeck[:STATe]", "zero_check", self._set_bool("zero_check"))
        self._add_bool(
            t, ":SYSTem:ZCORrect[:STATe]", "zero_correct", self._set_bool("zero_correct")
        )
        t.add(":SYSTem:ZCORrect:ACQuire", set=self._acquire_zero)
        self._add_bool(t, ":SYSTem:AZERo[:STATe]", "autozero", self._set_bool("autozero"))
        t.add(":SYSTem:LFRequency", query=lambda _: nr1(int(self.line_frequency)))
        t.add(":SYSTem:TIME:RESet", set=lambda a: self._reset_time())
        t.add(":CONFigure[:CURRent][:DC]", set=self._configure, query=lambda _: '"CURR:DC"')
        t.add("[:SENSe]:FUNCtion", set=self._set_function, query=lambda _: '"CURR:DC"')
        t.add(
            "[:SENSe]:CURRent[:DC]:RANGe[:UPPer]",
            set=self._set_range,
            query=lambda _: nr3(self.range),
        )
        self._add_bool(
            t, "[:SENSe]:CURRent[:DC]:RANGe:AUTO", "auto_range", self._set_bool("auto_range")
        )
        t.add(
            "[:SENSe]:CURRent[:DC]:RANGe:AUTO:ULIMit",
            set=self._set_limit("ulim"),
            query=lambda _: nr3(self.ulim),
        )
        t.add(
            "[:SENSe]:CURRent[:DC]:RANGe:AUTO:LLIMit",
            set=self._set_limit("llim"),
            query=lambda _: nr3(self.llim),
        )
        t.add("[:SENSe]:CURRent[:DC]:NPLCycles", set=self._set_nplc, query=lambda _: nr3(self.nplc))
        self._add_bool(t, "[:SENSe]:AVERage[:STATe]", "average", self._set_bool("average"))
        t.add(
            "[:SENSe]:AVERage:COUNt",
            set=self._set_average_count,
            query=lambda _: nr1(self.average_count),
        )
        t.add("[:SENSe]:AVERage:TCONtrol", set=self._set_tcon, query=lambda _: self.average_tcon)
        self._add_bool(t, "[:SENSe]:MEDian[:STATe]", "median", self._set_bool("median"))
        t.add("[:SENSe]:MEDian:RANK", set=self._set_rank, query=lambda _: nr1(self.median_rank))
        t.add(":FORMat:ELEMents", set=self._set_elements, query=lambda _: ",".join(self.elements))
        self._add_trigger_model(t)
        t.add(f"{TRIG}:DELay:AUTO", set=lambda a: parse_bool(one_param(a)), query=lambda _: "0")
        t.add(
            f"{TRIG}:SOURce",
            set=self._set_trig_source,
            query=lambda _: self.trig_source,
        )
        # TIMer and TLINk arming are accepted but run at once, as IMMediate
        self._add_choice(t, f"{ARM}:SOURce", "arm_source", ("IMMediate", "TIMer", "BUS", "TLINk"))
        t.add(":INITiate[:IMMediate]", set=self._initiate)
        t.add(":ABORt", set=lambda a: self._abort())
        t.add(":READ", query=self._read_query)
        t.add(":MEASure[:CURRent][:DC]", query=self._measure_query)
        t.add(":TRACe:CLEar", set=lambda a: self._clear_trace())
        t.add(
            ":TRACe:TSTamp:FORMat",
            set=self._set_tst_format,
            query=lambda _: "DELT" if self.trace_tst_delta else "ABS",
        )
        t.add(":TRACe:DATA", query=self._trace_data)
        t.add(":DISPlay:ENABle", set=lambda a: parse_bool(one_param(a)), query=lambda _: "1")

    # ------------------------------------------------------------- setters
    def _set_bool(self, attr: str) -> Any:
        def setter(args: list[str]) -> None:
            setattr(self, attr, parse_bool(one_param(args)))
            if attr in ("average", "median"):
                self._window.clear()

        return setter

    def _set_trig_source(self, args: list[str]) -> None:
        self.trig_source = parse_choice(one_param(args), ("IMMediate", "TLINk"))

    def _set_function(self, args: list[str]) -> None:
        word = one_param(args).strip("'\"").upper()
        if word not in ("CURR", "CURRENT", "CURR:DC", "CURRENT:DC"):
            raise SCPIError(-224)

    def _configure(self, args: list[str]) -> None:
        """One-shot measurement set-up: one reading per trigger, no delay."""
        self.trig_count = self.arm_count = 1
        self.trig_delay = 0.0

    def _set_range(self, args: list[str]) -> None:
        value = parse_number(
            one_param(args),
            low=-0.021,
            high=0.021,
            default=RANGES[-1],
            current=self.range,
            steps=RANGES,
            minimum=RANGES[0],
            maximum=RANGES[-1],
        )
        self.range = _fixed_range(value)
        self.auto_range = False

    def _set_limit(self, attr: str) -> Any:
        def setter(args: list[str]) -> None:
            value = parse_number(
                one_param(args),
                low=-0.021,
                high=0.021,
                minimum=RANGES[0],
                maximum=RANGES[-1],
                default=RANGES[-1] if attr == "ulim" else RANGES[0],
            )
            chosen = _fixed_range(value)
            if (attr == "ulim" and chosen < self.llim) or (attr == "llim" and chosen > self.ulim):
                raise SCPIError(-221)
            setattr(self, attr, chosen)

        return setter

    def _max_nplc(self) -> float:
        return 60.0 if self.line_frequency == 60 else 50.0

    def _set_nplc(self, args: list[str]) -> None:
        self.nplc = parse_number(
            one_param(args),
            low=0.01,
            high=self._max_nplc(),
            default=6.0 if self.line_frequency == 60 else 5.0,
        )

    def _set_average_count(self, args: list[str]) -> None:
        self.average_count = parse_int(one_param(args), low=2, high=100, default=10)
        self._window.clear()

    def _set_tcon(self, args: list[str]) -> None:
        self.average_tcon = parse_choice(one_param(args), ("REPeat", "MOVing"))
        self._window.clear()

    def _set_rank(self, args: list[str]) -> None:
        self.median_rank = parse_int(one_param(args), low=1, high=5, default=1)

    def _set_tst_format(self, args: list[str]) -> None:
        self.trace_tst_delta = parse_choice(one_param(args), ("ABSolute", "DELTa")) == "DELT"

    # ------------------------------------------------------------- physics
    def _conversion_s(self) -> float:
        return self.nplc / self.line_frequency * (3 if self.autozero else 1)

    def _offset(self, rng: float) -> float:
        return INPUT_OFFSET_A + RANGE_OFFSET_FRACTION * rng

    def _convert(self, light_a: float | None = None) -> tuple[float, float]:
        """One A/D conversion: (raw current incl. offset and noise, range used).  With
        ``light_a`` (the mean photocurrent over a triggered aperture, already taken) the
        conversion does not wait on the clock: it ran while another instrument did."""
        integration = self.nplc / self.line_frequency
        if light_a is None:
            self.physics.clock.sleep(self._conversion_s() + CONVERSION_OVERHEAD_S)
            signal = 0.0 if self.zero_check else self.physics.photodiode_current(integration)
        else:
            signal = 0.0 if self.zero_check else self.physics.photodiode_noise(light_a, integration)
        rng = _range_for(signal, self.llim, self.ulim) if self.auto_range else self.range
        value = signal + self._offset(rng)
        if getattr(self.physics, "noise", False):
            sigma = RANGE_NOISE_FRACTION * rng / math.sqrt(max(self.nplc, 0.01))
            value += float(self._rng.normal(0.0, sigma))
        return value, rng

    def _filtered(self) -> tuple[float, float]:
        """A reading through the median and averaging filters, as configured."""
        if not (self.average or self.median):
            return self._convert()
        if self.average and self.average_tcon == "REP":
            samples = [self._convert() for _ in range(self.average_count)]
            values = [v for v, _ in samples]
            if self.median:
                values = [float(np.median(values))] * len(values)
            return float(np.mean(values)), samples[-1][1]
        size = self.average_count if self.average else 2 * self.median_rank + 1
        value, rng = self._convert()
        self._window.append(value)
        while len(self._window) < size:  # the moving stack fills first
            self._window.append(self._convert()[0])
        while len(self._window) > size:
            self._window.popleft()
        window = list(self._window)
        if self.median:
            window = window[-(2 * self.median_rank + 1) :]
            return float(np.median(window)), rng
        return float(np.mean(window)), rng

    def _reading(self) -> list[float]:
        self.faults.on_reading()  # may raise ConnectionDropped
        self.physics.clock.sleep(self.trig_delay)
        value, rng = self._filtered()
        status = ST_FILTER if (self.average or self.median) else 0
        return self._finish(value, rng, status, self._now())

    def _finish(self, value: float, rng: float, status: int, stamp: float) -> list[float]:
        """Over-range, zero correction and 5½-digit quantisation of a conversion."""
        over = abs(value) > rng * OVER_RANGE_FACTOR or self.faults.is_active("overrange")
        if over:
            return [OVERFLOW, stamp, float(status | ST_OFLO)]
        if self.zero_correct:
            value -= self.zcor_value
        step = rng / RESOLUTION_COUNTS
        return [round(value / step) * step, stamp, float(status)]

    # ------------------------------------------------------------- trigger link
    def _arm(self) -> None:
        """Wait on the Trigger Link for trigger count × arm count conversions."""
        self._disarm()
        with self._arm_lock:
            self._armed = {
                "total": self.trig_count * self.arm_count,
                "triggers": 0,
                "readings": {},
                "end": self.physics.clock.time(),
                "line": self.trig_ilin,
            }
        self.physics.trigger_link.connect(self.trig_ilin, self._on_trigger)

    def _disarm(self) -> None:
        with self._arm_lock:
            armed, self._armed = self._armed, None
        if armed is not None:
            self.physics.trigger_link.disconnect(armed["line"], self._on_trigger)

    def _on_trigger(self) -> None:
        """One conversion from now + trigger delay over the aperture (called in the
        triggering instrument's thread; the light is sampled as the clock passes)."""
        with self._arm_lock:
            armed = self._armed
            if armed is None or armed["triggers"] >= armed["total"]:
                return  # not armed, or the buffer is full: the trigger is ignored
            index = armed["triggers"]
            armed["triggers"] += 1
            start = self.physics.clock.time() + self.trig_delay
            aperture = self.nplc / self.line_frequency
            done_at = start + self._conversion_s() + CONVERSION_OVERHEAD_S
            armed["end"] = max(armed["end"], done_at)
        samples: list[float] = []

        def take(light_a: float) -> None:
            samples.append(light_a)
            if len(samples) == APERTURE_SAMPLES:
                value, rng = self._convert(float(np.mean(samples)))
                reading = self._finish(value, rng, 0, done_at - self._t0)
                with self._arm_lock:
                    armed["readings"][index] = reading

        for k in range(APERTURE_SAMPLES):
            at = start + (k + 0.5) * aperture / APERTURE_SAMPLES
            self.physics.schedule_photodiode_sample(at, take)

    def _collect_triggered(self) -> None:
        """Let running conversions finish, then file what the triggers produced."""
        with self._arm_lock:
            armed = self._armed
        if armed is None:
            return
        wait = armed["end"] - self.physics.clock.time()
        if wait > 0:
            self.physics.clock.sleep(wait)
        self.physics.update()
        with self._arm_lock:
            readings = [armed["readings"][k] for k in sorted(armed["readings"])]
            complete = len(readings) == armed["total"]
        if complete:
            self._disarm()
        self.last = readings
        if self.trace_feed_next:  # the buffer was set to take these readings
            self.trace = readings[: self.trace_points]
            self.trace_feed_next = not complete
        self._measurement_events(readings)

    def _acquire_zero(self, args: list[str]) -> None:
        if not self.zero_check:
            raise SCPIError(-221)  # the offset is acquired with the input shunted
        value, _ = self._convert()
        self.zcor_value = value

    def _run(self, arms: int | None = None) -> list[list[float]]:
        n_arms = self.arm_count if arms is None else arms
        readings = [self._reading() for _ in range(self.trig_count * n_arms)]
        self._feed_trace(readings)
        return readings

    def _run_bus_arm(self) -> list[list[float]]:
        return self._run(arms=1)

    def _abort(self) -> None:
        self._disarm()
        self._abort_bus()

    def _statistic_columns(self) -> list[int]:
        return [0]

    def _reading_events(self, readings: list[list[float]]) -> int:
        return MEAS_ROF if any(int(r[2]) & ST_OFLO for r in readings) else 0

    def _format(self, readings: list[list[float]], *, buffer: bool = False) -> str:
        out = []
        t_first = readings[0][1] if readings else 0.0
        previous = t_first
        for value, stamp, status in readings:
            if buffer:
                stamp, previous = (
                    (stamp - previous if self.trace_tst_delta else stamp - t_first),
                    stamp,
                )
            parts = []
            if "READ" in self.elements:
                parts.append(nr3(value) + ("A" if "UNIT" in self.elements else ""))
            if "TIME" in self.elements:
                parts.append(nr3(stamp))
            if "STAT" in self.elements:
                parts.append(nr3(status))
            out.append(",".join(parts))
        return ",".join(out)

    # ---------------------------------------------------------- reading commands
    def _initiate(self, args: list[str]) -> None:
        if args:
            raise SCPIError(-108)
        if self.trig_source == "TLIN":
            self._arm()
            return
        if self.arm_source == "BUS":
            self._arm_bus()  # the conversions wait for *TRG
            return
        self._run()

    def _read_query(self, args: list[str]) -> str:
        if self.arm_source == "BUS":
            self._arm_bus()  # waits for a *TRG this message cannot bring: no reply
            raise NoReply
        if self.trig_source == "TLIN":  # waits for triggers the link does not bring
            self.push_error(-230)
            raise NoReply
        return self._format(self._run())

    def _measure_query(self, args: list[str]) -> str:
        self._configure([])
        return self._read_query(args)

    def _trace_data(self, args: list[str]) -> str:
        self._collect_triggered()
        if not self.trace:
            self.push_error(-230)
            raise NoReply
        return self._format(self.trace, buffer=True)


def serve(request: SimulatorRequest) -> Started:
    """A SimulatedKeithley6485 on the lab's physics, served as SCPI over loopback TCP (the
    registry's ``keithley6485`` simulator)."""
    from labrig.simulators.lab import Started
    from labrig.simulators.server import SCPIServer

    instrument = SimulatedKeithley6485(request.physics, faults=request.faults)
    return Started(instrument, server=SCPIServer(instrument, clock=request.clock))
