"""Driver for a multi-channel lifetime rig speaking docs/lifetime-rig-protocol.md.

pyserial carries the line protocol, so the rig can sit on a device path (``/dev/ttyACM0``,
``COM3``) or any pyserial URL (``socket://host:port`` for the simulator or a
serial-to-Ethernet adapter, ``rfc2217://``).  Every command gets exactly one reply line;
the driver turns error replies, silence and a lost link into labrig's exceptions, and
checks channel numbers and currents against what the rig reported at connect *before*
anything is sent.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence

import serial

from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentNotFoundError,
    InstrumentSettingError,
    InstrumentTimeoutError,
    WrongInstrumentError,
)
from labrig.interfaces import ChannelReading, InstrumentIdentity, LifetimeRig

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115200
TERMINATION = b"\n"
MAX_LINE = 128  # characters of a command line, by the protocol
_CHUNK = 4096  # more than any reply line; a non-blocking read returns what has arrived
STATUSES = frozenset({"OK", "OFF", "COMPL", "OPEN", "SHORT", "WDOG"})
_ERROR = re.compile(r'^ERR\s+(-?\d+),"(.*)"$')


def _error_for(code: int, message: str, command: str) -> InstrumentError:
    """``-2xx`` (a value the rig refused) -> InstrumentSettingError, else InstrumentError;
    the code stays on the exception as ``.code``."""
    text = f"lifetime rig refused {command!r}: {message} (error {code})"
    exc: InstrumentError = (
        InstrumentSettingError(text) if -300 < code <= -200 else InstrumentError(text)
    )
    exc.code = code  # type: ignore[attr-defined]
    return exc


class SerialLifetimeRig(LifetimeRig):
    """``LifetimeRig`` over a pyserial port; thread-safe (one command at a time)."""

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
        self._multi_read = True  # until the rig answers MEAS? with -113
        self._channels = 0
        self.max_current_a = 0.0
        self.compliance_v = 0.0

    # ------------------------------------------------------------------ transport
    def _exchange(self, command: str) -> str:
        with self._lock:
            port = self._port
            if port is None:
                raise InstrumentDisconnectedError(f"lifetime rig {self.resource}: not connected")
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
                    f"lifetime rig {self.resource}: link lost during {command!r} ({exc})"
                ) from None
            self._stale = not raw.endswith(TERMINATION)
            if not raw.endswith(TERMINATION):
                raise InstrumentTimeoutError(
                    f"lifetime rig {self.resource}: no reply to {command!r} within "
                    f"{self.timeout_s:g} s"
                )
            try:
                reply = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                raise GarbledReplyError(
                    f"lifetime rig {self.resource}: unreadable reply {raw!r} to {command!r}"
                ) from None
            match = _ERROR.match(reply)
            if match:
                raise _error_for(int(match.group(1)), match.group(2), command)
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
            f"lifetime rig {self.resource}: no *IDN? reply within {self.timeout_s:g} s "
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
                f"lifetime rig {self.resource}: expected OK to {command!r}, got {reply!r}"
            )

    def _float(self, command: str) -> float:
        reply = self.query(command)
        try:
            return float(reply)
        except ValueError:
            raise GarbledReplyError(
                f"lifetime rig {self.resource}: {command!r} answered {reply!r}, not a number"
            ) from None

    # ------------------------------------------------------------------ set-up
    def initialise(self) -> None:
        """Read identity, channel count and ranges; refuse anything that is not a rig."""
        idn = self.query("*IDN?")
        parts = [p.strip() for p in idn.split(",")]
        if len(parts) != 4:
            raise WrongInstrumentError(
                f"{self.resource}: *IDN? answered {idn!r}; a lifetime rig answers "
                "'<manufacturer>,<model>,<serial>,<firmware>'"
            )
        self._identity = InstrumentIdentity(*parts, raw=idn)
        try:
            self._channels = int(self.query("SYST:CHAN?"))
            self.max_current_a = self._float("SYST:CURR:MAX?")
            self.compliance_v = self._float("SYST:VOLT:MAX?")
        except (InstrumentError, ValueError) as exc:
            raise WrongInstrumentError(
                f"{self.resource} ({idn}) does not speak the lifetime-rig protocol: {exc}"
            ) from None
        if self._channels < 1:
            raise WrongInstrumentError(f"{self.resource}: rig reports {self._channels} channels")

    def reconnect(self) -> None:
        """Reopen the port after a lost link (the rig kept its state and time)."""
        with self._lock:
            if self._port is not None:
                try:
                    self._port.close()
                except (serial.SerialException, OSError):
                    pass
            self._port = None
            try:
                self._port = _open_port(self.resource, self.timeout_s, self.baud_rate)
            except InstrumentNotFoundError as exc:
                raise InstrumentDisconnectedError(str(exc)) from None
            self.initialise()

    # ------------------------------------------------------------------ Instrument
    def identity(self) -> InstrumentIdentity:
        if self._identity is None:
            self.initialise()
        assert self._identity is not None
        return self._identity

    @property
    def channels(self) -> int:
        return self._channels

    def _check_channel(self, channel: int) -> int:
        if isinstance(channel, bool) or not isinstance(channel, int):
            raise InstrumentSettingError(
                f"lifetime rig channel must be an integer, got {channel!r}"
            )
        if not 1 <= channel <= self._channels:
            raise InstrumentSettingError(
                f"lifetime rig channel {channel} does not exist (allowed 1..{self._channels})"
            )
        return channel

    def set_current(self, channel: int, amps: float) -> None:
        n = self._check_channel(channel)
        if not 0 <= amps <= self.max_current_a:
            raise InstrumentSettingError(
                f"lifetime rig channel {n} current {amps:g} A is outside the rig's range "
                f"0..{self.max_current_a:g} A"
            )
        self.write(f"CH{n}:CURR {amps:.6E}")

    def current_setpoint(self, channel: int) -> float:
        return self._float(f"CH{self._check_channel(channel)}:CURR?")

    def set_output(self, channel: int, on: bool) -> None:
        self.write(f"CH{self._check_channel(channel)}:OUTP {'ON' if on else 'OFF'}")

    def output_enabled(self, channel: int) -> bool:
        reply = self.query(f"CH{self._check_channel(channel)}:OUTP?")
        if reply not in ("ON", "OFF"):
            raise GarbledReplyError(f"lifetime rig: OUTP? answered {reply!r}")
        return reply == "ON"

    def measure(self, channel: int) -> ChannelReading:
        n = self._check_channel(channel)
        return _reading(n, self.query(f"CH{n}:MEAS?"))

    def measure_channels(self, channels: Sequence[int]) -> list[ChannelReading]:
        """One reading of each of ``channels``, in that order, in as few exchanges as the
        protocol's line length allows (``MEAS? n,n,...``: one round trip for a whole
        channel set instead of one per channel).  A rig whose firmware predates
        ``MEAS?`` (it answers -113) is read channel by channel from then on."""
        numbers = [self._check_channel(n) for n in channels]
        if not self._multi_read:
            return [self.measure(n) for n in numbers]
        readings: list[ChannelReading] = []
        for batch in _batches(numbers):
            command = "MEAS? " + ",".join(map(str, batch))
            try:
                reply = self.query(command)
            except InstrumentError as exc:
                if getattr(exc, "code", None) != -113:
                    raise
                log.info(
                    "%s: no MEAS? on this rig (%s); reading channel by channel", self.resource, exc
                )
                self._multi_read = False
                return readings + [self.measure(n) for n in numbers[len(readings) :]]
            groups = reply.split(";")
            if len(groups) != len(batch):
                raise GarbledReplyError(
                    f"lifetime rig: {command!r} answered {len(groups)} reading(s) for "
                    f"{len(batch)} channel(s): {reply!r}"
                )
            readings += [_reading(n, text) for n, text in zip(batch, groups, strict=True)]
        return readings

    def status(self, channel: int) -> str:
        n = self._check_channel(channel)
        reply = self.query(f"CH{n}:STAT?")
        if reply not in STATUSES:
            raise GarbledReplyError(f"lifetime rig channel {n}: STAT? answered {reply!r}")
        return reply

    def rig_time(self) -> float:
        return self._float("SYST:TIME?")

    def set_watchdog(self, seconds: float) -> None:
        """Outputs off after ``seconds`` without a command (0: outputs hold on link loss)."""
        if seconds < 0:
            raise InstrumentSettingError(f"watchdog must be >= 0 s, got {seconds}")
        self.write(f"SYST:WDOG {seconds:.6g}")

    def shutdown(self) -> None:
        """Every channel off (each ``OK`` is the rig's confirmation).  A lost link is
        reopened once; every channel is tried; the first failure is raised at the end."""
        first: InstrumentError | None = None
        lost: InstrumentError | None = None
        reconnected = False
        n = 1
        while n <= self._channels:
            try:
                self.set_output(n, False)
            except InstrumentDisconnectedError as exc:
                lost = exc
                if reconnected:
                    break
                reconnected = True
                try:
                    self.reconnect()
                except InstrumentError:
                    break
                lost = None  # back: the same channel again on the new link
                continue
            except InstrumentError as exc:
                first = first or exc
            n += 1
        if first or lost:
            raise first or lost  # type: ignore[misc]

    def close(self) -> None:
        with self._lock:
            if self._port is not None:
                try:
                    self._port.close()
                except (serial.SerialException, OSError):
                    pass
                self._port = None


def _reading(channel: int, text: str) -> ChannelReading:
    """One channel's ``<V>,<A>,<photodiode A>,<time s>,<status>`` (GarbledReplyError else)."""
    parts = text.split(",")
    try:
        status = parts[4].strip() if len(parts) == 5 else ""
        if status not in STATUSES:
            raise ValueError
        return ChannelReading(
            channel, float(parts[0]), float(parts[1]), float(parts[2]), float(parts[3]), status
        )
    except ValueError:
        raise GarbledReplyError(
            f"lifetime rig channel {channel}: MEAS? answered {text!r}; expected "
            "'<V>,<A>,<photodiode A>,<time s>,<status>'"
        ) from None


def _batches(channels: list[int]) -> Iterator[list[int]]:
    """``channels`` cut so that each ``MEAS? n,n,...`` line stays within the protocol's
    128 characters."""
    batch: list[int] = []
    length = len("MEAS? ")
    for n in channels:
        extra = len(str(n)) + (1 if batch else 0)
        if batch and length + extra > MAX_LINE:
            yield batch
            batch, length, extra = [], len("MEAS? "), len(str(n))
        batch.append(n)
        length += extra
    if batch:
        yield batch


def _open_port(url: str, timeout_s: float, baud_rate: int) -> serial.SerialBase:
    try:
        return serial.serial_for_url(
            url, baudrate=baud_rate, timeout=timeout_s, write_timeout=timeout_s
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise InstrumentNotFoundError(f"no lifetime rig at {url!r}: {exc}") from None


def connect(
    url: str, *, timeout_s: float = 5.0, baud_rate: int = DEFAULT_BAUD
) -> SerialLifetimeRig:
    """Open the rig at ``url`` (device path or pyserial URL) and check it speaks the
    protocol; raise ``InstrumentNotFoundError`` / ``WrongInstrumentError`` otherwise."""
    port = _open_port(url, timeout_s, baud_rate)
    rig = SerialLifetimeRig(port, url, timeout_s, baud_rate)
    try:
        rig.initialise()
    except BaseException:
        rig.close()
        raise
    return rig
