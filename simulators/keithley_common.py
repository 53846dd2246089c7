"""What the simulated Keithley 2400 and 6485 share: the trigger model's counts and
delay, the Trigger Link lines, bus triggers (``:ARM:SOUR BUS`` + ``*TRG``), the reading
buffer (``:TRACe``) and its statistics (``:CALCulate3``), the measurement event register
(``:STATus:MEASurement``), ``:FORMat:ELEMents``, the timestamp clock and the small setter
factories.

Both instruments implement these the same way (2400 and 6485 manuals, sections on
triggering, the buffer and the status structure); only the limits differ, so each
instrument states its own in the class attributes below and keeps only its physics and
what differs.  The trigger-model headers carry the optional nodes of the manuals'
syntax: ``:TRIGger[:SEQuence[1]]``, ``:ARM[:SEQuence[1]][:LAYer[1]]`` and
``[:TCONfigure]`` before the Trigger Link settings (``:TRIG:SEQ:DEL?`` is ``:TRIG:DEL?``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from labrig.simulators import scpi
from labrig.simulators.scpi import STB_MSB, CommandTree, NoReply, SCPIError, StatusRegister

TRIG = ":TRIGger[:SEQuence]"
TRIG_TCON = ":TRIGger[:SEQuence][:TCONfigure]"
ARM = ":ARM[:SEQuence][:LAYer]"
ARM_TCON = ":ARM[:SEQuence][:TCONfigure]"

# measurement event register bits shared by the 2400 and 6485 (status structure
# sections: reading available, reading overflow, buffer available (>= 2), buffer full)
MEAS_RAV, MEAS_ROF, MEAS_BAV, MEAS_BFL = 1 << 6, 1 << 7, 1 << 8, 1 << 9
#: what :CALC3:DATA? reports for a statistic it cannot compute ("not a number")
STAT_NAN = 9.91e37
OVERFLOW_READING = 9.9e37
STATISTICS = ("MEAN", "SDEViation", "MAXimum", "MINimum", "PKPK")


class KeithleyTriggerModel:
    """Mixin for a simulated Keithley on ``physics`` with a ``readings`` buffer.

    The instrument sets ``ELEMENTS`` (the short element names in output order),
    ``ELEMENT_CHOICES`` (their long forms for ``:FORM:ELEM``), ``MAX_READINGS``,
    ``TRIG_DELAY_MAX_S`` and ``LINK_LINES``, calls ``_reset_trigger_model`` from
    ``reset`` and ``_add_trigger_model`` from ``_build_tree``, and implements
    ``_format`` (how readings are sent).
    """

    physics: Any
    ELEMENTS: tuple[str, ...]
    ELEMENT_CHOICES: tuple[str, ...]
    MAX_READINGS = 2500
    TRIG_DELAY_MAX_S = 999.9999
    LINK_LINES = 4
    #: fewest buffered readings :CALC3:DATA? works on (fewer: ``STAT_NAN`` on the 2400;
    #: the 6485 files -230 and sends nothing, as its manual says)
    STAT_MIN_READINGS = 0

    # provided by SCPIInstrument and the instrument (annotations only: no attributes)
    push_error: Callable[..., None]
    status: dict[str, tuple[StatusRegister, int]]
    _add_status_register: Callable[[str], None]
    _format: Callable[[list[list[float]]], str]
    _t0: float

    def _statistic_columns(self) -> list[int]:
        """Which elements of a stored reading :CALC3 works on (measured functions only)."""
        raise NotImplementedError

    def _reading_events(self, readings: list[list[float]]) -> int:
        """Measurement-event bits these readings raise besides RAV (overflow, compliance)."""
        return 0

    def _run_bus_arm(self) -> list[list[float]]:
        """One pass of the arm layer (``trig_count`` readings), for a ``*TRG``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def _reset_trigger_model(self) -> None:
        """``*RST`` values of the trigger model, buffer and format."""
        self.elements = list(self.ELEMENTS)
        self.trig_count = 1
        self.arm_count = 1
        self.trig_delay = 0.0
        self.trig_ilin = 1
        self.trig_olin = 2
        self.trace: list[list[float]] = []
        self.trace_points = 100
        self.trace_feed_next = False
        self.last: list[list[float]] | None = None
        self.calc3_format = "MEAN"
        self.arm_source = "IMM"
        self._bus_arms = 0  # arm events still awaited from *TRG
        self._bus_readings: list[list[float]] = []

    def _add_trigger_model(self, t: CommandTree) -> None:
        """The commands both instruments answer alike."""
        t.add(
            ":FORMat[:DATA]",
            set=lambda a: scpi.parse_choice(scpi.one_param(a), ("ASCii",)),
            query=lambda _: "ASC",
        )
        t.add(
            f"{TRIG}:COUNt",
            set=self._set_count("trig_count"),
            query=lambda _: scpi.nr1(self.trig_count),
        )
        t.add(
            f"{ARM}:COUNt",
            set=self._set_count("arm_count"),
            query=lambda _: scpi.nr1(self.arm_count),
        )
        t.add(f"{TRIG}:DELay", set=self._set_trig_delay, query=lambda _: scpi.nr3(self.trig_delay))
        for attr, name in (
            ("trig_ilin", f"{TRIG_TCON}:ILINe"),
            ("trig_olin", f"{TRIG_TCON}:OLINe"),
        ):
            t.add(
                name, set=self._set_line(attr), query=lambda _, a=attr: scpi.nr1(getattr(self, a))
            )
        t.add(":FETCh", query=self._fetch_query)
        self._add_choice(t, ":CALCulate3:FORMat", "calc3_format", STATISTICS)
        t.add(":CALCulate3:DATA", query=self._calc3_data)
        self.status["MEASurement"] = (StatusRegister(), STB_MSB)
        self._add_status_register("MEASurement")
        t.add(
            ":TRACe:POINts", set=self._set_trace_points, query=lambda _: scpi.nr1(self.trace_points)
        )
        t.add(":TRACe:POINts:ACTual", query=lambda _: scpi.nr1(len(self.trace)))
        t.add(
            ":TRACe:FEED",
            set=lambda a: scpi.parse_choice(
                scpi.one_param(a), ("SENSe", "CALCulate1", "CALCulate2")
            ),
            query=lambda _: "SENS",
        )
        t.add(
            ":TRACe:FEED:CONTrol",
            set=self._set_trace_control,
            query=lambda _: "NEXT" if self.trace_feed_next else "NEV",
        )

    def _add_bool(
        self, t: CommandTree, pattern: str, attr: str, setter: Callable | None = None
    ) -> None:
        """A command that sets (``setter``, or a plain boolean) and reports ``attr``."""
        t.add(
            pattern,
            set=setter or self._set_attr_bool(attr),
            query=lambda _: scpi.nr1(getattr(self, attr)),
        )

    def _add_choice(
        self, t: CommandTree, pattern: str, attr: str, choices: tuple[str, ...]
    ) -> None:
        """A command that sets ``attr`` to one of ``choices`` and reports it."""
        t.add(
            pattern,
            set=self._set_attr_choice(attr, choices),
            query=lambda _: getattr(self, attr),
        )

    # ------------------------------------------------------------- timestamps
    def _now(self) -> float:
        return self.physics.clock.time() - self._t0

    def _reset_time(self) -> None:
        self._t0 = self.physics.clock.time()

    # ------------------------------------------------------------- setter factories
    @staticmethod
    def _no_args(args: list[str], fn: Callable[[], Any]) -> None:
        if args:
            raise SCPIError(-108)
        fn()

    def _set_attr_bool(self, attr: str) -> Callable[[list[str]], None]:
        def setter(args: list[str]) -> None:
            setattr(self, attr, scpi.parse_bool(scpi.one_param(args)))

        return setter

    def _set_attr_choice(self, attr: str, choices: tuple[str, ...]) -> Callable[[list[str]], None]:
        def setter(args: list[str]) -> None:
            setattr(self, attr, scpi.parse_choice(scpi.one_param(args), choices))

        return setter

    def _set_count(self, attr: str) -> Callable[[list[str]], None]:
        """``:TRIG:COUN`` / ``:ARM:COUN``: their product is limited by the buffer."""

        def setter(args: list[str]) -> None:
            value = scpi.parse_int(scpi.one_param(args), low=1, high=self.MAX_READINGS, default=1)
            other = self.arm_count if attr == "trig_count" else self.trig_count
            if value * other > self.MAX_READINGS:
                raise SCPIError(-221)
            setattr(self, attr, value)

        return setter

    def _set_line(self, attr: str) -> Callable[[list[str]], None]:
        def setter(args: list[str]) -> None:
            setattr(self, attr, scpi.parse_int(scpi.one_param(args), low=1, high=self.LINK_LINES))

        return setter

    def _set_trig_delay(self, args: list[str]) -> None:
        self.trig_delay = scpi.parse_number(
            scpi.one_param(args), low=0.0, high=self.TRIG_DELAY_MAX_S, default=0.0
        )

    def _set_elements(self, args: list[str]) -> None:
        if not args or args == [""]:
            raise SCPIError(-109)
        chosen = {scpi.parse_choice(a, self.ELEMENT_CHOICES) for a in args}
        self.elements = [e for e in self.ELEMENTS if e in chosen]

    def _set_trace_points(self, args: list[str]) -> None:
        self.trace_points = scpi.parse_int(
            scpi.one_param(args), low=1, high=self.MAX_READINGS, default=100
        )

    def _set_trace_control(self, args: list[str]) -> None:
        self.trace_feed_next = scpi.parse_choice(scpi.one_param(args), ("NEXT", "NEVer")) == "NEXT"

    # ------------------------------------------------------------- buffer
    def _feed_trace(self, readings: list[list[float]]) -> None:
        """After a run: the readings become ``:FETC?``'s, and fill the buffer if armed."""
        self.last = readings
        if self.trace_feed_next:
            room = self.trace_points - len(self.trace)
            self.trace.extend(readings[: max(0, room)])
            if len(self.trace) >= self.trace_points:
                self.trace_feed_next = False
        self._measurement_events(readings)

    def _clear_trace(self) -> None:
        self.trace.clear()
        self._measurement_events([])

    def _measurement_events(self, readings: list[list[float]]) -> None:
        """Readings taken and the buffer's state, into the measurement event register
        (so ``:STAT:MEAS:ENAB 512`` + ``*SRE 1`` shows a full buffer in ``*STB?``)."""
        register = self.status["MEASurement"][0]
        if readings:
            register.signal(MEAS_RAV | self._reading_events(readings))
        condition = register.condition & ~(MEAS_BAV | MEAS_BFL)
        if len(self.trace) >= 2:
            condition |= MEAS_BAV
        if self.trace and len(self.trace) >= self.trace_points:
            condition |= MEAS_BFL
        register.set_condition(condition)

    def _calc3_data(self, args: list[str]) -> str:
        """``:CALC3:DATA?``: the selected statistic of each measured function in the buffer."""
        columns = self._statistic_columns()
        if len(self.trace) < self.STAT_MIN_READINGS:
            self.push_error(-230)
            raise NoReply
        if not self.trace:
            return ",".join(scpi.nr3(STAT_NAN) for _ in columns)
        data = np.asarray(self.trace, dtype=float)[:, columns]
        out = []
        for column in data.T:
            if np.any(np.abs(column) >= OVERFLOW_READING) or (
                self.calc3_format == "SDEV" and len(column) < 2
            ):
                out.append(STAT_NAN)  # an overflowed reading spoils the statistic
                continue
            out.append(
                {
                    "MEAN": np.mean,
                    "SDEV": lambda c: np.std(c, ddof=1),
                    "MAX": np.max,
                    "MIN": np.min,
                    "PKPK": np.ptp,
                }[self.calc3_format](column)
            )
        return ",".join(scpi.nr3(float(v)) for v in out)

    # ------------------------------------------------------------- bus triggers
    def _arm_bus(self) -> None:
        """``:INIT`` with ``:ARM:SOUR BUS``: wait for ``arm_count`` ``*TRG``s."""
        self._bus_arms = self.arm_count
        self._bus_readings = []

    def _abort_bus(self) -> None:
        self._bus_arms = 0

    def bus_trigger(self) -> None:
        """``*TRG``: one arm event; ignored (-211) unless ``:INIT`` waits for it."""
        if not self._bus_arms:
            raise SCPIError(-211)
        self._bus_arms -= 1
        self._bus_readings.extend(self._run_bus_arm())
        self.last = list(self._bus_readings)

    def _fetch_query(self, args: list[str]) -> str:
        if not self.last:
            self.push_error(-230)
            raise NoReply
        return self._format(self.last)
