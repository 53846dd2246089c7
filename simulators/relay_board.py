"""A simulated serial relay board speaking docs/relay-board-protocol.md (labrig-relay/1).

Served over loopback as a pyserial ``socket://`` URL by ``SerialLineServer`` (the one line
server).  Every command gets exactly one reply line; relay closures take
``RELAY_SETTLE_S`` on the shared clock before ``OK`` comes back.  Faults come from the
shared ``RelayBank`` (``no_confirm``, ``stuck``, ``disconnect`` at a closure) and the link
(``timeout``: no replies; ``garbled``: unreadable replies), counted like the SCPI
simulators' (``labrig.simulators.faults``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labrig.config import FaultSpec
from labrig.registry import driver
from labrig.simulators.relays import RelayBank
from labrig.simulators.server import SerialLineServer

if TYPE_CHECKING:
    from labrig.simulators.lab import SimulatorRequest, Started

RELAY_SETTLE_S = 5e-3  # the protocol's documented settling time
IDN = "LABRIG,RB-{n},SIM00001,1.0"
ERROR_QUEUE = 10


class RelayBoardError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class SimulatedRelayBoard:
    """The board's firmware: ``handle(line)`` -> reply; ``relays`` is the ground truth."""

    def __init__(
        self, physics: Any, channels: tuple[str, ...], faults: list[FaultSpec] | None = None
    ) -> None:
        self.relays = RelayBank(
            physics, channels, RELAY_SETTLE_S, faults, driver("relay_board").faults
        )
        self.faults = self.relays.faults
        self.errors: list[tuple[int, str]] = []

    def _channel(self, arg: str) -> str:
        if not arg:
            raise RelayBoardError(-109, "Missing parameter; a channel number")
        if arg not in self.relays.channels:
            n = len(self.relays.channels)
            raise RelayBoardError(-222, f"Data out of range; channel {arg} (board has 1..{n})")
        return arg

    def _dispatch(self, line: str) -> str:
        head, _, arg = line.partition(" ")
        head, arg = head.upper(), arg.strip()
        if head == "*IDN?":
            return IDN.format(n=len(self.relays.channels))
        if head == "*RST":
            self.errors.clear()
            self.relays.open()
            return "OK"
        if head == "CHAN?":
            return str(len(self.relays.channels))
        if head == "SETTLE?":
            return f"{RELAY_SETTLE_S:.6g}"
        if head == "SYST:ERR?":
            code, msg = self.errors.pop(0) if self.errors else (0, "No error")
            return f'{code},"{msg}"'
        if head == "CLOSE":
            self.relays.close(self._channel(arg))
            return "OK"
        if head == "OPEN":
            self.relays.open(None if arg.upper() == "ALL" else (self._channel(arg),))
            return "OK"
        if head == "CLOSED?":
            return ",".join(self.relays.closed()) or "NONE"
        raise RelayBoardError(-113, f"Undefined header; {head!r}")

    def handle(self, line: str) -> str | None:
        line = line.strip()
        if not line:
            return None
        try:
            return self._dispatch(line)
        except RelayBoardError as exc:
            if len(self.errors) < ERROR_QUEUE:
                self.errors.append((exc.code, exc.message))
            return f'ERR {exc.code},"{exc.message}"'

    # -- LineDevice ---------------------------------------------------------------
    def process(self, line: str) -> bytes | None:
        self.faults.on_message()
        reply = self.handle(line)
        if reply is None or self.faults.is_active("timeout"):
            return None
        data = reply.encode("ascii") + b"\n"
        return self.faults.garble(data) if self.faults.is_active("garbled") else data

    def poll(self) -> None:
        """Nothing happens between commands."""

    def link_up(self) -> bool:
        return True


def serve(request: SimulatorRequest) -> Started:
    """The simulated switch of ``request`` on the lab's physics, served over loopback (the
    registry's ``relay_board`` simulator); its channels are the driver's for the config."""
    from labrig.simulators.lab import Started
    from labrig.switching import switch_channels

    channels = switch_channels("relay_board", request.instrument.channels)
    instrument = SimulatedRelayBoard(request.physics, channels, faults=request.faults)
    return Started(instrument, server=SerialLineServer(instrument, clock=request.clock))
