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
from collections.abc import Iterator, Sequence

from labrig.drivers.serial_line import DEFAULT_BAUD, SerialLine
from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentSettingError,
    WrongInstrumentError,
)
from labrig.interfaces import CHANNEL_STATUSES, ChannelReading, InstrumentIdentity, LifetimeRig

log = logging.getLogger(__name__)

MAX_LINE = 128  # characters of a command line, by the protocol
STATUSES = frozenset(CHANNEL_STATUSES)


class SerialLifetimeRig(SerialLine, LifetimeRig):
    """``LifetimeRig`` over a pyserial port; thread-safe (one command at a time)."""

    LABEL = "lifetime rig"
    # what ``initialise`` reads from the rig (the link itself is SerialLine's)
    _multi_read = True  # until the rig answers MEAS? with -113
    _channels = 0
    max_current_a = 0.0
    compliance_v = 0.0

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

    # ------------------------------------------------------------------ Instrument
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


def connect(
    url: str, *, timeout_s: float = 5.0, baud_rate: int = DEFAULT_BAUD
) -> SerialLifetimeRig:
    """Open the rig at ``url`` (device path or pyserial URL) and check it speaks the
    protocol; raise ``InstrumentNotFoundError`` / ``WrongInstrumentError`` otherwise."""
    return SerialLifetimeRig.connected(url, timeout_s, baud_rate)
