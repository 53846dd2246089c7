"""The spectrum recorder: darks on a ladder before the drive, spectra on that ladder."""

from __future__ import annotations

import numpy as np
import pytest

from labrig.config import load_config


def test_spectrum_recorder_darks_before_drive_and_exposes_on_the_ladder():
    from labrig.drivers.usb2000plus import USB2000Plus
    from labrig.simulators.physics import CoupledPhysics
    from labrig.simulators.spectrometer import SimulatedSpectrometer
    from labrig.spectrum_recorder import SpectrumRecorder

    sim = CoupledPhysics(load_config("sim"))
    spectrometer = USB2000Plus(SimulatedSpectrometer(sim))
    recorder = SpectrumRecorder(spectrometer)
    assert recorder.ladder[0] == pytest.approx(1e-3) and recorder.ladder[-1] == 2.0
    assert all(
        b / a <= 2 + 1e-9 for a, b in zip(recorder.ladder, recorder.ladder[1:], strict=False)
    )
    with pytest.raises(RuntimeError):
        recorder.acquire()
    recorder.take_darks()  # source off
    sim.source_voltage(3.5, 0.05)
    spectrum, dark = recorder.acquire()
    assert spectrum.dark_subtracted and not spectrum.saturated
    assert spectrum.integration_time_s in recorder.ladder
    peak = spectrum.counts.max()
    # auto-exposure aims at 70 % ± 10 %; the ladder time below it halves that at worst
    assert 0.25 * 65535 < peak < 0.8 * 65535, peak
    # dark-subtracted: no offset left away from the line (a frame's electric-dark
    # correction moves it by a few counts at most)
    off_band = spectrum.counts[spectrum.wavelength_nm > 900]
    assert abs(np.mean(off_band)) < 1e-3 * peak, (np.mean(off_band), peak)
    from labrig.analysis.photometry import power_shape_from_counts
    from labrig.analysis.spectral import peak_wavelength

    shape = power_shape_from_counts(spectrum.wavelength_nm, spectrum.counts)
    assert peak_wavelength(spectrum.wavelength_nm, shape) == pytest.approx(628, abs=0.5)
    assert np.array_equal(dark, recorder.darks[spectrum.integration_time_s])
