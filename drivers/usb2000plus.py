"""Ocean Optics USB2000+ behind ``labrig.interfaces.Spectrometer``, through python-seabreeze.

``USB2000Plus`` wraps any object with the API of ``seabreeze.spectrometers.Spectrometer``
— a real device opened by :func:`connect` or ``labrig.simulators.spectrometer.
SimulatedSpectrometer`` — and adds what a trustworthy EL spectrum needs on top of raw
reads: integration-time validation against the device's own limits, the stale first
frame after an integration-time change dropped, averaging, boxcar smoothing, saturation
flagged (never silently used), a stored dark subtracted, auto-exposure and an optional
spectral-response calibration (counts -> relative spectral power).

Saturation is judged on the frame as read (with seabreeze's electric-dark and
nonlinearity corrections applied when enabled): any optical pixel at or above
``saturation_fraction`` × ``max_intensity`` (default 95 %).  The electric-dark offset of
a USB2000+ (~1500 of 65535 counts) keeps a clipped pixel above that level even after the
dark correction, so a clipped frame is always caught.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from labrig.analysis.spectral import SpectralResponse
from labrig.errors import (
    ConfigError,
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentNotFoundError,
    InstrumentSettingError,
    InstrumentTimeoutError,
    SaturationError,
    WrongInstrumentError,
)
from labrig.interfaces import InstrumentIdentity, Spectrometer, Spectrum

BACKENDS = ("cseabreeze", "pyseabreeze")
#: pixels whose light never reaches them (USB2000+ electric-dark pixels 6–21) plus the
#: first pixels, which are not optically active either
MASKED_PIXELS = slice(0, 22)
DEFAULT_INTEGRATION_S = 0.1
#: auto-exposure: accept a peak within this relative distance of the target
AUTO_EXPOSE_TOLERANCE = 0.1
AUTO_EXPOSE_MAX_STEPS = 12


def _translate(exc: Exception, doing: str) -> InstrumentError:
    """A seabreeze (or transport) error as the labrig InstrumentError it means."""
    text = str(exc) or type(exc).__name__
    if "timed out" in text.lower() or "timeout" in text.lower():
        return InstrumentTimeoutError(f"spectrometer: {doing}: {text}")
    return InstrumentDisconnectedError(f"spectrometer: {doing}: {text}")


class USB2000Plus(Spectrometer):
    """The USB2000+ spectrometer over a seabreeze-like ``device``."""

    def __init__(
        self,
        device: Any,
        resource: str = "",
        *,
        correct_dark_counts: bool = True,
        correct_nonlinearity: bool = True,
        boxcar_half_width: int = 0,
        saturation_fraction: float = 0.95,
        response_file: str | Path | None = None,
        integration_time_s: float = DEFAULT_INTEGRATION_S,
    ) -> None:
        self._device = device
        self._closed = False
        model = str(device.model)
        if not model.upper().startswith("USB2000"):
            raise WrongInstrumentError(
                f"spectrometer {device.serial_number}: is a {model}, not a USB2000+ "
                "(driver usb2000plus)"
            )
        self.resource = resource or f"usb:{device.serial_number}"
        if boxcar_half_width < 0 or int(boxcar_half_width) != boxcar_half_width:
            raise InstrumentSettingError(
                f"boxcar_half_width {boxcar_half_width!r}: must be a whole number >= 0"
            )
        if not 0.5 <= saturation_fraction <= 1.0:
            raise InstrumentSettingError(
                f"saturation_fraction {saturation_fraction!r}: must lie in 0.5-1.0"
            )
        if correct_nonlinearity and not (device.features or {}).get("nonlinearity_coefficients"):
            raise InstrumentSettingError(
                f"spectrometer {device.serial_number}: holds no nonlinearity coefficients; "
                "set correct_nonlinearity False"
            )
        self.correct_dark_counts = bool(correct_dark_counts)
        self.correct_nonlinearity = bool(correct_nonlinearity)
        self.boxcar_half_width = int(boxcar_half_width)
        self.saturation_fraction = float(saturation_fraction)
        self._wavelengths = np.asarray(device.wavelengths(), dtype=float).copy()
        self._pixels = int(device.pixels)
        if self._wavelengths.shape != (self._pixels,):
            raise GarbledReplyError(
                f"spectrometer: {len(self._wavelengths)} wavelengths for {self._pixels} pixels"
            )
        lo_us, hi_us = device.integration_time_micros_limits
        self._limits_s = (lo_us / 1e6, hi_us / 1e6)
        self._max_intensity = float(device.max_intensity)
        self._dark: np.ndarray | None = None
        self._dark_time_s: float | None = None
        self._discard_next = False
        self._integration_s = math.nan
        self.response: SpectralResponse | None = None
        if response_file is not None:
            self.set_response_calibration(response_file)
        self.set_integration_time(
            min(max(integration_time_s, self._limits_s[0]), self._limits_s[1])
        )

    # ------------------------------------------------------------------ Instrument
    def identity(self) -> InstrumentIdentity:
        model, serial = str(self._device.model), str(self._device.serial_number)
        return InstrumentIdentity("Ocean Optics", model, serial, "", f"{model}:{serial}")

    def shutdown(self) -> None:
        """Nothing to switch off: a spectrometer sources nothing."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._device.close()
            except Exception:  # noqa: BLE001 - closing a gone device must not raise
                pass

    # ------------------------------------------------------------------ settings
    @property
    def wavelengths_nm(self) -> np.ndarray:
        return self._wavelengths.copy()

    @property
    def integration_time_limits_s(self) -> tuple[float, float]:
        return self._limits_s

    @property
    def integration_time_s(self) -> float:
        return self._integration_s

    @property
    def max_intensity(self) -> float:
        return self._max_intensity

    @property
    def saturation_level(self) -> float:
        """Counts at or above which a frame counts as saturated."""
        return self.saturation_fraction * self._max_intensity

    @property
    def dark(self) -> np.ndarray | None:
        """The stored dark spectrum (None until ``take_dark``)."""
        return None if self._dark is None else self._dark.copy()

    def set_integration_time(self, seconds: float) -> None:
        lo, hi = self._limits_s
        if not (math.isfinite(seconds) and lo <= seconds <= hi):
            raise InstrumentSettingError(
                f"integration time {seconds!r} s is outside the {self._device.model} limits "
                f"{lo:g}-{hi:g} s"
            )
        micros = round(seconds * 1e6)
        try:
            self._device.integration_time_micros(micros)
        except Exception as exc:  # noqa: BLE001 - seabreeze raises its own error classes
            raise _translate(exc, "setting the integration time") from exc
        if micros / 1e6 != self._integration_s:
            self._discard_next = True  # the frame in the pipeline was integrated before
        self._integration_s = micros / 1e6

    def set_response_calibration(self, path: str | Path | None) -> None:
        """Load (or with ``None`` drop) the relative spectral-response calibration.
        Raises ConfigError when it does not overlap the spectrometer's range at all."""
        if path is None:
            self.response = None
            return
        response = SpectralResponse.from_csv(path)
        lo, hi = response.wavelength_nm[0], response.wavelength_nm[-1]
        if hi < self._wavelengths.min() or lo > self._wavelengths.max():
            raise ConfigError(
                f"calibration.spectral_response_file {path}: covers {lo:g}-{hi:g} nm, outside "
                f"the spectrometer's {self._wavelengths.min():.0f}-"
                f"{self._wavelengths.max():.0f} nm"
            )
        self.response = response

    # ------------------------------------------------------------------ acquisition
    def _read(self) -> np.ndarray:
        """One frame, corrected as configured; checked for length."""
        try:
            frame = self._device.intensities(self.correct_dark_counts, self.correct_nonlinearity)
        except Exception as exc:  # noqa: BLE001 - seabreeze raises its own error classes
            raise _translate(exc, "reading a spectrum") from exc
        frame = np.asarray(frame, dtype=float)
        if frame.shape != (self._pixels,):
            raise GarbledReplyError(
                f"spectrometer: a spectrum of {frame.size} values for {self._pixels} pixels"
            )
        return frame

    @staticmethod
    def _check_scans(scans: int) -> None:
        if int(scans) != scans or scans < 1:
            raise InstrumentSettingError(f"scans_to_average {scans!r}: must be a whole number >= 1")

    def _frames(self, scans: int) -> tuple[np.ndarray, bool]:
        """Average of ``scans`` fresh frames and whether any of them saturated."""
        self._check_scans(scans)
        if self._discard_next:
            self._read()  # stale: integrated at the previous integration time
            self._discard_next = False
        total = np.zeros(self._pixels)
        saturated = False
        for _ in range(int(scans)):
            frame = self._read()
            saturated |= bool(np.any(frame[MASKED_PIXELS.stop :] >= self.saturation_level))
            total += frame
        return self._smooth(total / scans), saturated

    def _smooth(self, counts: np.ndarray) -> np.ndarray:
        if self.boxcar_half_width == 0:
            return counts
        from scipy.ndimage import uniform_filter1d

        return uniform_filter1d(counts, size=2 * self.boxcar_half_width + 1, mode="nearest")

    def take_dark(self, *, scans_to_average: int = 1) -> np.ndarray:
        counts, saturated = self._frames(scans_to_average)
        if saturated:
            raise SaturationError(
                "spectrometer: the dark spectrum is saturated; is the source off and the "
                "fibre shielded from room light?"
            )
        self._dark, self._dark_time_s = counts, self._integration_s
        return counts.copy()

    def acquire(self, *, scans_to_average: int = 1, subtract_dark: bool = True) -> Spectrum:
        self._check_scans(scans_to_average)
        if subtract_dark and self._dark_time_s != self._integration_s:
            have = "none taken" if self._dark is None else f"taken at {self._dark_time_s:g} s"
            raise InstrumentSettingError(
                f"spectrometer: no dark spectrum at {self._integration_s:g} s integration "
                f"({have}); call take_dark() with the source off first"
            )
        counts, saturated = self._frames(scans_to_average)
        if subtract_dark:
            counts = counts - self._dark
        power = None
        if self.response is not None and not saturated:
            power = self.response.apply(self._wavelengths, counts)
        return Spectrum(
            wavelength_nm=self._wavelengths.copy(),
            counts=counts,
            integration_time_s=self._integration_s,
            scans_averaged=int(scans_to_average),
            saturated=saturated,
            dark_subtracted=subtract_dark,
            relative_power=power,
        )

    def auto_expose(
        self,
        *,
        target_fraction: float = 0.7,
        min_time_s: float | None = None,
        max_time_s: float = 2.0,
    ) -> float:
        lo = self._limits_s[0] if min_time_s is None else float(min_time_s)
        hi = float(max_time_s)
        if not 0.05 <= target_fraction < self.saturation_fraction:
            raise InstrumentSettingError(
                f"target_fraction {target_fraction!r}: must lie in 0.05-"
                f"{self.saturation_fraction:g} (below saturation)"
            )
        if not (self._limits_s[0] <= lo <= hi <= self._limits_s[1]):
            raise InstrumentSettingError(
                f"auto-exposure bounds {lo:g}-{hi:g} s: must be increasing and lie within "
                f"the {self._device.model} limits {self._limits_s[0]:g}-{self._limits_s[1]:g} s"
            )
        target = target_fraction * self._max_intensity
        t = min(max(self._integration_s, lo), hi)
        for _ in range(AUTO_EXPOSE_MAX_STEPS):
            self.set_integration_time(t)
            frame, saturated = self._frames(1)
            optical = frame[MASKED_PIXELS.stop :]
            base = float(np.median(optical))  # an EL line covers few pixels: median = dark
            peak = float(optical.max())
            if saturated:
                if t <= lo:
                    raise SaturationError(
                        f"spectrometer: the spectrum stays saturated at the shortest allowed "
                        f"integration time {lo:g} s; attenuate the light (ND filter, fibre "
                        "further away) or lower the drive"
                    )
                t = max(lo, t / 10)
                continue
            if abs(peak - target) <= AUTO_EXPOSE_TOLERANCE * target:
                return t
            if peak - base <= 0:
                new = hi
            else:
                new = t * (target - base) / (peak - base)
            new = round(min(max(new, lo), hi), 6)
            if new == t:  # pinned at a bound: as close as the bounds allow
                return t
            t = new
        self.set_integration_time(t)  # out of steps: leave the device at the time returned
        return t


#: ``LABRIG_SEABREEZE=simulated``: open the simulated USB2000+ through seabreeze
#: (``labrig.simulators.seabreeze``) instead of a USB device
SEABREEZE_SWITCH = "LABRIG_SEABREEZE"


def _select_backend(backend: str) -> None:
    """``seabreeze.use(backend)`` before seabreeze.spectrometers loads a backend; once one
    is loaded in this process it cannot be swapped.  With ``LABRIG_SEABREEZE=simulated``
    seabreeze gets the simulated unit's backend instead."""
    switch = os.environ.get(SEABREEZE_SWITCH, "")
    if switch not in ("", "simulated"):
        raise ConfigError(
            f"environment variable {SEABREEZE_SWITCH}={switch!r} is not allowed; allowed: "
            "simulated (or unset)"
        )
    if switch == "simulated":
        from labrig.simulators import seabreeze as simulated

        simulated.use()
        return
    if backend not in BACKENDS:
        raise ConfigError(
            f"instruments.spectrometer.backend {backend!r} is not allowed; allowed: "
            + ", ".join(BACKENDS)
        )
    import seabreeze
    from seabreeze.backends import BackendConfig

    module = sys.modules.get("seabreeze.spectrometers")
    loaded = module is not None and "_lib" in vars(module)
    if loaded:
        if BackendConfig.requested != backend:
            raise InstrumentError(
                f"seabreeze already uses the {BackendConfig.requested} backend in this "
                f"process; restart to use {backend}"
            )
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seabreeze.use(backend)


def connect(
    serial: str | None = None, *, backend: str = "cseabreeze", **options: Any
) -> USB2000Plus:
    """Open the USB2000+ with serial number ``serial`` (``None``: the first one attached)
    through seabreeze's ``backend``; ``options`` go to :class:`USB2000Plus`."""
    _select_backend(backend)
    try:
        import seabreeze.spectrometers as sb

        devices = sb.list_devices()
    except ImportError as exc:
        raise InstrumentNotFoundError(
            f"seabreeze backend {backend!r} cannot be loaded ({exc}); for pyseabreeze "
            "install pyusb, for cseabreeze reinstall seabreeze"
        ) from None
    attached = [str(d.serial_number) for d in devices]
    listing = ", ".join(attached) if attached else "none"
    if serial is None and not attached:
        raise InstrumentNotFoundError(
            f"no Ocean Optics spectrometer attached (seabreeze {backend} found none); check "
            "the USB cable and the udev rules (seabreeze_os_setup)"
        )
    if serial is not None and str(serial) not in attached:
        raise InstrumentNotFoundError(
            f"instruments.spectrometer.resource: no spectrometer with serial number "
            f"{serial!r} is attached; attached: {listing}"
        )
    try:
        device = sb.Spectrometer.from_serial_number(None if serial is None else str(serial))
    except sb.SeaBreezeError as exc:
        raise InstrumentNotFoundError(
            f"spectrometer {serial or '(first available)'}: cannot open it ({exc}); "
            f"attached: {listing}"
        ) from None
    try:
        return USB2000Plus(device, resource=f"usb:{device.serial_number}", **options)
    except sb.SeaBreezeError as exc:
        device.close()
        raise _translate(exc, "reading its configuration") from exc
    except BaseException:
        device.close()
        raise
