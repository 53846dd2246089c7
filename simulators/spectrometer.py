"""A simulated Ocean Optics USB2000+ with python-seabreeze's ``Spectrometer`` API.

(To run code written for ``seabreeze.spectrometers`` against it, with real seabreeze
``Spectrometer`` objects, see :mod:`labrig.simulators.seabreeze`.)

The USB protocol lives inside seabreeze, so the simulation sits at the
``seabreeze.spectrometers.Spectrometer`` API: the same driver wraps either object and
cannot tell them apart.  The detector model follows the Sony ILX511B as the USB2000+
uses it:

- 2048 pixels on a third-order wavelength polynomial spanning ~340–1034 nm;
- 16-bit counts: an offset (~1500 counts) plus thermal dark signal that grows with the
  integration time (with a fixed per-pixel pattern), read noise, dark-current and photon
  shot noise; the sensor compresses slightly near full scale (the nonlinearity the
  EEPROM coefficients correct) and the ADC clips at 65535;
- electric-dark pixels 6–21 are masked from light, so ``correct_dark_counts`` works;
- integration time 1 ms … 65 s, set in µs; the first spectrum after a change is stale
  (the one integrated at the previous setting), as on the real device.

Light comes from ``physics.spectral_flux_w_per_nm`` (the device's EL at its present
operating point, nothing when the source is off) times a fixed fibre coupling, the
photon energy and the integration time.  Each acquisition sleeps the integration time
on ``physics.clock``, so the device keeps heating (or cooling) meanwhile.

Faults (``FaultSpec.kind``), counted in spectra read: ``timeout`` and ``disconnect``
raise seabreeze's ``SeaBreezeError`` (a USB transfer that times out / a device that is
gone), ``garbled`` returns a truncated frame, ``overrange`` floods the detector with
stray light so every spectrum saturates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.constants import Planck, speed_of_light
from seabreeze.spectrometers import SeaBreezeError

from labrig.config import FaultSpec
from labrig.registry import driver
from labrig.simulators.faults import ConnectionDropped, FaultInjector

if TYPE_CHECKING:
    from labrig.simulators.lab import SimulatorRequest, Started

MODEL = "USB2000PLUS"
PIXELS = 2048
#: λ(p) = c0 + c1·p + c2·p² + c3·p³ (nm), typical of a USB2000+ with a 340–1030 nm grating
WAVELENGTH_COEFFICIENTS = (339.9, 0.3735, -1.65e-5, -2.0e-10)
ELECTRIC_DARK_PIXELS = tuple(range(6, 22))
MAX_INTENSITY = 65535.0
INTEGRATION_LIMITS_US = (1000, 65_000_000)
#: fraction of the forward-hemisphere flux the fibre delivers to the detector
FIBRE_COUPLING = 4.0e-5
#: photons per count (ILX511B sensitivity, ~75 photons/count)
PHOTONS_PER_COUNT = 75.0
#: electrons per count: sets the shot-noise statistics
ELECTRONS_PER_COUNT = 1.0
DARK_OFFSET_COUNTS = 1500.0
#: thermal dark signal (counts/s), mean; each pixel gets a fixed ±30 % pattern
DARK_RATE_COUNTS_PER_S = 200.0
READ_NOISE_COUNTS = 6.0
#: sensor compression r = s / (1 + a·s): ~3.7 % low at 60000 counts; seabreeze's
#: nonlinearity correction (coefficients 1, -a) undoes it exactly
NONLINEARITY_A = 6.0e-7
#: stray light (counts/s per pixel) flooding the detector under the ``overrange`` fault
STRAY_LIGHT_COUNTS_PER_S = 1.0e9
SUPPORTED_FAULTS = driver("usb2000plus").faults


def usb2000plus_wavelengths(pixels: int = PIXELS) -> np.ndarray:
    """The pixel-to-wavelength calibration (nm) of the simulated unit."""
    p = np.arange(pixels, dtype=float)
    c0, c1, c2, c3 = WAVELENGTH_COEFFICIENTS
    return c0 + c1 * p + c2 * p**2 + c3 * p**3


def counts_per_w_nm_s(wavelength_nm: np.ndarray) -> np.ndarray:
    """Counts per second per W/nm of spectral flux at each pixel: fibre coupling × pixel
    width × photons per joule ÷ photons per count.  It rises with λ (more photons per
    joule) and falls with the pixel width, so raw counts are not spectral power: this is
    the spectral response a lamp calibration of the simulated unit would measure."""
    wl = np.asarray(wavelength_nm, dtype=float)
    photon_j = Planck * speed_of_light / (wl * 1e-9)
    return FIBRE_COUPLING * np.gradient(wl) / photon_j / PHOTONS_PER_COUNT


def write_response_calibration(path: str | Path) -> Path:
    """Write the simulated unit's relative spectral response as the CSV a lamp calibration
    would give (``wavelength_nm,relative_response``, peak 1), for configs and tests."""
    path = Path(path)
    wl = usb2000plus_wavelengths()
    response = counts_per_w_nm_s(wl)
    table = np.column_stack([wl, response / response.max()])
    np.savetxt(path, table, delimiter=",", header="wavelength_nm,relative_response", fmt="%.6f")
    return path


class SimulatedSpectrometer:
    """Drop-in for ``seabreeze.spectrometers.Spectrometer`` on the simulated physics."""

    def __init__(
        self,
        physics: Any,
        serial_number: str = "SIM2K0001",
        faults: list[FaultSpec] | None = None,
    ) -> None:
        self._physics = physics
        self._serial = str(serial_number)
        self._wavelengths = usb2000plus_wavelengths()
        seed = int(getattr(getattr(physics.config, "simulation", None), "seed", 0))
        self._rng = np.random.default_rng([seed, 2000])  # own stream: others' draws unaffected
        self._noise = bool(getattr(physics, "noise", True))
        self._dark_pattern = 1.0 + 0.3 * (2 * self._rng.random(PIXELS) - 1)
        self._optical = np.ones(PIXELS, dtype=bool)
        self._optical[list(ELECTRIC_DARK_PIXELS)] = False
        self._counts_per_w_nm_s = counts_per_w_nm_s(self._wavelengths)
        self._integration_us = 100_000
        self._previous_us = self._integration_us
        self._stale = False
        self._open = True
        self._faults = FaultInjector(faults, physics, SUPPORTED_FAULTS)
        self.reads = 0  # spectra read out, stale ones included (for tests)

    # ------------------------------------------------------------------ seabreeze API
    @classmethod
    def from_serial_number(cls, serial: str | None = None) -> SimulatedSpectrometer:
        raise SeaBreezeError("the simulated spectrometer is created with its physics, not opened")

    from_first_available = from_serial_number

    @property
    def model(self) -> str:
        return MODEL

    @property
    def serial_number(self) -> str:
        return self._serial

    @property
    def pixels(self) -> int:
        return PIXELS

    @property
    def max_intensity(self) -> float:
        return MAX_INTENSITY

    @property
    def integration_time_micros_limits(self) -> tuple[int, int]:
        return INTEGRATION_LIMITS_US

    @property
    def features(self) -> dict[str, list[Any]]:
        """Features as seabreeze lists them: the simulated backend's (the spectrometer and
        the nonlinearity coefficients; every other name with no feature)."""
        from labrig.simulators.seabreeze import SeaBreezeDevice

        return SeaBreezeDevice(self).features

    @property
    def f(self) -> Any:
        """``.f.<feature>``, as on a seabreeze ``Spectrometer``."""
        from labrig.simulators.seabreeze import SeaBreezeDevice

        return SeaBreezeDevice(self).f

    def wavelengths(self) -> np.ndarray:
        return self._wavelengths.copy()

    def integration_time_micros(self, integration_time_micros: int) -> None:
        self._check_open()
        lo, hi = INTEGRATION_LIMITS_US
        if not lo <= integration_time_micros <= hi:
            raise SeaBreezeError("[Fix] Specified integration time is out of range.")
        us = int(integration_time_micros)
        if us != self._integration_us:
            self._previous_us, self._integration_us = self._integration_us, us
            self._stale = True

    def trigger_mode(self, mode: int) -> None:
        self._check_open()
        if mode != 0:
            raise SeaBreezeError("only the free-running trigger mode (0) is simulated")

    def intensities(
        self, correct_dark_counts: bool = False, correct_nonlinearity: bool = False
    ) -> np.ndarray:
        """One spectrum read out, with seabreeze's own correction arithmetic."""
        out = self._read_frame()
        if correct_nonlinearity or correct_dark_counts:
            dark_offset = float(np.mean(out[list(ELECTRIC_DARK_PIXELS)]))
            out -= dark_offset
        if correct_nonlinearity:
            out = out / np.polyval((-NONLINEARITY_A, 1.0), out)
        if correct_nonlinearity and not correct_dark_counts:
            out += dark_offset
        return out

    def spectrum(
        self, correct_dark_counts: bool = False, correct_nonlinearity: bool = False
    ) -> np.ndarray:
        return np.vstack(
            (self._wavelengths, self.intensities(correct_dark_counts, correct_nonlinearity))
        )

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def inject_fault(self, kind: str, after: int = 0) -> None:
        """Arm a fault at run time (tests): fires after ``after`` more spectra."""
        self._faults.inject(kind, after)

    def clear_faults(self) -> None:
        self._faults.clear()

    def __repr__(self) -> str:
        return f"<Spectrometer {MODEL}:{self._serial}>"

    # ------------------------------------------------------------------ the detector
    def _check_open(self) -> None:
        if not self._open:
            raise SeaBreezeError("Device is not open.")

    def _read_frame(self) -> np.ndarray:
        """Integrate (sleeping on the bench clock) and read out one raw frame."""
        self._check_open()
        try:
            self._faults.on_reading()
        except ConnectionDropped:
            raise SeaBreezeError("Data transfer error: device disconnected") from None
        self._faults.on_message()  # one read is one transfer: comm faults count spectra too
        if self._faults.is_active("timeout"):
            raise SeaBreezeError("Data transfer error: USB transfer timed out")
        us = self._previous_us if self._stale else self._integration_us
        self._stale = False
        seconds = us * 1e-6
        self._physics.clock.sleep(seconds)
        flux = np.asarray(self._physics.spectral_flux_w_per_nm(self._wavelengths), dtype=float)
        frame = self._frame(flux, seconds)
        self.reads += 1
        if self._faults.is_active("garbled"):
            return frame[: PIXELS // 2]
        return frame

    def _frame(self, flux_w_per_nm: np.ndarray, seconds: float) -> np.ndarray:
        signal = np.where(self._optical, flux_w_per_nm * self._counts_per_w_nm_s * seconds, 0.0)
        if self._faults.is_active("overrange"):
            signal = signal + np.where(self._optical, STRAY_LIGHT_COUNTS_PER_S * seconds, 0.0)
        dark = DARK_RATE_COUNTS_PER_S * seconds * self._dark_pattern
        if self._noise:  # photon and dark-current shot noise on the collected electrons
            electrons = np.minimum((signal + dark) * ELECTRONS_PER_COUNT, 1e12)
            signal = self._rng.poisson(electrons) / ELECTRONS_PER_COUNT - dark
        raw = DARK_OFFSET_COUNTS + dark + signal / (1.0 + NONLINEARITY_A * signal)
        if self._noise:
            raw = raw + READ_NOISE_COUNTS * self._rng.standard_normal(PIXELS)
        return np.clip(np.round(raw), 0.0, MAX_INTENSITY)


def serve(request: SimulatorRequest) -> Started:
    """The simulated USB2000+ on the lab's physics (the registry's ``usb2000plus``
    simulator).  USB cannot be served over loopback: the driver attaches to the
    seabreeze ``Spectrometer`` over it (seabreeze's own corrections run)."""
    from labrig.simulators.lab import Started
    from labrig.simulators.seabreeze import spectrometer

    unit = SimulatedSpectrometer(
        request.physics, serial_number=request.instrument.resource or "SIM2K0001",
        faults=request.faults,
    )  # fmt: skip
    return Started(unit, resource=unit.serial_number, handle=spectrometer(unit))
