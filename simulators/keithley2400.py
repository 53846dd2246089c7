"""Simulated Keithley 2400 SourceMeter speaking the instrument's SCPI.

It implements the subset labrig's driver (and pymeasure's ``Keithley2400``) uses, with
the instrument's reset state, reading format, status word and timing, and drives the
device under test through the shared ``CoupledPhysics``.  Syntax follows the 2400
Series User's Manual (2400S-900-01), section 18:

- source: ``:SOUR:FUNC``, ``:SOUR:VOLT|CURR[:LEV]``, ``:MODE FIX|SWE|LIST``, ``:RANG``,
  ``:RANG:AUTO``, ``:STAR/STOP/STEP`` (per function), ``:SOUR:SWE:POIN/SPAC/RANG/DIR/CAB``,
  ``:SOUR:LIST:VOLT|CURR`` (at most 100 values per command, ``:APP`` to extend to 2500),
  ``:SOUR:DEL[:AUTO]``, ``:SOUR:CLE:AUTO``;
- sense: ``:SENS:FUNC``, ``:SENS:CURR|VOLT:PROT``, ``:RANG[:AUTO]``, ``:NPLC`` (one
  global integration time, 0.01–10 PLC), ``:SYST:AZER``;
- ``:OUTP[:STAT]``, ``:OUTP:SMOD``, ``:FORM:ELEM``, trigger model (``:ARM|TRIG:COUN``,
  ``:TRIG:DEL``, ``:ARM:SOUR IMM|TIM``, ``:ARM:TIM``, Trigger Link output
  ``:TRIG:OUTP SOUR|DEL|SENS|NONE`` on ``:TRIG:OLIN``, ``:ARM:OUTP TENT|TEX|NONE``,
  ``:ARM:ILIN/OLIN``; ``:ARM:SOUR BUS`` waits for ``*TRG``), ``:INIT``, ``:READ?``,
  ``:FETC?``, ``:MEAS:VOLT|CURR?``, ``:ABOR``;
- buffer and status: ``:TRAC:*``, ``:CALC3:FORM MEAN|SDEV|MAX|MIN|PKPK`` and
  ``:CALC3:DATA?``, the measurement event register (``:STAT:MEAS[:EVEN]?``, ``:COND?``,
  ``:ENAB``: reading available, overflow, buffer available/full, compliance) summed into
  ``*STB?``, ``*OPT?`` (no options: ``0``), ``:SYST:LFR[:AUTO]``.

A reading is ``VOLT,CURR,RES,TIME,STAT`` (the elements selected, in this fixed order),
``+1.000000E+00`` style; resistance not measured reads +9.91E37; the status word sets
bit 3 on real compliance and bit 16 on range compliance.  Each source–measure cycle
lasts trigger latency + trigger delay + source delay + NPLC/f_line × (3 with autozero,
1 without), slept on ``physics.clock``; the firmware's arming, per-reading and
bus costs come on top (see ``SimulatedKeithley2400``).  ``:READ?`` with the output off (and auto-off not
enabled) files +803 "Not permitted with OUTPUT off" and sends nothing, as the
instrument does: the client times out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labrig.config import FaultSpec
from labrig.registry import driver
from labrig.simulators.faults import ConnectionDropped, FaultInjector
from labrig.simulators.keithley_common import (
    ARM,
    ARM_TCON,
    MEAS_ROF,
    OVERFLOW_READING,
    TRIG,
    TRIG_TCON,
    KeithleyTriggerModel,
)
from labrig.simulators.scpi import (
    NoReply,
    SCPIError,
    SCPIInstrument,
    keyword_matches,
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

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,{serial},C30   Mar 17 2006 09:29:29/A02  /K/J"
V_RANGES = (0.21, 2.1, 21.0, 210.0)
I_RANGES = (1.05e-6, 1.05e-5, 1.05e-4, 1.05e-3, 1.05e-2, 1.05e-1, 1.05)
V_MAX, I_MAX = 210.0, 1.05
HIGH_V, LOW_I = 21.0, 0.105  # above 21 V only 105 mA; above 105 mA only 21 V
MAX_POINTS = 2500
LIST_VALUES_PER_COMMAND = 100
NOT_MEASURED = 9.91e37
OVERFLOW = 9.9e37
TRIGGER_LATENCY_S = 1e-4
ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT")
# status word bits (2400 manual, FORMat:ELEMents STATus)
ST_OFLO, ST_FILTER, ST_FRONT, ST_COMPLIANCE = 1 << 0, 1 << 1, 1 << 2, 1 << 3
ST_V_MEAS, ST_I_MEAS, ST_R_MEAS, ST_V_SOUR, ST_I_SOUR = 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15
ST_RANGE_COMPLIANCE, ST_REMOTE_SENSE = 1 << 16, 1 << 22
OTHER = {"VOLT": "CURR", "CURR": "VOLT"}
LIMIT = {"VOLT": V_MAX, "CURR": I_MAX}
RANGES = {"VOLT": V_RANGES, "CURR": I_RANGES}
PROT_MIN = {"VOLT": 2e-4, "CURR": 1e-9}
#: measurement event register: the source is in compliance (2400 manual, status structure)
MEAS_COMPLIANCE = 1 << 14
#: ``*OPT?``: no options installed (a Contact-Check unit would answer CONTACT CHECK)
OPTIONS = "0"


def best_range(value: float, ranges: tuple[float, ...]) -> float:
    """The lowest range that holds ``value`` (the instrument's range selection)."""
    for r in ranges:
        if abs(value) <= r * (1 + 1e-9):
            return r
    return ranges[-1]


def _parse_range(args: list[str], ranges: tuple[float, ...], current: float) -> float:
    """A ``:RANGe`` parameter (a value, MIN/MAX/DEF/UP/DOWN) -> the range it selects."""
    value = parse_number(
        one_param(args),
        low=-ranges[-1],
        high=ranges[-1],
        default=ranges[-1],
        current=current,
        steps=ranges,
        minimum=ranges[0],
    )
    return best_range(value, ranges)


class SimulatedKeithley2400(KeithleyTriggerModel, SCPIInstrument):
    """A Keithley 2400 on the simulated bench; serve it with ``SCPIServer``.

    Besides each source–delay–measure cycle, the real 2400 spends time on its own
    firmware: parsing commands and arming the trigger model for each ``:READ?``,
    ``:MEAS?`` and ``:INIT``, storing each reading, and sending readings over the bus.
    That is why a buffered sweep beats point-by-point by more than 10x on the real
    instrument.  The constants below reproduce the "system speeds" of the 2400
    datasheet (typical, NPLC 0.01, autozero off, source delay 0, display off, 60 Hz /
    50 Hz; recalled figures: the search tool found no copy of the datasheet to cite):

    - sweep, source-measure to memory ≈ 1136 / 1114 readings/s (0.88 / 0.90 ms each):
      cycle (0.1 ms trigger latency + 0.17 / 0.2 ms integration) + ``READING_OVERHEAD_S``;
    - sweep, source-measure to GPIB ≈ 902 / 948 readings/s: the above +
      ``BUS_PER_READING_S`` per reading sent;
    - single reading, source-measure to GPIB ≈ 79 / 83 readings/s (~12.3 ms per
      ``:SOUR:VOLT v`` + ``:READ?``): ``ARM_OVERHEAD_S`` + one cycle + one reading
      stored and sent (12.8 ms here).  The parsing of the level command is folded into
      ``ARM_OVERHEAD_S``; measure-only single readings (256/s) are not modelled apart.

    Where the costs land: every reading's TIME element and every cycle's on-time stay
    exactly the cycle's (pulsed EL measures pulse widths from the TIME spacing and pins
    the first stamp after ``:SYST:TIME:RES``), so the firmware time of a trigger-model
    run is slept after its last measurement, before the reply.  On the real 2400 the
    arming comes before the first cycle and the storage between cycles; the total, which
    is what a client waits for, is the same.  All are slept on ``physics.clock``, so an
    infinitely fast simulated clock keeps tests instant.
    """

    ARM_OVERHEAD_S = 11.7e-3  # parsing + trigger-model set-up per :READ?, :MEAS?, :INIT
    READING_OVERHEAD_S = 0.6e-3  # per reading taken in the trigger model (storage)
    BUS_PER_READING_S = 0.2e-3  # per reading sent by :READ?, :MEAS?, :FETC?, :TRAC:DATA?

    ELEMENTS = ELEMENTS
    ELEMENT_CHOICES = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus")
    # MAX_READINGS (= MAX_POINTS), TRIG_DELAY_MAX_S and LINK_LINES: the mixin's defaults

    def __init__(
        self, physics: Any, faults: list[FaultSpec] | None = None, serial: str = "4105123"
    ) -> None:
        self.physics = physics
        self.serial = serial
        super().__init__()
        self.faults = FaultInjector(faults, physics, driver("keithley2400").faults)
        self._t0 = physics.clock.time()
        self.reset()
        self.esr = 128  # power-on

    # ------------------------------------------------------------------ state
    def idn(self) -> str:
        return IDN.format(serial=self.serial)

    def reset(self) -> None:
        self.func = "VOLT"
        self.level = {"VOLT": 0.0, "CURR": 0.0}
        self.mode = {"VOLT": "FIX", "CURR": "FIX"}
        self.src_range = {"VOLT": 21.0, "CURR": 1.05e-4}
        self.src_range_auto = {"VOLT": True, "CURR": True}
        self.start = {"VOLT": 0.0, "CURR": 0.0}
        self.stop = {"VOLT": 0.0, "CURR": 0.0}
        self.points = MAX_POINTS
        self.spacing = "LIN"
        self.sweep_ranging = "BEST"
        self.direction = "UP"
        self.cabort = "NEV"
        self.source_list = {"VOLT": [0.0], "CURR": [0.0]}
        self.src_delay = 0.0  # the manual delay; with auto on, :SOUR:DEL? reports the auto one
        self.src_delay_auto = True
        self.auto_clear = False
        self.sense = ["CURR:DC"]
        self.concurrent = True
        self.prot = {"CURR": 1.05e-4, "VOLT": 21.0}
        self.sense_range = {"CURR": 1.05e-4, "VOLT": 21.0, "RES": 2.1e5}
        self.sense_range_auto = {"CURR": True, "VOLT": True, "RES": True}
        self.nplc = 1.0
        self.autozero = True
        self.output = False
        self.smode = "NORM"
        self._reset_trigger_model()
        self.trig_source = "IMM"
        self.arm_source = "IMM"
        self.arm_timer = 0.1
        self.trig_output: list[str] = []  # Trigger Link output events: SOUR, DEL, SENS
        self.arm_output: list[str] = []  # arm-layer output events: TENT, TEX
        self.arm_ilin, self.arm_olin = 1, 2
        self.beeper = True
        self.display = True
        self.average = False
        self.average_tcon = "REP"
        self.average_count = 10
        self.remote_sense = False
        self.res_mode = "AUTO"  # auto ohms is the power-on/reset method (manual, section 4)
        self.terminals = "FRON"
        self.ovp = 210.0
        if not hasattr(self, "line_frequency_auto"):  # a SYSTem setting: *RST keeps it
            self.line_frequency_auto = False
        self.line_frequency = float(self.physics.config.simulation.line_frequency_hz)
        self.physics.output_off()

    # ------------------------------------------------------------- command tree
    def _build_tree(self) -> None:
        t = self.tree
        t.add(":SOURce:FUNCtion[:MODE]", set=self._set_func, query=lambda _: self.func)
        for f in ("VOLT", "CURR"):
            long = "VOLTage" if f == "VOLT" else "CURRent"
            t.add(
                f":SOURce:{long}[:LEVel][:IMMediate][:AMPLitude]",
                set=self._setter_level(f),
                query=self._query_num(lambda f=f: self.level[f], -LIMIT[f], LIMIT[f]),
            )
            t.add(
                f":SOURce:{long}:MODE",
                set=self._setter_choice("mode", f, ("FIXed", "SWEep", "LIST")),
                query=lambda _, f=f: self.mode[f],
            )
            t.add(
                f":SOURce:{long}:RANGe",
                set=self._setter_src_range(f),
                query=self._query_num(lambda f=f: self.src_range[f], RANGES[f][0], RANGES[f][-1]),
            )
            t.add(
                f":SOURce:{long}:RANGe:AUTO",
                set=self._setter_bool("src_range_auto", f),
                query=lambda _, f=f: nr1(self.src_range_auto[f]),
            )
            t.add(
                f":SOURce:{long}:STARt",
                set=self._setter_sweep("start", f),
                query=lambda _, f=f: nr3(self.start[f]),
            )
            t.add(
                f":SOURce:{long}:STOP",
                set=self._setter_sweep("stop", f),
                query=lambda _, f=f: nr3(self.stop[f]),
            )
            t.add(
                f":SOURce:{long}:STEP",
                set=self._setter_step(f),
                query=lambda _, f=f: nr3(self._step(f)),
            )
            t.add(
                f":SOURce:LIST:{long}",
                set=self._setter_list(f, append=False),
                query=lambda _, f=f: ",".join(nr3(v) for v in self.source_list[f]),
            )
            t.add(f":SOURce:LIST:{long}:APPend", set=self._setter_list(f, append=True))
            t.add(f":SOURce:LIST:{long}:POINts", query=lambda _, f=f: nr1(len(self.source_list[f])))
            t.add(
                f"[:SENSe]:{long}:PROTection[:LEVel]",
                set=self._setter_prot(f),
                query=self._query_num(lambda f=f: self.prot[f], PROT_MIN[f], LIMIT[f]),
            )
            t.add(f"[:SENSe]:{long}:PROTection:TRIPped", query=self._query_tripped(f))
            t.add(
                f"[:SENSe]:{long}[:DC]:RANGe[:UPPer]",
                set=self._setter_sense_range(f),
                query=lambda _, f=f: nr3(self.sense_range[f]),
            )
            t.add(
                f"[:SENSe]:{long}[:DC]:RANGe:AUTO",
                set=self._setter_bool("sense_range_auto", f),
                query=lambda _, f=f: nr1(self.sense_range_auto[f]),
            )
            t.add(f"[:SENSe]:{long}[:DC]:NPLCycles", set=self._set_nplc, query=self._query_nplc)
            t.add(f":MEASure:{long}[:DC]", query=self._measure_query(f))
            t.add(f":CONFigure:{long}[:DC]", set=self._configure(f))
        t.add("[:SENSe]:RESistance:NPLCycles", set=self._set_nplc, query=self._query_nplc)
        t.add("[:SENSe]:RESistance:MODE", set=self._set_res_mode, query=lambda _: self.res_mode)
        t.add(
            "[:SENSe]:RESistance:RANGe[:UPPer]",
            set=self._set_res_range,
            query=lambda _: nr3(self.sense_range["RES"]),
        )
        t.add(
            "[:SENSe]:RESistance:RANGe:AUTO",
            set=self._setter_bool("sense_range_auto", "RES"),
            query=lambda _: nr1(self.sense_range_auto["RES"]),
        )
        t.add(":MEASure:RESistance", query=self._measure_query("RES"))
        t.add("[:SENSe]:FUNCtion[:ON]", set=self._set_sense_on, query=self._query_sense)
        t.add("[:SENSe]:FUNCtion:OFF", set=self._set_sense_off)
        t.add("[:SENSe]:FUNCtion:ALL", set=self._set_sense_all)
        t.add("[:SENSe]:FUNCtion:OFF:ALL", set=lambda a: self._no_args(a, self.sense.clear))
        self._add_bool(t, "[:SENSe]:FUNCtion:CONCurrent", "concurrent")
        self._add_bool(t, "[:SENSe]:AVERage[:STATe]", "average")
        self._add_choice(t, "[:SENSe]:AVERage:TCONtrol", "average_tcon", ("REPeat", "MOVing"))
        t.add(
            "[:SENSe]:AVERage:COUNt",
            set=self._set_average_count,
            query=lambda _: nr1(self.average_count),
        )
        t.add(":SOURce:SWEep:POINts", set=self._set_points, query=lambda _: nr1(self._points()))
        self._add_choice(t, ":SOURce:SWEep:SPACing", "spacing", ("LINear", "LOGarithmic"))
        self._add_choice(t, ":SOURce:SWEep:RANGing", "sweep_ranging", ("BEST", "AUTO", "FIXed"))
        self._add_choice(t, ":SOURce:SWEep:DIRection", "direction", ("UP", "DOWn"))
        self._add_choice(t, ":SOURce:SWEep:CABort", "cabort", ("NEVer", "EARLy", "LATE"))
        t.add(":SOURce:DELay", set=self._set_delay, query=self._query_num(self._delay, 0, 9999.999))
        self._add_bool(t, ":SOURce:DELay:AUTO", "src_delay_auto")
        self._add_bool(t, ":SOURce:CLEar:AUTO", "auto_clear")
        t.add(
            ":SOURce:CLEar:AUTO:MODE",
            set=lambda a: parse_choice(one_param(a), ("ALWays", "TCOunt")),
            query=lambda _: "ALW",
        )
        t.add(":SOURce:CLEar[:IMMediate]", set=lambda a: self._no_args(a, self._output_off))
        t.add(
            ":SOURce:VOLTage:PROTection[:LEVel]", set=self._set_ovp, query=lambda _: nr3(self.ovp)
        )
        t.add(":SYSTem:AZERo[:STATe]", set=self._set_autozero, query=lambda _: nr1(self.autozero))
        t.add(
            ":SYSTem:LFRequency", set=self._set_lfr, query=lambda _: nr1(int(self.line_frequency))
        )
        self._add_bool(t, ":SYSTem:LFRequency:AUTO", "line_frequency_auto", self._set_lfr_auto)
        t.add("*OPT", query=lambda _: OPTIONS)
        self._add_bool(t, ":SYSTem:BEEPer:STATe", "beeper")
        t.add(":SYSTem:BEEPer[:IMMediate]", set=lambda a: None)
        self._add_bool(t, ":SYSTem:RSENse", "remote_sense")
        t.add(":SYSTem:TIME:RESet", set=lambda a: self._no_args(a, self._reset_time))
        t.add(":SYSTem:TIME", query=lambda _: nr3(self._now()))
        self._add_bool(t, ":DISPlay:ENABle", "display")
        self._add_choice(t, ":ROUTe:TERMinals", "terminals", ("FRONt", "REAR"))
        t.add(":OUTPut[:STATe]", set=self._set_output, query=lambda _: nr1(self.output))
        self._add_choice(t, ":OUTPut:SMODe", "smode", ("NORMal", "ZERO", "HIMPedance", "GUARd"))
        t.add(
            ":FORMat:ELEMents[:SENSe]",
            set=self._set_elements,
            query=lambda _: ",".join(self.elements),
        )
        self._add_trigger_model(t)
        self._add_choice(t, f"{TRIG}:SOURce", "trig_source", ("IMMediate", "TLINk"))
        self._add_choice(
            t,
            f"{ARM}:SOURce",
            "arm_source",
            ("IMMediate", "TIMer", "MANual", "BUS", "TLINk", "NSTest", "PSTest", "BSTest"),
        )
        t.add(f"{ARM}:TIMer", set=self._set_arm_timer, query=lambda _: nr3(self.arm_timer))
        t.add(":TRIGger:CLEar", set=lambda a: None)
        t.add(
            f"{TRIG_TCON}:OUTPut",
            set=self._set_trig_output,
            query=lambda _: ",".join(self.trig_output) or "NONE",
        )
        t.add(
            f"{ARM_TCON}:OUTPut",
            set=self._set_arm_output,
            query=lambda _: ",".join(self.arm_output) or "NONE",
        )
        for attr, name in (("arm_ilin", f"{ARM_TCON}:ILINe"), ("arm_olin", f"{ARM_TCON}:OLINe")):
            t.add(name, set=self._set_line(attr), query=lambda _, a=attr: nr1(getattr(self, a)))
        t.add(":INITiate[:IMMediate]", set=self._initiate)
        t.add(":ABORt", set=lambda a: self._no_args(a, self._abort_bus))
        t.add(":READ", query=self._read_query)
        t.add(":TRACe:CLEar", set=lambda a: self._no_args(a, self._clear_trace))
        t.add(":TRACe:DATA", query=self._trace_data)

    # ------------------------------------------------------------- helpers
    def _query_num(self, getter: Any, low: float, high: float) -> Any:
        """A numeric query that also answers ``? MIN`` / ``? MAX``."""

        def query(args: list[str]) -> str:
            if args:
                word = one_param(args).upper()
                if word in ("MIN", "MINIMUM"):
                    return nr3(low)
                if word in ("MAX", "MAXIMUM"):
                    return nr3(high)
                raise SCPIError(-224)
            return nr3(getter())

        return query

    def _setter_bool(self, attr: str, key: str) -> Any:
        def setter(args: list[str]) -> None:
            getattr(self, attr)[key] = parse_bool(one_param(args))

        return setter

    def _setter_choice(self, attr: str, key: str, choices: tuple[str, ...]) -> Any:
        def setter(args: list[str]) -> None:
            getattr(self, attr)[key] = parse_choice(one_param(args), choices)

        return setter

    # ----------------------------------------------------------- source setters
    def _set_func(self, args: list[str]) -> None:
        self.func = parse_choice(one_param(args), ("VOLTage", "CURRent", "MEMory"))
        if self.func == "MEM":
            raise SCPIError(-221)
        self._reapply()

    def _check_power_envelope(self, f: str, value: float, compliance: float | None = None) -> None:
        """The 2400's envelope: > 21 V only up to 105 mA, > 105 mA only up to 21 V."""
        if f == "VOLT":
            limit_i = self.prot["CURR"] if compliance is None else compliance
            if abs(value) > HIGH_V and limit_i > LOW_I:
                raise SCPIError(-221)
        else:
            limit_v = self.prot["VOLT"] if compliance is None else compliance
            if abs(value) > LOW_I and limit_v > HIGH_V:
                raise SCPIError(-221)

    def _setter_level(self, f: str) -> Any:
        def setter(args: list[str]) -> None:
            limit = V_MAX if f == "VOLT" else I_MAX
            value = parse_number(one_param(args), low=-limit, high=limit, default=0.0)
            if not self.src_range_auto[f] and abs(value) > self.src_range[f] * (1 + 1e-9):
                raise SCPIError(-222)
            self._check_power_envelope(f, value)
            self.level[f] = value
            if self.src_range_auto[f]:
                self.src_range[f] = best_range(value, V_RANGES if f == "VOLT" else I_RANGES)
            if f == self.func:
                self._reapply()

        return setter

    def _setter_src_range(self, f: str) -> Any:
        ranges = V_RANGES if f == "VOLT" else I_RANGES

        def setter(args: list[str]) -> None:
            self.src_range[f] = _parse_range(args, ranges, self.src_range[f])
            self.src_range_auto[f] = False

        return setter

    def _setter_sweep(self, attr: str, f: str) -> Any:
        def setter(args: list[str]) -> None:
            limit = V_MAX if f == "VOLT" else I_MAX
            getattr(self, attr)[f] = parse_number(
                one_param(args), low=-limit, high=limit, default=0.0
            )

        return setter

    def _step(self, f: str) -> float:
        n = self._points()
        return 0.0 if n <= 1 else (self.stop[f] - self.start[f]) / (n - 1)

    def _points(self) -> int:
        return self.points

    def _setter_step(self, f: str) -> Any:
        def setter(args: list[str]) -> None:
            limit = V_MAX if f == "VOLT" else I_MAX
            step = parse_number(one_param(args), low=-2 * limit, high=2 * limit, default=0.0)
            span = self.stop[f] - self.start[f]
            if step == 0 or span == 0:
                self.points = 1
                return
            n = int(math.floor(abs(span / step) + 1e-9)) + 1
            if n > MAX_POINTS:
                raise SCPIError(-222)
            self.points = n

        return setter

    def _set_points(self, args: list[str]) -> None:
        self.points = parse_int(one_param(args), low=1, high=MAX_POINTS, default=MAX_POINTS)

    def _setter_list(self, f: str, *, append: bool) -> Any:
        limit = V_MAX if f == "VOLT" else I_MAX

        def setter(args: list[str]) -> None:
            if not args or args == [""]:
                raise SCPIError(-109)
            if len(args) > LIST_VALUES_PER_COMMAND:
                raise SCPIError(-223)
            values = [parse_number(a, low=-limit, high=limit) for a in args]
            new = (self.source_list[f] if append else []) + values
            if len(new) > MAX_POINTS:
                raise SCPIError(-223)
            self.source_list[f] = new

        return setter

    def _delay(self) -> float:
        """What ``:SOUR:DEL?`` reports: the auto-selected delay while auto delay is on
        (1 ms after ``*RST``, as the instrument reads back), else the manual one."""
        return self._source_delay_s()

    def _set_delay(self, args: list[str]) -> None:
        self.src_delay = parse_number(one_param(args), low=0.0, high=9999.999, default=0.0)
        self.src_delay_auto = False

    def _set_ovp(self, args: list[str]) -> None:
        word = one_param(args).upper()
        self.ovp = 210.0 if word in ("NONE",) else parse_number(word, low=20.0, high=210.0)

    # ----------------------------------------------------------- sense setters
    def _setter_prot(self, f: str) -> Any:
        default = {"CURR": 1.05e-4, "VOLT": 21.0}[f]

        def setter(args: list[str]) -> None:
            value = parse_number(one_param(args), low=PROT_MIN[f], high=LIMIT[f], default=default)
            source = OTHER[f]
            if self.func == source:  # the 2400's power envelope, seen from the limit
                self._check_power_envelope(source, self.level[source], compliance=value)
            self.prot[f] = value
            self._reapply()

        return setter

    def _setter_sense_range(self, f: str) -> Any:
        ranges = V_RANGES if f == "VOLT" else I_RANGES

        def setter(args: list[str]) -> None:
            self.sense_range[f] = _parse_range(args, ranges, self.sense_range[f])
            self.sense_range_auto[f] = False
            self._reapply()

        return setter

    def _set_res_range(self, args: list[str]) -> None:
        self.sense_range["RES"] = parse_number(one_param(args), low=0.0, high=2.1e8, default=2.1e5)
        self.sense_range_auto["RES"] = False

    def _set_res_mode(self, args: list[str]) -> None:
        self.res_mode = parse_choice(one_param(args), ("MANual", "AUTO"))

    def _set_nplc(self, args: list[str]) -> None:
        self.nplc = parse_number(one_param(args), low=0.01, high=10.0, default=1.0)

    def _query_nplc(self, args: list[str]) -> str:
        return nr3(self.nplc)

    def _set_autozero(self, args: list[str]) -> None:
        word = one_param(args).upper()
        if word == "ONCE":
            self.autozero = False  # one autozero now, then off (manual 18-107)
            self.physics.clock.sleep(self._integration_s())
            return
        self.autozero = parse_bool(word)

    def _set_lfr_auto(self, args: list[str]) -> None:
        """Auto line frequency: the instrument measures the mains (the bench's) itself."""
        self.line_frequency_auto = parse_bool(one_param(args))
        if self.line_frequency_auto:
            self.line_frequency = float(self.physics.config.simulation.line_frequency_hz)

    def _set_lfr(self, args: list[str]) -> None:
        value = parse_number(one_param(args), low=50, high=60)
        if value not in (50, 60):
            raise SCPIError(-224)
        self.line_frequency = value

    def _sense_name(self, text: str) -> str:
        """``'CURR'``, ``"CURRent:DC"``, ``VOLT`` … -> the name ``:SENS:FUNC?`` reports."""
        stem, _, dc = text.strip().strip("'\"").upper().partition(":")
        if dc not in ("", "DC"):
            raise SCPIError(-224)
        for keyword, name in (("VOLTage", "VOLT:DC"), ("CURRent", "CURR:DC")):
            if keyword_matches(stem, keyword):
                return name
        if keyword_matches(stem, "RESistance") and not dc:
            return "RES"
        raise SCPIError(-224)

    def _set_sense_on(self, args: list[str]) -> None:
        if not args or args == [""]:
            raise SCPIError(-109)
        names = [self._sense_name(a) for a in args]
        if not self.concurrent:
            self.sense.clear()
        for name in names:
            if name not in self.sense:
                self.sense.append(name)

    def _set_sense_off(self, args: list[str]) -> None:
        for name in [self._sense_name(a) for a in args]:
            if name in self.sense:
                self.sense.remove(name)

    def _set_sense_all(self, args: list[str]) -> None:
        self._no_args(args, lambda: self.sense.__init__(["VOLT:DC", "CURR:DC", "RES"]))

    def _query_sense(self, args: list[str]) -> str:
        return ",".join(f'"{name}"' for name in self.sense)

    def _set_average_count(self, args: list[str]) -> None:
        self.average_count = parse_int(one_param(args), low=1, high=100, default=10)

    # -------------------------------------------------------- output, format, trigger
    def _set_output(self, args: list[str]) -> None:
        on = parse_bool(one_param(args))
        if on:
            self.output = True
            self._apply(self.level[self.func])
        else:
            self._output_off()

    def _output_off(self) -> None:
        self.output = False
        self.physics.output_off()

    def _set_trig_output(self, args: list[str]) -> None:
        """``:TRIG:OUTP SOUR,DEL,SENS`` or ``NONE``: Trigger Link output after the source
        is set, after the source delay and after the measurement of each cycle."""
        if not args or args == [""]:
            raise SCPIError(-109)
        events = {parse_choice(a, ("SOURce", "DELay", "SENSe", "NONE")) for a in args}
        if "NONE" in events:
            if len(events) > 1:
                raise SCPIError(-224)
            events = set()
        self.trig_output = [e for e in ("SOUR", "DEL", "SENS") if e in events]

    def _set_arm_output(self, args: list[str]) -> None:
        """``:ARM:OUTP TENT,TEX`` or ``NONE``: Trigger Link output on entering / leaving
        the trigger layer."""
        if not args or args == [""]:
            raise SCPIError(-109)
        events = {parse_choice(a, ("TENTer", "TEXit", "NONE")) for a in args}
        if "NONE" in events:
            if len(events) > 1:
                raise SCPIError(-224)
            events = set()
        self.arm_output = [e for e in ("TENT", "TEX") if e in events]

    def _trigger_out(self, event: str) -> None:
        if event in self.trig_output:
            self.physics.trigger_link.pulse(self.trig_olin)

    def _set_arm_timer(self, args: list[str]) -> None:
        self.arm_timer = parse_number(one_param(args), low=0.001, high=99999.99, default=0.1)

    # ------------------------------------------------------------- physics
    def _compliance_limit(self) -> tuple[float, bool]:
        """Effective limit of the measured quantity and whether the range sets it."""
        m = OTHER[self.func]
        limit = self.prot[m]
        if not self.sense_range_auto[m] and self.sense_range[m] < limit:
            return self.sense_range[m], True
        return limit, False

    def _apply(self, level: float) -> Any:
        """Drive the bench at ``level`` of the source function; output on."""
        limit, _ = self._compliance_limit()
        with self.physics.lock:
            if self.func == "VOLT":
                return self.physics.source_voltage(level, compliance_a=limit)
            return self.physics.source_current(level, compliance_v=limit)

    def _reapply(self) -> None:
        if self.output:
            self._apply(self.level[self.func])

    def _integration_s(self) -> float:
        return self.nplc / self.line_frequency * (3 if self.autozero else 1)

    def _source_delay_s(self) -> float:
        if not self.src_delay_auto:
            return self.src_delay
        if self.func == "VOLT" and not self.sense_range_auto["CURR"]:
            return {1.05e-6: 3e-3, 1.05e-5: 2e-3}.get(self.sense_range["CURR"], 1e-3)
        return 1e-3

    def _sweep_levels(self) -> list[float]:
        f = self.func
        mode = self.mode[f]
        if mode == "FIX":
            return [self.level[f]]
        if mode == "LIST":
            return list(self.source_list[f])
        n = self._points()
        a, b = self.start[f], self.stop[f]
        if n == 1:
            levels = [a]
        elif self.spacing == "LIN":
            levels = list(np.linspace(a, b, n))
        else:
            if a == 0 or b == 0 or (a > 0) != (b > 0):
                raise SCPIError(-221)
            levels = list(np.geomspace(a, b, n))
        if self.direction == "DOW":
            levels.reverse()
        return [float(v) for v in levels]

    def _reading(self, op: Any, compliance: bool, by_range: bool) -> list[float]:
        f, m = self.func, OTHER[self.func]
        values = {"VOLT": op.voltage, "CURR": op.current}
        meas_range = (
            self.sense_range[m]
            if not self.sense_range_auto[m]
            else best_range(values[m], V_RANGES if m == "VOLT" else I_RANGES)
        )
        if getattr(self.physics, "noise", False) and not compliance:
            sigma = 2e-6 * meas_range / math.sqrt(self.nplc)
            values[m] += float(self.physics.rng.normal(0.0, sigma))
        status = ST_FRONT | (ST_V_SOUR if f == "VOLT" else ST_I_SOUR)
        status |= ST_V_MEAS if "VOLT:DC" in self.sense else 0
        status |= ST_I_MEAS if "CURR:DC" in self.sense else 0
        status |= ST_R_MEAS if "RES" in self.sense else 0
        status |= ST_FILTER if self.average else 0
        status |= ST_REMOTE_SENSE if self.remote_sense else 0
        if compliance:
            status |= ST_RANGE_COMPLIANCE if by_range else ST_COMPLIANCE
        resistance = NOT_MEASURED
        if "RES" in self.sense:
            resistance = values["VOLT"] / values["CURR"] if values["CURR"] else OVERFLOW
        return [values["VOLT"], values["CURR"], resistance, self._now(), float(status)]

    def _run_trigger_model(self, arms: int | None = None) -> list[list[float]]:
        """The arm/trigger layers: source–delay–measure cycles over the sweep points
        (``arms`` passes of the arm layer; default ``:ARM:COUN``)."""
        if not self.output and not self.auto_clear:
            raise SCPIError(803)
        levels = self._sweep_levels()
        if self.mode[self.func] != "FIX" and self.sweep_ranging == "FIX":
            if any(abs(v) > self.src_range[self.func] * (1 + 1e-9) for v in levels):
                raise SCPIError(-221)
        for v in levels:
            self._check_power_envelope(self.func, v)
        clock = self.physics.clock
        readings: list[list[float]] = []
        index = 0
        aborted = False
        n_arms = self.arm_count if arms is None else arms
        for arm in range(n_arms):
            arm_start = clock.time()
            for _ in range(self.trig_count):
                level = levels[index % len(levels)]
                index += 1
                try:
                    self.faults.on_reading()
                except ConnectionDropped:
                    self.last = readings
                    raise
                clock.sleep(TRIGGER_LATENCY_S + self.trig_delay)
                op = self._apply(level)
                limit, by_range = self._compliance_limit()
                if self.cabort == "EARL" and op.in_compliance:
                    aborted = True
                    break
                self._trigger_out("SOUR")
                clock.sleep(self._source_delay_s())
                self._trigger_out("DEL")
                # measure at the end of the integration: the device may heat meanwhile
                clock.sleep(self._integration_s())
                op = self.physics.operating_point
                readings.append(self._reading(op, op.in_compliance, by_range))
                self._trigger_out("SENS")
                if self.auto_clear:
                    self.physics.output_off()
                if self.cabort == "LATE" and op.in_compliance:
                    aborted = True
                    break
            if aborted:
                break
            if self.arm_source == "TIM" and arm < n_arms - 1:
                clock.sleep(max(0.0, arm_start + self.arm_timer - clock.time()))
        if aborted or self.auto_clear:
            # a compliance abort turns the output off; auto-clear leaves it off
            self.output = False
            self.physics.output_off()
        elif self.output and self.mode[self.func] != "FIX":
            self._apply(self.level[self.func])  # back to the bias level after a sweep
        # the firmware's arming and per-reading storage (see the class docstring)
        clock.sleep(self.ARM_OVERHEAD_S + self.READING_OVERHEAD_S * len(readings))
        self._feed_trace(readings)
        return readings

    def _format(self, readings: list[list[float]]) -> str:
        """The readings as sent over the bus (which takes ``BUS_PER_READING_S`` each)."""
        self.physics.clock.sleep(self.BUS_PER_READING_S * len(readings))
        keep = [ELEMENTS.index(e) for e in self.elements]
        return ",".join(nr3(r[i]) for r in readings for i in keep)

    def _statistic_columns(self) -> list[int]:
        """Voltage and current are in every stored reading (one measured, the other the
        source readback, or both measured); resistance only when it is measured.  In the
        manual's order: voltage, current, resistance."""
        return [0, 1, 2] if "RES" in self.sense else [0, 1]

    def _reading_events(self, readings: list[list[float]]) -> int:
        bits = 0
        for reading in readings:
            status = int(reading[4])
            if status & (ST_COMPLIANCE | ST_RANGE_COMPLIANCE):
                bits |= MEAS_COMPLIANCE
            if any(abs(v) >= OVERFLOW_READING for v in reading[:2]):
                bits |= MEAS_ROF
        return bits

    def _run_bus_arm(self) -> list[list[float]]:
        return self._run_trigger_model(arms=1)

    # ---------------------------------------------------------- reading commands
    def _initiate(self, args: list[str]) -> None:
        if self.arm_source == "BUS":
            self._no_args(args, self._arm_bus)  # the cycles wait for *TRG
            return
        self._no_args(args, self._run_trigger_model)

    def _read_query(self, args: list[str]) -> str:
        if self.arm_source == "BUS":
            self._arm_bus()  # waits for a *TRG this message cannot bring: no reply
            raise NoReply
        try:
            readings = self._run_trigger_model()
        except SCPIError as exc:
            if exc.code == 803:
                self.push_error(803)
                raise NoReply from None
            raise
        return self._format(readings)

    def _trace_data(self, args: list[str]) -> str:
        if not self.trace:
            self.push_error(-230)
            raise NoReply
        return self._format(self.trace)

    def _query_tripped(self, f: str) -> Any:
        def query(args: list[str]) -> str:
            op = self.physics.operating_point
            return nr1(bool(self.output and op.in_compliance and OTHER[self.func] == f))

        return query

    def _configure(self, f: str) -> Any:
        def setter(args: list[str]) -> None:
            self.sense = [f"{f}:DC" if f != "RES" else "RES"]
            self.trig_count = self.arm_count = 1
            self.trig_delay = 0.0
            self.autozero = True
            self.output = True
            self._apply(self.level[self.func])

        return setter

    def _measure_query(self, f: str) -> Any:
        configure = self._configure(f)

        def query(args: list[str]) -> str:
            configure([])
            return self._read_query([])

        return query


def serve(request: SimulatorRequest) -> Started:
    """A SimulatedKeithley2400 on the lab's physics, served as SCPI over loopback TCP (the
    registry's ``keithley2400`` simulator)."""
    from labrig.simulators.lab import Started
    from labrig.simulators.server import SCPIServer

    instrument = SimulatedKeithley2400(request.physics, faults=request.faults)
    return Started(instrument, server=SCPIServer(instrument, clock=request.clock))
