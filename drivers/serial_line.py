"""One line-protocol link over pyserial, shared by the serial instruments' drivers.

A command goes out as one line and exactly one reply line comes back (the lifetime rig's
and the relay board's protocols, docs/*-protocol.md).  Error replies ``ERR code,"text"``,
silence, unreadable bytes and a lost link leave here as labrig's exceptions; a reply left
behind by an exchange cut short (Ctrl-C, a time-out) is discarded before the next command
by asking ``*IDN?`` until the identity comes back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TypeVar

import serial

from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentNotFoundError,
    InstrumentSettingError,
    InstrumentTimeoutError,
)
from labrig.interfaces import InstrumentIdentity

DEFAULT_BAUD = 115200
TERMINATION = b"\n"
_CHUNK = 4096  # more than any reply line; a non-blocking read returns what has arrived
_ERROR = re.compile(r'^ERR\s+(-?\d+),"(.*)"$')


def _error_for(code: int, message: str, command: str, label: str) -> InstrumentError:
    """``-2xx`` (a value the rig refused) -> InstrumentSettingError, else InstrumentError;
    the code stays on the exception as ``.code``."""
    text = f"{label} refused {command!r}: {message} (error {code})"
    exc: InstrumentError = (
        InstrumentSettingError(text) if -300 < code <= -200 else InstrumentError(text)
    )
    exc.code = code  # type: ignore[attr-defined]
    return exc


_S = TypeVar("_S", bound="SerialLine")


class SerialLine:
    """The link to one line-protocol instrument; thread-safe (one command at a time).
    ``LABEL`` names the instrument in every message."""

    LABEL = "serial instrument"

    def __init__(
        self,
        port: serial.SerialBase,
        resource: str,
        timeout_s: float = 5.0,
        baud_rate: int = DEFAULT_BAUD,
    ) -> None:
        self._port: serial.SerialBase | None = port
        self.resource = resource
        self.timeout_s = float(timeout_s)
        self.baud_rate = int(baud_rate)
        self._lock = threading.RLock()
        self._identity: InstrumentIdentity | None = None
        self._stale = False  # an exchange was cut short: its reply may still come

    # ------------------------------------------------------------------ transport
    def _exchange(self, command: str) -> str:
        with self._lock:
            port = self._port
            if port is None:
                raise InstrumentDisconnectedError(f"{self.LABEL} {self.resource}: not connected")
            try:
                if self._stale:
                    try:
                        self._resynchronise(port)
                    except InstrumentTimeoutError:
                        pass  # still send the command (an OFF must go out); its reply says
                port.reset_input_buffer()  # a late reply to a timed-out command must not pair up
                self._stale = True  # until its reply is in: a cut-short exchange leaves one
                port.write(command.encode("ascii") + TERMINATION)
                raw = self._read_line(port)
            except (serial.SerialException, OSError) as exc:
                raise InstrumentDisconnectedError(
                    f"{self.LABEL} {self.resource}: link lost during {command!r} ({exc})"
                ) from None
            self._stale = not raw.endswith(TERMINATION)
            if not raw.endswith(TERMINATION):
                raise InstrumentTimeoutError(
                    f"{self.LABEL} {self.resource}: no reply to {command!r} within "
                    f"{self.timeout_s:g} s"
                )
            try:
                reply = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                raise GarbledReplyError(
                    f"{self.LABEL} {self.resource}: unreadable reply {raw!r} to {command!r}"
                ) from None
            match = _ERROR.match(reply)
            if match:
                raise _error_for(int(match.group(1)), match.group(2), command, self.LABEL)
            return reply

    def _read_until(self, port: serial.SerialBase, done: Callable[[bytearray], bool]) -> bytearray:
        """What arrives within the link's time-out, read until ``done(received)``.

        pyserial's ``read_until`` asks for one byte at a time: over ``socket://`` that is a
        ``select`` and a ``recv`` per byte, ~50 system calls for one ``MEAS?`` reply and
        most of a lifetime sample's cost.  Here the first byte is awaited within what is
        left of the time-out and whatever has arrived behind it is taken in one
        non-blocking read (time-out 0), on every pyserial transport.
        """
        deadline = serial.Timeout(self.timeout_s)
        received = bytearray()
        try:
            while not done(received) and not deadline.expired():
                port.timeout = deadline.time_left()
                first = port.read(1)
                if not first:
                    break
                received += first
                port.timeout = 0
                received += port.read(_CHUNK)
        finally:
            port.timeout = self.timeout_s
        return received

    def _read_line(self, port: serial.SerialBase) -> bytes:
        """One reply line, cut at its terminator (unterminated: the time-out ran out)."""
        raw = self._read_until(port, lambda received: TERMINATION in received)
        end = raw.find(TERMINATION)
        return bytes(raw if end < 0 else raw[: end + 1])

    def _resynchronise(self, port: serial.SerialBase) -> None:
        """After an exchange cut short (Ctrl-C mid-read, a time-out) its reply may still
        arrive after the input buffer was reset: ask ``*IDN?`` and discard lines until the
        identity comes back, so the next command pairs with its own reply."""
        port.reset_input_buffer()
        port.write(b"*IDN?" + TERMINATION)
        marker = self._identity.raw if self._identity is not None else None

        def identity_back(received: bytearray) -> bool:
            lines = [x.decode("ascii", "replace").strip() for x in received.split(TERMINATION)]
            return any(x == marker or (marker is None and x.count(",") == 3) for x in lines[:-1])

        if identity_back(self._read_until(port, identity_back)):
            self._stale = False
            return
        raise InstrumentTimeoutError(
            f"{self.LABEL} {self.resource}: no *IDN? reply within {self.timeout_s:g} s "
            "after an interrupted command"
        )

    def query(self, command: str) -> str:
        """Send a query, return its reply line (raises on error replies)."""
        return self._exchange(command)

    def write(self, command: str) -> None:
        """Send a setting and insist on its ``OK``."""
        reply = self._exchange(command)
        if reply != "OK":
            raise GarbledReplyError(
                f"{self.LABEL} {self.resource}: expected OK to {command!r}, got {reply!r}"
            )

    def _float(self, command: str) -> float:
        reply = self.query(command)
        try:
            return float(reply)
        except ValueError:
            raise GarbledReplyError(
                f"{self.LABEL} {self.resource}: {command!r} answered {reply!r}, not a number"
            ) from None

    def initialise(self) -> None:
        """Ask the instrument who it is and what it has (each driver its own)."""
        raise NotImplementedError

    def reconnect(self) -> None:
        """Reopen the port after a lost link (the instrument kept its state)."""
        with self._lock:
            SerialLine.close(self)
            try:
                self._port = open_port(self.resource, self.timeout_s, self.baud_rate, self.LABEL)
            except InstrumentNotFoundError as exc:
                raise InstrumentDisconnectedError(str(exc)) from None
            self.initialise()

    @classmethod
    def connected(cls: type[_S], url: str, timeout_s: float, baud_rate: int) -> _S:
        """Open ``url`` (device path or pyserial URL) and ``initialise``: raises
        ``InstrumentNotFoundError`` / ``WrongInstrumentError`` when it is not there or
        does not speak the protocol (the port is closed again)."""
        instrument = cls(open_port(url, timeout_s, baud_rate, cls.LABEL), url, timeout_s, baud_rate)
        try:
            instrument.initialise()
        except BaseException:
            SerialLine.close(instrument)
            raise
        return instrument

    def identity(self) -> InstrumentIdentity:
        if self._identity is None:
            self.initialise()
        assert self._identity is not None
        return self._identity

    def close(self) -> None:
        with self._lock:
            if self._port is not None:
                try:
                    self._port.close()
                except (serial.SerialException, OSError):
                    pass
                self._port = None


def open_port(url: str, timeout_s: float, baud_rate: int, label: str) -> serial.SerialBase:
    try:
        return serial.serial_for_url(
            url, baudrate=baud_rate, timeout=timeout_s, write_timeout=timeout_s
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise InstrumentNotFoundError(f"no {label} at {url!r}: {exc}") from None
