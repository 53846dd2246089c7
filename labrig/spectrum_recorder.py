"""Auto-exposed EL spectra whose darks were all taken before the drive started.

A dark must match the integration time of the spectrum it is subtracted from, and it
must be taken with the source off.  Auto-exposure picks the time only once the device is
lit, so the darks are taken in advance on a ladder of integration times (doubling from
the device minimum to a cap) and each spectrum is recorded at the ladder time just below
the auto-exposed one.  Used by the J–V–L sweep and ``labrig calibrate luminance``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from labrig.interfaces import Spectrometer, Spectrum

#: longest integration time on the ladder (s): a spectrum per step must not stall a sweep
MAX_EXPOSURE_S = 2.0


class SpectrumRecorder:
    """Auto-exposed, dark-subtracted EL spectra whose darks were all taken with the
    source off before the drive started (see the module docstring: the exposure ladder).
    Shared by the J–V–L sweep and ``labrig calibrate luminance``."""

    def __init__(self, spectrometer: Spectrometer, max_exposure_s: float = MAX_EXPOSURE_S) -> None:
        self.spectrometer = spectrometer
        lo, hi = spectrometer.integration_time_limits_s
        hi = min(hi, max_exposure_s)
        ladder = [lo]
        while ladder[-1] * 2 < hi:
            ladder.append(ladder[-1] * 2)
        self.ladder = [*ladder, hi]
        self.darks: dict[float, np.ndarray] = {}

    def take_darks(self) -> None:
        """One dark per ladder time; the caller has the source off."""
        for t in self.ladder:
            self.spectrometer.set_integration_time(t)
            self.darks[t] = self.spectrometer.take_dark()

    def acquire(self) -> tuple[Spectrum, np.ndarray]:
        """(dark-subtracted spectrum, the dark used) at the ladder time just below the
        auto-exposed one."""
        if not self.darks:
            raise RuntimeError("SpectrumRecorder.acquire before take_darks")
        chosen = self.spectrometer.auto_expose(max_time_s=self.ladder[-1])
        t = max([x for x in self.ladder if x <= chosen * (1 + 1e-9)], default=self.ladder[0])
        self.spectrometer.set_integration_time(t)
        raw = self.spectrometer.acquire(subtract_dark=False)
        dark = self.darks[t]
        spectrum = replace(raw, counts=raw.counts - dark, dark_subtracted=True, relative_power=None)
        return spectrum, dark
