"""A small SCPI engine shared by the simulated instruments.

Each simulated instrument declares its command tree once (``tree.add(":SOURce:VOLTage
[:LEVel][:IMMediate][:AMPLitude]", set=..., query=...)``); the engine does what every
SCPI instrument does the same way: short/long mnemonics, case folding, optional nodes,
``;`` chaining with the tree-relative rule, common ``*`` commands, parameter parsing
(numbers with MIN/MAX/DEF/UP/DOWN, booleans, choices, lists) and an error queue read by
``:SYST:ERR?``.  Instruments only write what differs: their state and their physics.

Why not pyvisa-sim: it matches the exact strings declared in YAML (properties with
simple range checks), so it has no short/long forms, no tree-relative ``;`` chains and
no coupling of an instrument to the bench's physics — the things a driver bug must
trip over here.

Over a socket the reply goes out as soon as it is made (the TCP stream is the output
queue), so -410 "Query INTERRUPTED" only arises on the in-process ``write``/``read``
path.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labrig.simulators.faults import FaultInjector

# The SCPI / IEEE 488.2 errors the Keithley instruments report, with their wording.
ERROR_MESSAGES: dict[int, str] = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -120: "Numeric data error",
    -140: "Character data error",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Parameter data out of range",
    -223: "Too much data",
    -211: "Trigger ignored",
    -224: "Illegal parameter value",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
    803: "Not permitted with OUTPUT off",
}

ERROR_QUEUE_SIZE = 10

# Standard event status register bits (IEEE 488.2).
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME, ESR_PON = 1, 4, 8, 16, 32, 128
# Status byte bits (Keithley): measurement, error available, questionable, message
# available, event summary, master summary, operation summary.
STB_MSB, STB_EAV, STB_QSB, STB_MAV, STB_ESB, STB_MSS, STB_OSB = 1, 4, 8, 16, 32, 64, 128


class StatusRegister:
    """One SCPI status register set: condition (live), event (latched; read clears it)
    and enable (which events reach the status byte's summary bit)."""

    def __init__(self) -> None:
        self.condition = 0
        self.event = 0
        self.enable = 0

    def signal(self, bits: int) -> None:
        """Latch ``bits`` as events (a reading taken, a buffer filled ...)."""
        self.event |= bits

    def set_condition(self, bits: int) -> None:
        """The live condition; bits that newly turn on latch as events (SCPI's default
        positive-transition filter)."""
        self.event |= bits & ~self.condition
        self.condition = bits

    def read_event(self) -> int:
        value, self.event = self.event, 0
        return value

    @property
    def summary(self) -> bool:
        return bool(self.event & self.enable)


class SCPIError(Exception):
    """Raised by a command handler; the engine files it in the error queue."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Error")
        super().__init__(f'{code},"{self.message}"')


class NoReply(Exception):
    """A query handler that, like the instrument, puts nothing in the output queue
    (e.g. ``:READ?`` with the output off): the client's read times out."""


# ----------------------------------------------------------------------- formatting
def nr3(value: float) -> str:
    """Keithley ASCII number: ``+1.000000E+00``."""
    return f"{value:+.6E}"


def nr1(value: int | bool) -> str:
    return str(int(value))


# ------------------------------------------------------------------- header patterns
@dataclass(frozen=True)
class _Token:
    short: str
    long: str
    optional: bool
    suffix: str = ""  # a numbered node (``CALCulate3``) needs its number

    def matches(self, mnemonic: str) -> bool:
        base = mnemonic.rstrip("0123456789")
        suffix = mnemonic[len(base) :]
        if self.suffix:
            if suffix != self.suffix:
                return False
        elif suffix and suffix != "1":  # SOUR1, OUTP1, SENS1: the only channel there is
            return False
        return base in (self.short, self.long)


def _parse_pattern(pattern: str) -> list[_Token]:
    """``[:SOURce]:VOLTage[:LEVel]`` -> tokens; upper-case letters are the short form."""
    tokens = []
    for part in re.findall(r"\[:?[A-Za-z]+\]|:?[A-Za-z*]+\d*", pattern):
        optional = part.startswith("[")
        stripped = part.strip("[]:")
        name = stripped.rstrip("0123456789")
        suffix = stripped[len(name) :]
        short = "".join(ch for ch in name if ch.isupper() or ch == "*")
        tokens.append(
            _Token(short=short or name.upper(), long=name.upper(), optional=optional, suffix=suffix)
        )
    return tokens


def _match(tokens: Sequence[_Token], mnemonics: Sequence[str]) -> bool:
    if not tokens:
        return not mnemonics
    head, rest = tokens[0], tokens[1:]
    if mnemonics and head.matches(mnemonics[0]) and _match(rest, mnemonics[1:]):
        return True
    return head.optional and _match(rest, mnemonics)


Setter = Callable[[list[str]], None]
Getter = Callable[[list[str]], str]


@dataclass
class Command:
    pattern: str
    tokens: list[_Token]
    set: Setter | None
    query: Getter | None


class CommandTree:
    """The commands an instrument understands, declared once with their handlers."""

    def __init__(self) -> None:
        self._commands: list[Command] = []

    def add(self, pattern: str, *, set: Setter | None = None, query: Getter | None = None) -> None:
        self._commands.append(Command(pattern, _parse_pattern(pattern), set, query))

    def find(self, mnemonics: Sequence[str]) -> Command | None:
        for command in self._commands:
            if _match(command.tokens, mnemonics):
                return command
        return None


# ------------------------------------------------------------------ parameter parsing
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """``text`` cut at every ``separator`` that is not inside a '...' or "..." string:
    the one rule for both of SCPI's separators, ``;`` between the units of a program
    message and ``,`` between a header's parameters."""
    if "'" not in text and '"' not in text:
        return text.split(separator)
    pieces, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == separator:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    pieces.append("".join(current))
    return pieces


def split_params(text: str) -> list[str]:
    """Comma-separated parameters, honouring quoted strings; whitespace stripped."""
    if not text.strip():
        return []
    return [param.strip() for param in split_outside_quotes(text, ",")]


def one_param(args: list[str]) -> str:
    if not args or args[0] == "":
        raise SCPIError(-109)
    if len(args) > 1:
        raise SCPIError(-108)
    return args[0]


def keyword_matches(word: str, keyword: str) -> bool:
    """``word`` is the short or long form of ``keyword`` (upper case = short form)."""
    short = "".join(ch for ch in keyword if ch.isupper() or ch.isdigit())
    return word.upper() in (short, keyword.upper())


def parse_number(
    text: str,
    *,
    low: float,
    high: float,
    default: float | None = None,
    current: float | None = None,
    steps: Sequence[float] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """An NRf value or MIN/MAX/DEF (and UP/DOWN over ``steps``), range-checked (-222)."""
    word = text.strip().strip("'\"").upper()
    if keyword_matches(word, "MINimum"):
        return low if minimum is None else minimum
    if keyword_matches(word, "MAXimum"):
        return high if maximum is None else maximum
    if keyword_matches(word, "DEFault"):
        if default is None:
            raise SCPIError(-224)
        return default
    if word in ("UP", "DOWN") and steps is not None and current is not None:
        ordered = sorted(steps)
        index = min(range(len(ordered)), key=lambda i: abs(ordered[i] - current))
        index = index + 1 if word == "UP" else index - 1
        return ordered[max(0, min(len(ordered) - 1, index))]
    if not _NUMBER_RE.match(word):
        raise SCPIError(-104 if word[:1].isalpha() else -120)
    value = float(word)
    if not low <= value <= high:
        raise SCPIError(-222)
    return value


def parse_int(text: str, *, low: int, high: int, default: int | None = None) -> int:
    value = parse_number(text, low=low, high=high, default=default)
    return int(round(value))


def parse_bool(text: str) -> bool:
    word = text.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    if _NUMBER_RE.match(word):  # SCPI: any non-zero number is true
        return round(float(word)) != 0
    raise SCPIError(-224)


def parse_choice(text: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (given in mixed case: upper = short form); returns the short
    form.  Quotes are allowed around it, as the Keithleys accept ``'CURR'``."""
    word = text.strip().strip("'\"").upper()
    for choice in choices:
        if keyword_matches(word, choice):
            return "".join(ch for ch in choice if ch.isupper() or ch.isdigit())
    raise SCPIError(-224)


# ----------------------------------------------------------------------- the engine
class SCPIInstrument:
    """Base of a simulated SCPI instrument: the engine plus the common commands.

    Subclasses fill ``self.tree`` in ``_build_tree`` and implement ``idn``, ``reset``.
    ``handle(message)`` runs one program message (one line) and returns the response
    message or ``None``; ``write``/``read`` give the same engine an in-process
    output-queue interface (with -410 when a response is left unread).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.errors: deque[tuple[int, str]] = deque()
        self.esr = ESR_PON
        self.ese = 0
        self.sre = 0
        self.tree = CommandTree()
        self.faults: FaultInjector | None = None
        # status register sets and the status-byte bit each one sums into
        self.status: dict[str, tuple[StatusRegister, int]] = {
            "OPERation": (StatusRegister(), STB_OSB),
            "QUEStionable": (StatusRegister(), STB_QSB),
        }
        self._build_common()
        self._build_tree()
        self._output: deque[str] = deque()

    # -- to override --------------------------------------------------------------
    def _build_tree(self) -> None:
        raise NotImplementedError

    def idn(self) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        """``*RST``: the instrument's reset state."""

    # -- error queue ----------------------------------------------------------------
    def push_error(self, code: int, message: str | None = None) -> None:
        message = message or ERROR_MESSAGES.get(code, "Error")
        if -199 <= code <= -100:
            self.esr |= ESR_CME
        elif -299 <= code <= -200 or code > 0:
            self.esr |= ESR_EXE
        elif -399 <= code <= -300:
            self.esr |= ESR_DDE
        elif -499 <= code <= -400:
            self.esr |= ESR_QYE
        if len(self.errors) >= ERROR_QUEUE_SIZE:
            self.errors[-1] = (-350, ERROR_MESSAGES[-350])
            return
        if len(self.errors) == ERROR_QUEUE_SIZE - 1:
            self.errors.append((-350, ERROR_MESSAGES[-350]))
            return
        self.errors.append((code, message))

    def pop_error(self) -> str:
        code, message = self.errors.popleft() if self.errors else (0, ERROR_MESSAGES[0])
        return f'{code},"{message}"'

    def clear_status(self) -> None:
        """``*CLS``: the error queue and every event register."""
        self.errors.clear()
        self.esr = 0
        for register, _ in self.status.values():
            register.event = 0

    def bus_trigger(self) -> None:
        """``*TRG`` (a GPIB trigger): ignored (-211) unless the instrument waits for one."""
        raise SCPIError(-211)

    # -- message handling ---------------------------------------------------------
    def handle(self, message: str) -> str | None:
        """Run one program message; return the response message (without terminator),
        or ``None`` when no query produced output."""
        with self.lock:
            return self._handle(message)

    def _handle(self, message: str) -> str | None:
        responses: list[str] = []
        prefix: list[str] = []
        for unit in split_outside_quotes(message, ";"):
            unit = unit.strip()
            if not unit:
                continue
            header, _, params = unit.partition(" ")
            if "\t" in header:
                header, _, more = header.partition("\t")
                params = f"{more} {params}"
            header, params = header.strip(), params.strip()
            is_query = header.endswith("?")
            name = header[:-1] if is_query else header
            if name.startswith(":*"):  # ``;:*CLS``: the colon before a common command
                name = name[1:]
            if name.startswith("*"):
                mnemonics = [name.upper()]
            else:
                absolute = name.startswith(":")
                parts = name[1:].upper().split(":") if absolute else name.upper().split(":")
                if any(not re.fullmatch(r"[A-Z]+\d*", p) for p in parts):
                    self.push_error(-102)
                    break
                # SCPI: without a leading colon a header is relative to the last path
                mnemonics = parts if absolute else prefix + parts
            command = self.tree.find(mnemonics)
            handler = None if command is None else (command.query if is_query else command.set)
            if handler is None:
                self.push_error(-113)
                break  # a command error discards the rest of the message
            if not name.startswith("*"):
                prefix = mnemonics[:-1]
            args = split_params(params)
            try:
                if is_query:
                    responses.append(handler(args))  # type: ignore[arg-type]
                else:
                    handler(args)  # type: ignore[arg-type]
            except SCPIError as exc:
                self.push_error(exc.code, exc.message)
                if -199 <= exc.code <= -100:
                    break
            except NoReply:
                continue
        return ";".join(responses) if responses else None

    # -- transport entry point (faults applied here) --------------------------------------
    def process(self, line: str) -> bytes | None:
        """What the server calls for each received line: the terminated reply bytes, or
        ``None`` for no reply.  Raises ``ConnectionDropped`` to drop the connection."""
        with self.lock:
            faults = self.faults
            if faults is not None:
                faults.on_message()
            reply = self._handle(line)
            if reply is None:
                return None
            data = (reply + "\n").encode("ascii")
            if faults is not None:
                if faults.is_active("timeout"):
                    return None
                if faults.is_active("garbled"):
                    return faults.garble(data)
            return data

    def poll(self) -> None:
        """The server's idle call: these instruments do nothing between commands."""

    def link_up(self) -> bool:
        """A dropped link comes back at once (the ``disconnect`` fault is one-shot)."""
        return True

    def inject_fault(self, kind: str, after: int = 0) -> None:
        """Arm a fault at run time (see ``labrig.simulators.faults``)."""
        with self.lock:
            if self.faults is None:
                raise ValueError(f"{type(self).__name__} does not simulate faults")
            self.faults.inject(kind, after)

    def clear_faults(self) -> None:
        with self.lock:
            if self.faults is not None:
                self.faults.clear()

    # -- in-process output queue (for fast unit tests without sockets) ------------------
    def write(self, message: str) -> None:
        with self.lock:
            if self._output:
                self._output.clear()
                self.push_error(-410)
            reply = self._handle(message)
            if reply is not None:
                self._output.append(reply)

    def read(self) -> str:
        with self.lock:
            if not self._output:
                self.push_error(-420)
                raise NoReply("nothing in the output queue (the client would time out)")
            return self._output.popleft()

    # -- common commands and the error queue ------------------------------------------
    def _stb(self) -> int:
        stb = 0
        if self.errors:
            stb |= STB_EAV
        if self._output:
            stb |= STB_MAV
        if self.esr & self.ese:
            stb |= STB_ESB
        for register, bit in self.status.values():
            if register.summary:
                stb |= bit
        if stb & self.sre & ~STB_MSS:
            stb |= STB_MSS
        return stb

    def _build_common(self) -> None:
        t = self.tree

        def no_args(fn: Callable[[], Any]) -> Setter:
            def setter(args: list[str]) -> None:
                if args:
                    raise SCPIError(-108)
                fn()

            return setter

        def read_esr(_: list[str]) -> str:
            value, self.esr = self.esr, 0
            return nr1(value)

        def set_ese(args: list[str]) -> None:
            self.ese = parse_int(one_param(args), low=0, high=255)

        def set_sre(args: list[str]) -> None:
            self.sre = parse_int(one_param(args), low=0, high=255)

        def do_rst() -> None:
            self.reset()

        def do_cls() -> None:
            self.clear_status()

        def do_opc() -> None:
            self.esr |= ESR_OPC

        t.add("*IDN", query=lambda _: self.idn())
        t.add("*RST", set=no_args(do_rst))
        t.add("*CLS", set=no_args(do_cls))
        t.add("*OPC", set=no_args(do_opc), query=lambda _: "1")
        t.add("*WAI", set=no_args(lambda: None))
        t.add("*ESE", set=set_ese, query=lambda _: nr1(self.ese))
        t.add("*ESR", query=read_esr)
        t.add("*SRE", set=set_sre, query=lambda _: nr1(self.sre))
        t.add("*STB", query=lambda _: nr1(self._stb()))
        t.add(":SYSTem:ERRor[:NEXT]", query=lambda _: self.pop_error())
        t.add(":STATus:QUEue[:NEXT]", query=lambda _: self.pop_error())
        t.add(":SYSTem:ERRor:COUNt", query=lambda _: nr1(len(self.errors)))
        t.add(":SYSTem:ERRor:ALL", query=lambda _: self._all_errors())
        t.add(":SYSTem:CLEar", set=no_args(self.errors.clear))
        t.add(":STATus:QUEue:CLEar", set=no_args(self.errors.clear))
        t.add(":STATus:PRESet", set=no_args(self._preset_status))
        t.add("*TRG", set=no_args(lambda: self.bus_trigger()))
        t.add(":SYSTem:VERSion", query=lambda _: "1996.0")
        for name in self.status:
            self._add_status_register(name)

    def _add_status_register(self, name: str) -> None:
        """``:STATus:<name>[:EVENt]?``, ``:CONDition?`` and ``:ENABle``."""

        def register() -> StatusRegister:
            return self.status[name][0]

        def set_enable(args: list[str]) -> None:
            register().enable = parse_int(one_param(args), low=0, high=65535)

        self.tree.add(f":STATus:{name}[:EVENt]", query=lambda _: nr1(register().read_event()))
        self.tree.add(f":STATus:{name}:CONDition", query=lambda _: nr1(register().condition))
        self.tree.add(
            f":STATus:{name}:ENABle", set=set_enable, query=lambda _: nr1(register().enable)
        )

    def _preset_status(self) -> None:
        """``:STAT:PRES``: the enable registers of the SCPI register sets back to 0."""
        for register, _ in self.status.values():
            register.enable = 0

    def _all_errors(self) -> str:
        out = [self.pop_error() for _ in range(len(self.errors))]
        return ",".join(out) if out else self.pop_error()
