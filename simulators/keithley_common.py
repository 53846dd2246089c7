"""What the simulated Keithley 2400 and 6485 share: the trigger model's counts and
delay, the Trigger Link lines, the reading buffer (``:TRACe``), ``:FORMat:ELEMents``,
the timestamp clock and the small setter factories.

Both instruments implement these the same way (2400 and 6485 manuals, sections on
triggering and the buffer); only the limits differ, so each instrument states its own
in the class attributes below and keeps only its physics and what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labrig.simulators import scpi
from labrig.simulators.scpi import CommandTree, NoReply, SCPIError


class KeithleyTriggerModel:
    """Mixin for a simulated Keithley on ``bench`` with a ``readings`` buffer.

    The instrument sets ``ELEMENTS`` (the short element names in output order),
    ``ELEMENT_CHOICES`` (their long forms for ``:FORM:ELEM``), ``MAX_READINGS``,
    ``TRIG_DELAY_MAX_S`` and ``LINK_LINES``, calls ``_reset_trigger_model`` from
    ``reset`` and ``_add_trigger_model`` from ``_build_tree``, and implements
    ``_format`` (how readings are sent).
    """

    bench: Any
    ELEMENTS: tuple[str, ...]
    ELEMENT_CHOICES: tuple[str, ...]
    MAX_READINGS = 2500
    TRIG_DELAY_MAX_S = 999.9999
    LINK_LINES = 4

    # provided by SCPIInstrument and the instrument (annotations only: no attributes)
    push_error: Callable[..., None]
    _format: Callable[[list[list[float]]], str]
    _t0: float

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

    def _add_trigger_model(self, t: CommandTree) -> None:
        """The commands both instruments answer alike."""
        t.add(
            ":FORMat[:DATA]",
            set=lambda a: scpi.parse_choice(scpi.one_param(a), ("ASCii",)),
            query=lambda _: "ASC",
        )
        t.add(
            ":TRIGger:COUNt",
            set=self._set_count("trig_count"),
            query=lambda _: scpi.nr1(self.trig_count),
        )
        t.add(
            ":ARM:COUNt", set=self._set_count("arm_count"), query=lambda _: scpi.nr1(self.arm_count)
        )
        t.add(":TRIGger:DELay", set=self._set_trig_delay, query=lambda _: scpi.nr3(self.trig_delay))
        for attr, name in (("trig_ilin", ":TRIGger:ILINe"), ("trig_olin", ":TRIGger:OLINe")):
            t.add(
                name, set=self._set_line(attr), query=lambda _, a=attr: scpi.nr1(getattr(self, a))
            )
        t.add(":FETCh", query=self._fetch_query)
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
        return self.bench.clock.time() - self._t0

    def _reset_time(self) -> None:
        self._t0 = self.bench.clock.time()

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

    def _fetch_query(self, args: list[str]) -> str:
        if not self.last:
            self.push_error(-230)
            raise NoReply
        return self._format(self.last)
