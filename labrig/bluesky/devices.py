"""labrig's instruments as ophyd-async devices, each backed by labrig's own driver.

    RE = RunEngine()
    bench = BenchLink("bench.yaml")            # or "sim", or a served bench's config
    with init_devices():                       # init_devices(mock=True): no instrument
        smu = SourceMeter2400(bench)
        photodiode = Picoammeter6485(bench)
    RE(bp.scan([photodiode, smu], smu.level, 0, 6, 61))

Settings (``smu.level``, ``smu.compliance``, ``smu.output``, ``photodiode.range``,
``spectrometer.integration_time``, a lifetime channel's ``setpoint``) are signals whose
backend (``DriverBackend``) writes through the driver, so the driver's own checks and
the config's safety limits refuse a bad value before any SCPI.  Readings (V, I, the
photodiode current, a spectrum) are taken by ``trigger()`` and published as soft
signals, with units.  In mock mode nothing is opened and every signal is a mock.

The output-off guarantee under the RunEngine: ``stage`` configures the source and turns
the output on at zero; ``unstage`` -- which the RunEngine runs after a normal end, an
abort, a failure and a halt alike -- is labrig's safe shutdown (ramp, off, read back),
done before it returns.  A pause leaves the output as ``on_pause`` says (``"off"`` by
default: ramped off, and back at its level on resume; ``"keep"``: left as it is).
A kill of the whole process is covered by the bench link's guard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Generic, Literal

import numpy as np
from bluesky.protocols import Reading
from event_model import DataKey
from ophyd_async.core import (
    Array1D,
    AsyncStatus,
    Device,
    DeviceConnector,
    SignalBackend,
    SignalDatatypeT,
    SignalRW,
    StandardReadable,
    StandardReadableFormat,
    make_datakey,
    soft_signal_r_and_setter,
)

from labrig.bluesky.link import BenchLink
from labrig.errors import OutputStateUnknownError
from labrig.interfaces import SourceFunction

Format = StandardReadableFormat
PauseAction = Literal["off", "keep"]
_UNITS = {"voltage": "V", "current": "A"}


class BenchConnector(DeviceConnector):
    """Connecting a device opens its bench link (once for all the bench's devices);
    mock mode opens nothing."""

    def __init__(self, link: BenchLink) -> None:
        self.link = link
        self.real = False

    async def connect_mock(self, device: Device, mock: Any) -> None:
        self.real = False
        await super().connect_mock(device, mock)

    async def connect_real(self, device: Device, timeout: float, force_reconnect: bool) -> None:
        await asyncio.to_thread(self.link.open)
        self.real = True
        await super().connect_real(device, timeout, force_reconnect)


class DriverBackend(SignalBackend[SignalDatatypeT], Generic[SignalDatatypeT]):
    """A signal whose value is in the instrument: ``put`` writes through the driver,
    ``get`` reads through it (or returns what was last written, for settings an
    instrument does not report).  Not a soft signal, so mock mode replaces it whole."""

    def __init__(
        self,
        datatype: type[SignalDatatypeT],
        link: BenchLink,
        role: str,
        initial: SignalDatatypeT,
        *,
        put: Callable[[SignalDatatypeT], None] | None = None,
        get: Callable[[], SignalDatatypeT] | None = None,
        units: str | None = None,
    ) -> None:
        self.link, self.role = link, role
        self._put, self._get = put, get
        self._metadata: dict[str, Any] = {"units": units} if units else {}
        self._setpoint = initial
        self._reading = self._make_reading(initial)
        self._callback: Callable[[Reading], None] | None = None
        super().__init__(datatype)

    def _coerce(self, value: Any) -> Any:
        """A plan's numpy scalar as the signal's own type (what event-model describes)."""
        if self.datatype in (bool, int, float, str):
            return self.datatype(value)
        return value

    @staticmethod
    def _make_reading(value: Any) -> Reading:
        return Reading(value=value, timestamp=time.time(), alarm_severity=0)

    def _publish(self, value: Any) -> None:
        self._reading = self._make_reading(value)
        if self._callback is not None:
            self._callback(self._reading)

    def source(self, name: str, read: bool) -> str:
        return f"labrig://{self.role}/{name}"

    async def connect(self, timeout: float) -> None:
        """Nothing of its own: the device's connector opened the bench link."""

    async def put(self, value: SignalDatatypeT | None) -> None:
        if self._put is None:
            raise TypeError(f"labrig://{self.role}: this signal is read-only")
        if value is None:
            value = self._setpoint
        value = self._coerce(value)
        await self.link.call(self._put, value)
        self._setpoint = value
        self._publish(value if self._get is None else self._coerce(await self.link.call(self._get)))

    async def get_value(self) -> SignalDatatypeT:
        if self._get is not None and self.link.is_open:
            self._publish(self._coerce(await self.link.call(self._get)))
        return self._reading["value"]

    async def get_reading(self) -> Reading[SignalDatatypeT]:
        await self.get_value()
        return self._reading

    async def get_setpoint(self) -> SignalDatatypeT:
        return self._setpoint

    async def get_datakey(self, source: str) -> DataKey:
        return make_datakey(self.datatype, self._reading["value"], source, self._metadata)

    def set_callback(self, callback: Callable[[Reading], None] | None) -> None:
        self._callback = callback
        if callback is not None:
            callback(self._reading)


class LabrigDevice(StandardReadable):
    """A device on a labrig bench role.  Subclasses ``_bind`` first, make their
    signals, then call ``super().__init__`` (ophyd-async names the children then)."""

    def _bind(self, link: BenchLink, role: str) -> None:
        self.link, self.role = link, role

    def __init__(self, link: BenchLink, role: str, name: str = "") -> None:
        self._bind(link, role)
        super().__init__(name=name, connector=BenchConnector(link))

    @property
    def real(self) -> bool:
        """Connected to an instrument (False in mock mode or before connecting)."""
        return self._connector.real  # type: ignore[attr-defined]

    def driver(self) -> Any:
        return self.link.instrument(self.role)

    def _signal(self, datatype: type, initial: Any, **kwargs: Any) -> SignalRW:
        return SignalRW(DriverBackend(datatype, self.link, self.role, initial, **kwargs))


class SourceDevice(LabrigDevice):
    """A source: on when staged, off (confirmed) when unstaged, ``on_pause`` when paused."""

    def __init__(
        self, link: BenchLink, role: str, name: str = "", *, on_pause: PauseAction = "off"
    ) -> None:
        if on_pause not in ("off", "keep"):
            raise ValueError(f"on_pause {on_pause!r} is not one of 'off', 'keep'")
        self.on_pause = on_pause
        self._paused_off = False
        super().__init__(link, role, name)

    def _output_on(self) -> None:
        raise NotImplementedError

    def _output_off(self) -> None:
        """Ramp down and off, read back from the instrument; raises if not confirmed."""
        raise NotImplementedError

    def _resume_output(self) -> None:
        raise NotImplementedError

    def output_is_on(self) -> bool:
        """The output as the instrument reports it now (not the driver's belief)."""
        raise NotImplementedError

    @AsyncStatus.wrap
    async def stage(self) -> None:
        await super().stage()
        if self.real:
            await self.link.call(self._output_on)

    def unstage(self) -> AsyncStatus:
        """Safe shutdown before returning: the RunEngine calls this without waiting
        after a halt, so the output is off by the time it goes on."""
        if self.real:
            self.link.call_now(self._output_off)
        return super().unstage()

    async def pause(self) -> None:
        if self.real and self.on_pause == "off":
            await self.link.call(self._output_off)
            self._paused_off = True

    async def resume(self) -> None:
        if self._paused_off:
            self._paused_off = False
            await self.link.call(self._resume_output)


class SourceMeter2400(SourceDevice):
    """The Keithley 2400 sourcing ``function`` (``"voltage"``: level in V, compliance
    in A; ``"current"``: the other way round), measuring V and I."""

    def __init__(
        self,
        link: BenchLink,
        role: str = "smu",
        name: str = "",
        *,
        function: SourceFunction = "voltage",
        compliance: float | None = None,
        nplc: float = 1.0,
        on_pause: PauseAction = "off",
    ) -> None:
        if function not in _UNITS:
            raise ValueError(f"function {function!r} is not one of 'voltage', 'current'")
        self._bind(link, role)
        self.function, self.nplc = function, nplc
        sensed = "current" if function == "voltage" else "voltage"
        limits = link.config.limits
        default = limits.default_compliance_a if function == "voltage" else limits.max_voltage_v
        self._level = 0.0
        self._compliance = compliance or default
        with self.add_children_as_readables():  # read with V and I: a scan of it is one row
            self.level = self._signal(float, 0.0, put=self._set_level, units=_UNITS[function])
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.compliance = self._signal(
                float, self._compliance, put=self._set_compliance, units=_UNITS[sensed]
            )
            self.output = self._signal(
                bool, False, put=self._set_output, get=lambda: self.driver().output_enabled
            )
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.voltage, self._set_voltage = soft_signal_r_and_setter(float, units="V")
            self.current, self._set_current = soft_signal_r_and_setter(float, units="A")
        with self.add_children_as_readables():
            self.in_compliance, self._set_in_compliance = soft_signal_r_and_setter(bool)
        super().__init__(link, role, name, on_pause=on_pause)

    # driver side (worker thread, the link's lock held)
    def _check(self, level: float) -> None:
        self.link.check_drive(**{"volts" if self.function == "voltage" else "amps": level})

    def _configure(self) -> None:
        self.driver().configure_source(self.function, self._compliance, nplc=self.nplc)

    def _set_level(self, level: float) -> None:
        self._check(level)
        self.driver().set_level(level)
        self._level = level

    def _set_compliance(self, compliance: float) -> None:
        if self.function == "voltage":
            self.link.check_drive(amps=compliance)
        else:
            self.link.check_drive(volts=compliance)
        self._compliance = compliance
        self._configure()

    def _set_output(self, on: bool) -> None:
        if on:
            self._check(self._level)
            self.driver().enable_output()
        else:
            self._output_off()

    def _output_on(self) -> None:
        self._configure()
        self.driver().set_level(0.0)
        self._level = 0.0
        self.driver().enable_output()

    def _output_off(self) -> None:
        self.driver().shutdown(ramp=True)  # OutputStateUnknownError unless confirmed

    def output_is_on(self) -> bool:
        return self.driver().output_enabled  # OUTPUT? asked of the 2400

    def _resume_output(self) -> None:
        level = self._level
        self._output_on()
        self._set_level(level)

    @AsyncStatus.wrap
    async def trigger(self) -> None:
        if not self.real:
            return
        reading = await self.link.call(self.driver().measure)
        self._set_voltage(reading.voltage)
        self._set_current(reading.current)
        self._set_in_compliance(reading.in_compliance)


class Picoammeter6485(LabrigDevice):
    """The Keithley 6485 on the photodiode: its current in A, its range (0: auto)."""

    def __init__(
        self, link: BenchLink, role: str = "photometer", name: str = "", *, nplc: float = 1.0
    ) -> None:
        self._bind(link, role)
        self.nplc = nplc
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.range = self._signal(float, 0.0, put=self._set_range, units="A")
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.current, self._set_current = soft_signal_r_and_setter(float, units="A")
        super().__init__(link, role, name)

    def _set_range(self, amps: float) -> None:
        self.driver().configure(nplc=self.nplc, current_range=amps or None)

    @AsyncStatus.wrap
    async def stage(self) -> None:
        await super().stage()
        if self.real:
            await self.link.call(self._set_range, await self.range.get_value())

    @AsyncStatus.wrap
    async def trigger(self) -> None:
        if self.real:
            self._set_current((await self.link.call(self.driver().read)).current)


class SpectrometerUSB2000(LabrigDevice):
    """The USB2000+: integration time in s, its wavelengths (nm) and a raw spectrum
    (counts, seabreeze's corrections applied, no dark subtracted) per trigger."""

    def __init__(self, link: BenchLink, role: str = "spectrometer", name: str = "") -> None:
        self._bind(link, role)
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.integration_time = self._signal(
                float,
                0.1,
                put=lambda s: self.driver().set_integration_time(s),
                get=lambda: self.driver().integration_time_s,
                units="s",
            )
            self.wavelengths, self._set_wavelengths = soft_signal_r_and_setter(
                Array1D[np.float64], units="nm"
            )
        with self.add_children_as_readables():
            self.spectrum, self._set_spectrum = soft_signal_r_and_setter(
                Array1D[np.float64], units="counts"
            )
        super().__init__(link, role, name)

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        await super().connect(*args, **kwargs)
        if self.real:
            self._set_wavelengths(np.asarray(self.driver().wavelengths_nm, dtype=np.float64))

    @AsyncStatus.wrap
    async def trigger(self) -> None:
        if self.real:
            spectrum = await self.link.call(self.driver().acquire, subtract_dark=False)
            self._set_spectrum(np.asarray(spectrum.counts, dtype=np.float64))


class LifetimeChannel(SourceDevice):
    """One channel of the lifetime rig: its drive current (A), output, and the
    voltage, current and photodiode current it measures, with its status word."""

    def __init__(
        self,
        link: BenchLink,
        channel: int,
        role: str = "lifetime",
        name: str = "",
        *,
        on_pause: PauseAction = "off",
    ) -> None:
        self._bind(link, role)
        self.channel = channel
        self._setpoint_a = 0.0
        with self.add_children_as_readables():
            self.setpoint = self._signal(float, 0.0, put=self._set_setpoint, units="A")
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.voltage, self._set_voltage = soft_signal_r_and_setter(float, units="V")
            self.current, self._set_current = soft_signal_r_and_setter(float, units="A")
            self.photodiode_current, self._set_pd = soft_signal_r_and_setter(float, units="A")
        with self.add_children_as_readables():
            self.status, self._set_status = soft_signal_r_and_setter(str)
        super().__init__(link, role, name, on_pause=on_pause)

    def _set_setpoint(self, amps: float) -> None:
        self.link.check_drive(amps=amps)
        self.driver().set_current(self.channel, amps)
        self._setpoint_a = amps

    def _output_on(self) -> None:
        self.driver().set_output(self.channel, True)

    def _output_off(self) -> None:
        rig = self.driver()
        rig.set_output(self.channel, False)
        state = rig.status(self.channel)
        if state != "OFF":
            raise OutputStateUnknownError(
                f"{self.role} channel {self.channel}: status {state!r} after output off"
            )

    def output_is_on(self) -> bool:
        return self.driver().status(self.channel) != "OFF"

    def _resume_output(self) -> None:
        self._set_setpoint(self._setpoint_a)
        self._output_on()

    @AsyncStatus.wrap
    async def trigger(self) -> None:
        if not self.real:
            return
        reading = await self.link.call(self.driver().measure, self.channel)
        self._set_voltage(reading.voltage)
        self._set_current(reading.current)
        self._set_pd(reading.photodiode_current)
        self._set_status(reading.status)


#: the device class of each role (the lifetime rig is one device per channel)
ROLE_DEVICES: dict[str, Callable[..., LabrigDevice]] = {
    "smu": SourceMeter2400,
    "photometer": Picoammeter6485,
    "spectrometer": SpectrometerUSB2000,
}
#: what a role's device is called where a bench's devices are made by name
DEVICE_NAMES = {"smu": "smu", "photometer": "photodiode", "spectrometer": "spectrometer"}


def bench_devices(link: BenchLink) -> dict[str, LabrigDevice]:
    """One device per role of ``link`` (lifetime: ``lifetime_1``, ... per channel),
    named, not yet connected."""
    devices: dict[str, LabrigDevice] = {}
    for role in link.roles:
        if role in ROLE_DEVICES:
            name = DEVICE_NAMES[role]
            devices[name] = ROLE_DEVICES[role](link, role, name)
        elif role == "lifetime":
            channels = link.config.instruments[role].channels or 1
            for channel in range(1, channels + 1):
                name = f"lifetime_{channel}"
                devices[name] = LifetimeChannel(link, channel, role, name)
    return devices


__all__ = [
    "BenchLink",
    "DriverBackend",
    "LifetimeChannel",
    "Picoammeter6485",
    "SourceMeter2400",
    "SpectrometerUSB2000",
    "bench_devices",
]
