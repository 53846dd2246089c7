"""A one-channel ``LifetimeRig`` built from the bench's SourceMeter and Picoammeter.

For a lab without a multi-channel rig: the 2400 holds the device at constant current,
the 6485 reads the photodiode in front of it, and the lifetime procedure cannot tell
this from channel 1 of a real rig.  Only the interfaces are used, so any SourceMeter /
Picoammeter pair works.  The channel status is derived the way rig firmware would:
compliance with (almost) no current is OPEN, a terminal voltage below 0.1 V at the set
current is SHORT; both latch until the output is switched off.
"""

from __future__ import annotations

import threading

from labrig.errors import InstrumentSettingError
from labrig.interfaces import (
    SHORT_BELOW_V,
    ChannelReading,
    InstrumentIdentity,
    LifetimeRig,
    Picoammeter,
    SourceMeter,
)

#: the 2400's ±1.05 A range caps what the channel may source
MAX_CURRENT_A = 1.05


class SMUPhotometerRig(LifetimeRig):
    """Channel 1 = the SMU (constant current, voltage compliance) + the picoammeter."""

    def __init__(
        self,
        smu: SourceMeter,
        photometer: Picoammeter,
        *,
        compliance_v: float = 10.0,
        max_current_a: float = MAX_CURRENT_A,
        nplc: float = 1.0,
    ) -> None:
        if not compliance_v > 0:
            raise InstrumentSettingError(f"compliance_v must be > 0 V, got {compliance_v}")
        self.smu = smu
        self.photometer = photometer
        self.compliance_v = float(compliance_v)
        self.max_current_a = float(max_current_a)
        self.nplc = float(nplc)
        self.resource = f"{smu.resource} + {photometer.resource}"
        self._lock = threading.RLock()
        self._set_current = 0.0
        self._configured = False
        self._latched: str | None = None

    @property
    def channels(self) -> int:
        return 1

    def identity(self) -> InstrumentIdentity:
        smu, pa = self.smu.identity(), self.photometer.identity()
        return InstrumentIdentity(
            manufacturer="labrig",
            model=f"SMU+photometer ({smu.model} + {pa.model})",
            serial=f"{smu.serial}+{pa.serial}",
            firmware=f"{smu.firmware}+{pa.firmware}",
            raw=f"{smu.raw} | {pa.raw}",
        )

    def _check_channel(self, channel: int) -> None:
        if isinstance(channel, bool) or channel != 1:
            raise InstrumentSettingError(
                f"SMU+photometer lifetime backend has one channel; channel {channel!r} does "
                "not exist (allowed 1..1)"
            )

    def _configure(self) -> None:
        if not self._configured:
            self.smu.configure_source("current", self.compliance_v, nplc=self.nplc)
            self.photometer.configure(nplc=self.nplc)
            self._configured = True

    def set_current(self, channel: int, amps: float) -> None:
        self._check_channel(channel)
        if not 0 <= amps <= self.max_current_a:
            raise InstrumentSettingError(
                f"SMU+photometer channel 1 current {amps:g} A is outside 0..{self.max_current_a:g} A"
            )
        with self._lock:
            self._configure()
            self.smu.set_level(amps)
            self._set_current = float(amps)

    def set_output(self, channel: int, on: bool) -> None:
        self._check_channel(channel)
        with self._lock:
            if on:
                self._configure()
                self.smu.set_level(self._set_current)
                self.smu.enable_output()
            else:
                self.smu.disable_output()
            self._latched = None

    def measure(self, channel: int) -> ChannelReading:
        self._check_channel(channel)
        with self._lock:
            on = self.smu.output_enabled
            if not on:
                pd = self.photometer.read()
                return ChannelReading(1, 0.0, 0.0, pd.current, pd.time, self._latched or "OFF")
            reading = self.smu.measure()
            pd = self.photometer.read()
            status = self._classify(reading.voltage, reading.current, reading.in_compliance)
            return ChannelReading(
                1, reading.voltage, reading.current, pd.current, reading.time, status
            )

    def _classify(self, volts: float, amps: float, in_compliance: bool) -> str:
        if self._latched:
            return self._latched
        if in_compliance:
            if abs(amps) < 1e-3 * max(self._set_current, 1e-9):
                self._latched = "OPEN"
                return "OPEN"
            return "COMPL"
        if self._set_current > 0 and abs(volts) < SHORT_BELOW_V:
            self._latched = "SHORT"
            return "SHORT"
        return "OK"

    def status(self, channel: int) -> str:
        self._check_channel(channel)
        with self._lock:
            if self._latched:
                return self._latched
            if not self.smu.output_enabled:
                return "OFF"
            reading = self.smu.measure()
            return self._classify(reading.voltage, reading.current, reading.in_compliance)

    def shutdown(self) -> None:
        """Output off (the SMU ramps down first)."""
        with self._lock:
            try:
                self.smu.shutdown()
            finally:
                self._latched = None

    def close(self) -> None:
        """The SMU and photometer belong to the bench, which closes them."""
