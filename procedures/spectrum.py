"""One EL spectrum at a set drive: peak, FWHM, CIE 1931 colour, dominant wavelength.

The sequence, so that every number is taken from light the device emitted at the drive
and nothing else:

1. drive on (current or voltage, with compliance), settle, auto-expose the spectrometer
   so the peak sits at ``target_fraction`` of full scale;
2. drive off: the spectrometer's dark at that integration time (and the photodiode's dark
   current, when a photometer is configured);
3. drive on again, settle, record the averaged, dark-subtracted spectrum and one
   source-measure reading (and the photodiode current); drive off.

The spectrum goes to ``/entry/spectra`` with its dark; the figures (peak, FWHM, centroid,
CIE x/y, dominant wavelength and purity with the white point named, integration time) to
``/entry/analysis``, computed from the spectral power shape: through the configured
spectral-response calibration when there is one, else from photon counts
(``labrig.analysis.photometry.recorded_power_shape``).

A spectrum that stays saturated at the shortest integration time is recorded as it is
(flagged saturated), the condition is logged and the run ends failed with
``SaturationError``: no figure is computed from it.  A spectrum too weak to analyze is kept
and logged, without figures.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from pymeasure.experiment.parameters import FloatParameter, IntegerParameter, ListParameter

from labrig.errors import InstrumentError, ParameterError, SaturationError
from labrig.limits import Drive, Requested
from labrig.procedure import Column, LabrigProcedure, compliance_current_parameter

SOURCE_MODES = ("current", "voltage")
WHITE_POINTS = ("E", "D65")


class SpectrumProcedure(LabrigProcedure):
    """One auto-exposed, dark-subtracted EL spectrum at a set drive (see module docstring)."""

    NAME = "spectrum"
    SUMMARY = "one EL spectrum at a set drive: peak, FWHM, CIE 1931 x/y, dominant wavelength"
    REQUIRED_ROLES = ("smu", "spectrometer")
    OPTIONAL_ROLES = ("photometer",)
    COLUMNS = (
        Column("voltage", "V", "device voltage"),
        Column("current", "A", "device current"),
        Column("current_density", "mA/cm^2", "current density"),
        Column("photodiode_current", "A", "photodiode current, dark-subtracted (NaN: none)"),
        Column("integration_time", "s", "spectrometer integration time"),
        Column("compliance", "", "SMU at its compliance limit (1) or not (0)", "i1"),
    )
    SIGNAL = "current_density"
    AXIS = "voltage"

    def default_plot(self) -> str:
        """The spectrum (the one data row is the drive it was taken at)."""
        return "spectra"

    source_mode = ListParameter("Source mode", choices=SOURCE_MODES, default="current")
    drive_current = FloatParameter(
        "Drive current", units="mA", default=0.04, minimum=-1050.0, maximum=1050.0
    )
    drive_voltage = FloatParameter(
        "Drive voltage", units="V", default=4.0, minimum=-210.0, maximum=210.0
    )
    compliance_voltage = FloatParameter(
        "Compliance voltage (current mode)", units="V", default=10.0, minimum=0.1, maximum=210.0
    )
    compliance_current = compliance_current_parameter(
        "Compliance current (voltage mode)"
    )  # A, as in every procedure (files before: mA)
    settle_time = FloatParameter("Settle time", units="s", default=1.0, minimum=0.0, maximum=600.0)
    scans_to_average = IntegerParameter("Scans to average", default=5, minimum=1, maximum=1000)
    target_fraction = FloatParameter(
        "Auto-exposure target", default=0.7, minimum=0.1, maximum=0.9, description="of full scale"
    )
    max_integration_time = FloatParameter(
        "Longest integration time", units="s", default=2.0, minimum=0.001, maximum=65.0
    )
    white_point = ListParameter(
        "White point",
        choices=WHITE_POINTS,
        default="E",
        description="for dominant wavelength and purity: E (equal energy) or D65",
    )

    # ------------------------------------------------------------------ plan
    def drive(self, config: Any) -> tuple[str, float, float]:
        """(function, level in V or A, compliance in A or V), SI."""
        if self.source_mode == "current":
            return "current", float(self.drive_current) * 1e-3, float(self.compliance_voltage)
        compliance = float(self.compliance_current) or config.limits.default_compliance_a
        return "voltage", float(self.drive_voltage), compliance

    def drives(self, config: Any) -> list[Drive]:
        """The set drive with its compliance, named as the parameters give them."""
        function, level, compliance = self.drive(config)
        if function == "current":
            return [
                Drive(
                    Requested("current", level, "drive_current", units="mA"),
                    Requested("voltage", compliance, "compliance_voltage"),
                )
            ]
        return [
            Drive(
                Requested("voltage", level, "drive_voltage"),
                Requested("current", compliance, "compliance_current"),
            )
        ]

    def validate(self, config: Any) -> None:
        if self.source_mode not in SOURCE_MODES:
            raise ParameterError(
                f"source_mode={self.source_mode!r}: allowed: {', '.join(SOURCE_MODES)}"
            )
        if self.white_point not in WHITE_POINTS:
            raise ParameterError(
                f"white_point={self.white_point!r}: allowed: {', '.join(WHITE_POINTS)}"
            )
        super().validate(config)
        function, level, _ = self.drive(config)
        if not level:
            raise ParameterError(f"drive_{function}=0: a spectrum needs a non-zero drive")

    def estimated_points(self) -> int:
        return 1

    # ------------------------------------------------------------------ run
    def startup(self) -> None:
        bench = self.bench
        self._function, self._level, self._compliance = self.drive(bench.config)
        if self._function == "current":
            bench.check_drive(volts=self._compliance, amps=self._level)
        else:
            bench.check_drive(volts=self._level, amps=self._compliance)
        bench.smu.configure_source(self._function, self._compliance)
        bench.smu.disable_output()
        self._photometer = bench.photometer if bench.has("photometer") else None
        if self._photometer is not None:
            self._photometer.configure(nplc=1.0)
            self._photometer.zero_correct()  # the manual's way; leaves zero check off

    def execute(self) -> None:
        bench = self.bench
        smu, spec = bench.smu, bench.spectrometer
        self._drive_on()
        self.emit_progress(10)
        try:
            spec.auto_expose(
                target_fraction=self.target_fraction, max_time_s=self.max_integration_time
            )
        except SaturationError as exc:
            self._record_saturation(str(exc))
            raise
        self.emit_progress(40)

        self._drive_off()
        dark = spec.take_dark(scans_to_average=self.scans_to_average)
        pd_dark = self._photodiode()
        self.emit_progress(60)

        self._drive_on()
        spectrum = spec.acquire(scans_to_average=self.scans_to_average)
        reading = smu.measure()
        pd = self._photodiode() - pd_dark
        self._drive_off()
        self.emit_progress(90)

        self.emit_spectrum(0, spectrum, dark=dark)
        if reading.in_compliance:
            self.log_event(
                "compliance",
                f"the SMU was at its compliance ({self._compliance:g} "
                f"{'V' if self._function == 'current' else 'A'}) during the spectrum",
                logging.WARNING,
            )
        area_cm2 = bench.config.device.active_area_cm2
        self.emit_row(
            {
                "voltage": reading.voltage,
                "current": reading.current,
                "current_density": reading.current / area_cm2 * 1e3,
                "photodiode_current": pd,
                "integration_time": spectrum.integration_time_s,
                "compliance": int(reading.in_compliance),
            }
        )
        if spectrum.saturated:
            self._record_saturation(
                "the spectrum saturated after auto-exposure (the emission grew meanwhile)"
            )
            raise SaturationError(
                "spectrometer: the recorded spectrum is saturated; no figures computed"
            )
        self._emit_figures(spectrum)
        self.emit_progress(100)

    def shutdown(self) -> None:
        """Stop sourcing (the bench ramps and makes every output safe afterwards)."""
        bench = getattr(self, "bench", None)
        if bench is not None and bench.smu is not None:
            bench.smu.disable_output()

    # ------------------------------------------------------------------ helpers
    def _drive_on(self) -> None:
        """Output on at the drive level, confirmed by a reading (the SMU handles commands
        in order, so a reply means the output is on before the spectrometer looks)."""
        smu = self.bench.smu
        smu.set_level(self._level)
        smu.enable_output()
        smu.measure()
        self.bench.clock.sleep(self.settle_time)

    def _drive_off(self) -> None:
        """Output off, confirmed by querying it: a dark taken while the device still
        shines would be subtracted from the emission."""
        smu = self.bench.smu
        smu.disable_output()
        if smu.output_enabled:
            raise InstrumentError("smu: the output is still on after switching it off")

    def _photodiode(self) -> float:
        if self._photometer is None:
            return math.nan
        return float(self._photometer.read().current)

    def _record_saturation(self, message: str) -> None:
        """Keep the saturated frame (flagged) and say so; never turn it into figures."""
        self.log_event("saturation", message, logging.ERROR)
        try:
            frame = self.bench.spectrometer.acquire(subtract_dark=False)
            self.emit_spectrum(0, frame)
        finally:
            self.bench.smu.disable_output()
        self.emit_analysis({"saturated": (True, "")})

    def _emit_figures(self, spectrum: Any) -> None:
        from labrig.analysis.photometry import (
            BenchPhotometry,
            recorded_power_shape,
            usable_for_weighting,
        )
        from labrig.analysis.spectral import analyze_spectrum

        common = {
            "integration_time": (spectrum.integration_time_s, "s"),
            "scans_averaged": (spectrum.scans_averaged, ""),
            "saturated": (False, ""),
        }
        if not usable_for_weighting(spectrum):
            self.log_event(
                "analysis",
                "spectrum too weak to analyze (peak below 30x the pixel noise): kept, no "
                "figures; raise the drive or the longest integration time",
                logging.WARNING,
            )
            self.emit_analysis(common)
            return
        response = BenchPhotometry(self.bench.config).response
        wl, shape = recorded_power_shape(spectrum, response)
        try:
            figures = analyze_spectrum(wl, np.asarray(shape), white_point=self.white_point)
        except ValueError as exc:
            self.log_event("analysis", f"no spectral figures: {exc}", logging.WARNING)
            self.emit_analysis(common)
            return
        basis = "spectral-response calibration" if response is not None else "photon counts"
        self.emit_analysis({**figures.as_analysis(), **common, "spectral_power_from": (basis, "")})
