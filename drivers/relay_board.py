"""Driver for a serial relay board speaking docs/relay-board-protocol.md.

The board sits on any pyserial port or URL (``socket://`` for the simulator).  Channel
names are the board's relay numbers as text (``"1"`` … ``CHAN?``); a channel the board
does not have is refused before anything is sent.  ``closed()`` always asks the board.
"""

from __future__ import annotations

from labrig.drivers.serial_line import DEFAULT_BAUD, SerialLine
from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentSettingError,
    InstrumentTimeoutError,
    WrongInstrumentError,
)
from labrig.interfaces import InstrumentIdentity, Switch


class SerialRelayBoard(SerialLine, Switch):
    """``Switch`` over a pyserial port (labrig-relay/1)."""

    LABEL = "relay board"

    _channels: tuple[str, ...] = ()
    settle_s = 0.0

    def initialise(self) -> None:
        """Identity, relay count and settling time; refuse anything that is not a board."""
        idn = self.query("*IDN?")
        parts = [p.strip() for p in idn.split(",")]
        try:
            count = int(self.query("CHAN?"))
            self.settle_s = float(self.query("SETTLE?"))
        except (ValueError, GarbledReplyError, InstrumentError, InstrumentTimeoutError) as exc:
            raise WrongInstrumentError(
                f"{self.resource} ({idn}) does not speak the relay-board protocol: {exc}"
            ) from None
        if len(parts) != 4 or count < 1:
            raise WrongInstrumentError(
                f"{self.resource}: *IDN? {idn!r} with {count} relays is not a relay board"
            )
        self._identity = InstrumentIdentity(*parts, raw=idn)
        self._channels = tuple(str(n) for n in range(1, count + 1))

    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    def close(self, channel: str | None = None) -> None:
        if channel is None:
            SerialLine.close(self)
            return
        if channel not in self._channels:
            raise InstrumentSettingError(
                f"relay board {self.resource}: no channel {channel!r}; it has 1..{len(self._channels)}"
            )
        self.write(f"CLOSE {channel}")

    def open_all(self) -> None:
        self.write("OPEN ALL")

    def shutdown(self) -> None:
        """Every relay open, over a fresh link if the old one dropped."""
        try:
            self.open_all()
        except InstrumentDisconnectedError:
            self.reconnect()
            self.open_all()

    def closed(self) -> tuple[str, ...]:
        reply = self.query("CLOSED?")
        if reply == "NONE":
            return ()
        names = tuple(p.strip() for p in reply.split(","))
        if not all(n in self._channels for n in names):
            raise GarbledReplyError(
                f"relay board {self.resource}: CLOSED? answered {reply!r}, not channel numbers"
            )
        return names


def connect(url: str, *, timeout_s: float = 5.0, baud_rate: int = DEFAULT_BAUD) -> SerialRelayBoard:
    """Open the relay board at ``url`` and check it speaks the protocol."""
    return SerialRelayBoard.connected(url, timeout_s, baud_rate)
