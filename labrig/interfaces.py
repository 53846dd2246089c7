"""The abstract instruments procedures talk to.

Procedures only ever see these interfaces; a driver for a real instrument and the same
driver pointed at a simulator both implement them, and a procedure cannot tell which it
got (the python-seabreeze / ophyd-async model).  All quantities are SI: volts, amperes,
seconds, watts; wavelengths are the one exception and are in nanometres, as every
spectrometer API and paper uses them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SourceFunction = Literal["voltage", "current"]


@dataclass(frozen=True)
class InstrumentIdentity:
    """What an instrument says it is; recorded in every run file."""

    manufacturer: str
    model: str
    serial: str
    firmware: str
    raw: str = ""


class Instrument(ABC):
    """What every labrig instrument offers the bench."""

    resource: str

    @abstractmethod
    def identity(self) -> InstrumentIdentity:
        """Query (or return the cached) identity of the connected instrument."""

    @abstractmethod
    def shutdown(self) -> None:
        """Leave the instrument safe: every source off.  Must not raise if already safe."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection.  Idempotent."""


# --------------------------------------------------------------------------- SMU
#: a device passing current with less than this across it is a short (an LED or a solar
#: cell in forward bias shows far more), V
SHORT_BELOW_V = 0.1


@dataclass(frozen=True)
class SourceReading:
    """One source-measure cycle: what was at the terminals, and whether compliance hit."""

    voltage: float  # V
    current: float  # A
    time: float  # s, the instrument's timestamp (arbitrary zero)
    in_compliance: bool = False


class SourceMeter(Instrument):
    """A source-measure unit (Keithley 2400 at this bench)."""

    MAX_SWEEP_POINTS = 2500

    @abstractmethod
    def configure_source(
        self,
        function: SourceFunction,
        compliance: float,
        *,
        nplc: float = 1.0,
        source_delay: float | None = None,
        autozero: bool = True,
        source_range: float | None = None,
        measure_range: float | None = None,
    ) -> None:
        """Set up sourcing ``function`` with the opposite quantity measured.

        ``compliance`` is in A when sourcing voltage and in V when sourcing current;
        ``None`` ranges mean auto range, ``None`` source delay means the auto delay.
        """

    @abstractmethod
    def set_level(self, level: float) -> None:
        """Program the source level (V or A per the configured function)."""

    def measure_at(
        self, level: float, meanwhile: Callable[[], object] | None = None
    ) -> SourceReading:
        """Program ``level`` and take one reading there (a driver whose instrument runs
        commands in order may let the reading confirm the level instead of a query).

        ``meanwhile`` runs while the instrument works on it, before the reading is read
        back: work that does not need this reading (storing the previous point) then
        costs no time of the sweep's.  If it raises, its exception goes on (a driver that
        has already asked for the reading first reads it, so the link stays in step)."""
        self.set_level(level)
        if meanwhile is not None:
            meanwhile()
        return self.measure()

    @abstractmethod
    def enable_output(self) -> None: ...

    @abstractmethod
    def disable_output(self) -> None: ...

    @property
    @abstractmethod
    def output_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> SourceReading:
        """Trigger one source-measure cycle at the programmed level and read it back."""

    @abstractmethod
    def sweep(
        self, levels: Sequence[float], *, abort_on_compliance: bool = False
    ) -> list[SourceReading]:
        """Run the instrument's own list sweep over ``levels`` and return every point from
        one read (buffered mode).  The output is on during the sweep and is left as the
        instrument's output-off/auto-off settings leave it."""

    def sweep_chunks(
        self, levels: Sequence[float], *, abort_on_compliance: bool = False
    ) -> Iterator[list[SourceReading]]:
        """``sweep`` in parts as the instrument delivers them, so a stop between parts
        keeps what was measured.  Default: the whole sweep as one part."""
        yield self.sweep(levels, abort_on_compliance=abort_on_compliance)

    @abstractmethod
    def shutdown(self, ramp: bool = True) -> None:
        """Ramp the source to zero (unless ``ramp`` is False) and turn the output off."""


# ---------------------------------------------------------------------- picoammeter
@dataclass(frozen=True)
class CurrentReading:
    current: float  # A
    time: float  # s, the instrument's timestamp


class Picoammeter(Instrument):
    """A picoammeter reading the photodiode (Keithley 6485 at this bench)."""

    @abstractmethod
    def configure(
        self,
        *,
        nplc: float = 1.0,
        current_range: float | None = None,
        autorange_limits: tuple[float, float] | None = None,
        filter_count: int = 0,
    ) -> None:
        """Integration time, range (``None``: auto, optionally within limits) and an
        optional averaging filter (0: off)."""

    @abstractmethod
    def zero_correct(self) -> None:
        """Acquire and enable zero correction (with zero check on, then off again)."""

    @abstractmethod
    def read(self) -> CurrentReading:
        """One reading.  Raises ``OverRangeError`` on over-range, never returns 9.9e37."""

    @abstractmethod
    def read_burst(self, count: int) -> list[CurrentReading]:
        """``count`` readings taken back to back into the buffer and read in one go."""


# --------------------------------------------------------------------- spectrometer
@dataclass(frozen=True)
class Spectrum:
    """One recorded spectrum, with what is needed to trust (or distrust) it."""

    wavelength_nm: np.ndarray
    counts: np.ndarray  # float; dark-subtracted when ``dark_subtracted``
    integration_time_s: float
    scans_averaged: int = 1
    saturated: bool = False
    dark_subtracted: bool = False
    relative_power: np.ndarray | None = field(default=None)  # after a response calibration


class Spectrometer(Instrument):
    """A fibre spectrometer (Ocean Optics USB2000+ at this bench)."""

    @property
    @abstractmethod
    def wavelengths_nm(self) -> np.ndarray: ...

    @property
    @abstractmethod
    def integration_time_limits_s(self) -> tuple[float, float]: ...

    @abstractmethod
    def set_integration_time(self, seconds: float) -> None:
        """Validate against the device limits and set it (the next stale frame is dropped)."""

    @abstractmethod
    def acquire(self, *, scans_to_average: int = 1, subtract_dark: bool = True) -> Spectrum:
        """Record a spectrum at the present integration time."""

    @abstractmethod
    def take_dark(self, *, scans_to_average: int = 1) -> np.ndarray:
        """Record and keep a dark spectrum (the caller has the source off)."""

    @abstractmethod
    def auto_expose(
        self,
        *,
        target_fraction: float = 0.7,
        min_time_s: float | None = None,
        max_time_s: float = 2.0,
    ) -> float:
        """Choose the integration time that brings the peak to ``target_fraction`` of full
        scale within bounds; return it.  Raises ``SaturationError`` if the signal stays
        saturated at the shortest allowed time."""


# ---------------------------------------------------------------------- lifetime rig
#: every status a lifetime rig channel reports (docs/lifetime-rig-protocol.md)
CHANNEL_STATUSES = ("OK", "OFF", "COMPL", "OPEN", "SHORT", "WDOG")


@dataclass(frozen=True)
class ChannelReading:
    channel: int
    voltage: float  # V
    current: float  # A
    photodiode_current: float  # A
    time: float  # s, rig time
    status: str = "OK"  # OK | OPEN | SHORT | OFF | ...


class LifetimeRig(Instrument):
    """A multi-channel constant-current driver with one photodiode per channel."""

    @property
    @abstractmethod
    def channels(self) -> int: ...

    @abstractmethod
    def set_current(self, channel: int, amps: float) -> None: ...

    @abstractmethod
    def set_output(self, channel: int, on: bool) -> None: ...

    @abstractmethod
    def measure(self, channel: int) -> ChannelReading: ...

    def measure_channels(self, channels: Sequence[int]) -> list[ChannelReading]:
        """One reading of each channel, in order; a rig that can read a set in one
        exchange overrides this."""
        return [self.measure(n) for n in channels]

    @abstractmethod
    def status(self, channel: int) -> str: ...


# --------------------------------------------------------------------------- switch
class Switch(Instrument):
    """A switch that connects one pixel of a substrate to the SMU and photodiode (a
    Keithley 7001/7002 mainframe or a relay board).  Channels are named as the
    instrument names them (``"1!3"`` on a 7001, ``"3"`` on a relay board)."""

    @property
    @abstractmethod
    def channels(self) -> tuple[str, ...]:
        """Every channel this switch has."""

    @abstractmethod
    def close(self, channel: str | None = None) -> None:
        """Close relay ``channel`` (the caller opened the others first: break before make)
        and return once the relay has settled.  Without a channel: ``Instrument.close``,
        release the connection (the bench calls it last; idempotent)."""

    @abstractmethod
    def open_all(self) -> None:
        """Open every channel (nothing connected: the SMU sees an open circuit)."""

    @abstractmethod
    def closed(self) -> tuple[str, ...]:
        """The channels the instrument itself reports closed: asked, never remembered."""

    def shutdown(self) -> None:
        """Safe state of a switch: every relay open."""
        self.open_all()
