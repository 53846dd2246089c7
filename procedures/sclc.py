"""Space-charge-limited current of a hole-only or electron-only device: J–V on log-spaced
voltages, then the Lampert-triangle construction of ``labrig.analysis.sclc``.

The voltages (start, stop, points; geometric spacing) are device voltages; ``polarity``
``inverted`` sources their negatives for a device whose injecting contact is on LO.  The
sweep is the 2400's own list sweep, the settle delay being its source delay, aborted by the
instrument at the first point in compliance (``:SOUR:SWE:CAB EARL``); that is logged, and
any reading flagged in compliance is kept in the data but left out of the analysis.

Figures: ``v_tfl`` and ``trap_density`` (n_t = 2·ε0·εr·V_TFL/(q·d²)), ``mobility`` from the
Mott–Gurney fit with its range ``child_fit_v_min``/``child_fit_v_max``, the Ohmic, TFL and
Child slopes and ranges; the smoothed log–log slope at every point is the ``slope``
column.  No
slope-2 region: no mobility, and ``notes`` says so.  Thickness and εr come from the
config's ``device`` section; missing ones are refused before anything is opened.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pymeasure.experiment.parameters import FloatParameter, IntegerParameter, ListParameter

from labrig.analysis.sclc import analyze_sclc
from labrig.errors import ParameterError
from labrig.interfaces import SourceReading
from labrig.limits import Drive, Requested
from labrig.procedure import Column, LabrigProcedure, compliance_current_parameter

POLARITIES = ("normal", "inverted")
MAX_POINTS = 2500


class SCLCProcedure(LabrigProcedure):
    """Log-spaced J–V of a single-carrier device with SCLC figures (module docstring)."""

    NAME = "sclc"
    SUMMARY = (
        "single-carrier J-V on log-spaced voltages: trap density (V_TFL) and Mott-Gurney mobility"
    )
    REQUIRED_ROLES = ("smu",)
    COLUMNS = (
        Column("voltage", "V", "device voltage"),
        Column("current", "A", "device current"),
        Column("current_density", "mA/cm^2", "current density"),
        Column("slope", "", "log-log slope d ln J / d ln V (smoothed; NaN: not analyzed)"),
        Column("timestamp", "s", "clock time, seconds since the Unix epoch"),
        Column("compliance", "", "SMU in compliance", "i1"),
    )
    SIGNAL = "current_density"
    AXIS = "voltage"

    start_voltage = FloatParameter(
        "Start voltage", units="V", default=0.01, minimum=1e-6, maximum=210
    )
    stop_voltage = FloatParameter(
        "Stop voltage", units="V", default=10.0, minimum=1e-6, maximum=210
    )
    points = IntegerParameter("Points", default=61, minimum=5, maximum=MAX_POINTS)
    polarity = ListParameter(
        "Polarity",
        choices=POLARITIES,
        default="normal",
        description="inverted: the SMU sources -V (injecting contact on LO)",
    )
    compliance_current = compliance_current_parameter()
    settle_delay = FloatParameter("Settle delay", units="s", default=0.05, minimum=0, maximum=60)
    nplc = FloatParameter("SMU NPLC", default=1.0, minimum=0.01, maximum=10)
    built_in_voltage = FloatParameter(
        "Built-in voltage correction", units="V", default=0.0, minimum=-10, maximum=10
    )
    series_resistance = FloatParameter(
        "Series resistance correction", units="ohm", default=0.0, minimum=0, maximum=1e9
    )

    # ------------------------------------------------------------------ plan
    @property
    def sign(self) -> float:
        return -1.0 if self.polarity == "inverted" else 1.0

    def voltages(self) -> np.ndarray:
        """The device voltages, geometrically spaced from start to stop."""
        start, stop = float(self.start_voltage), float(self.stop_voltage)
        if not 0 < start < stop:
            raise ParameterError(
                f"start_voltage={start:g}, stop_voltage={stop:g}: allowed 0 < start < stop (V)"
            )
        if not 5 <= int(self.points) <= MAX_POINTS:
            raise ParameterError(f"points={self.points}: allowed 5 to {MAX_POINTS}")
        return np.geomspace(start, stop, int(self.points))

    def validate(self, config: Any) -> None:
        if self.polarity not in POLARITIES:
            raise ParameterError(f"polarity={self.polarity!r}: allowed: {', '.join(POLARITIES)}")
        device = config.device
        if device.thickness_nm is None:
            raise ParameterError(
                "device.thickness_nm: missing; SCLC needs the film thickness (nm) in the config"
            )
        if device.relative_permittivity is None:
            raise ParameterError(
                "device.relative_permittivity: missing; SCLC needs the film's εr in the config"
            )
        super().validate(config)

    def drives(self, config: Any) -> list[Drive]:
        """The sweep's end voltage at the compliance current (0: the config's default)."""
        compliance = self.compliance_current or config.limits.default_compliance_a
        return [
            Drive(
                Requested("voltage", self.voltages()[-1], "stop_voltage"),
                Requested("current", compliance, "compliance_current"),
            )
        ]

    def estimated_points(self) -> int | None:
        return int(self.points)

    # ------------------------------------------------------------------ run
    def _emit(self, readings: list[SourceReading], t0: float, slope_at: dict) -> None:
        """The sweep's rows (the log-log slope where the analysis has one)."""
        v = np.array([self.sign * r.voltage for r in readings])
        i = np.array([self.sign * r.current for r in readings])
        self.emit_rows(
            {
                "voltage": v,
                "current": i,
                "current_density": i / self.bench.config.device.active_area_cm2 * 1e3,
                "slope": [float(slope_at.get(abs(x), np.nan)) for x in v],
                "timestamp": [t0 + (r.time - readings[0].time) for r in readings],
                "compliance": np.array([r.in_compliance for r in readings], dtype=np.int8),
            }
        )

    def startup(self) -> None:
        compliance = self.compliance_current or self.bench.limits.default_compliance_a
        self.bench.check_drive(volts=float(self.stop_voltage), amps=compliance)
        self.bench.smu.configure_source(
            "voltage", compliance, nplc=self.nplc, source_delay=self.settle_delay
        )

    def execute(self) -> None:
        device = self.bench.config.device
        area = device.active_area_cm2
        clock = self.bench.clock
        t0 = clock.time()
        planned = self.voltages()
        readings: list[SourceReading] = []
        try:
            for part in self.bench.smu.sweep_chunks(
                [self.sign * v for v in planned], abort_on_compliance=True
            ):
                readings += part
        except BaseException:  # a stop (or a fault) mid-sweep: keep what was measured
            if readings:
                self._emit(readings, t0, {})
            raise
        v = np.array([self.sign * r.voltage for r in readings])
        i = np.array([self.sign * r.current for r in readings])
        hit = np.array([r.in_compliance for r in readings], dtype=bool)
        if hit.any() or len(readings) < len(planned):
            where = v[hit][0] if hit.any() else planned[len(readings)]
            self.log_event(
                "compliance",
                f"compliance at {where:g} V: the sweep stopped there "
                f"({len(readings)} of {len(planned)} points; none in compliance is analyzed)",
                logging.WARNING,
            )
        result = None
        try:
            result = analyze_sclc(
                v[~hit],
                i[~hit] / area,
                thickness_nm=device.thickness_nm,
                relative_permittivity=device.relative_permittivity,
                built_in_voltage_v=self.built_in_voltage,
                series_resistance_ohm_cm2=self.series_resistance * area,
            )
        except ParameterError as exc:  # too few usable points: keep the data, say why
            self.log_event("analysis", str(exc), logging.WARNING)
        slope_at = {} if result is None else dict(zip(result.voltage_v, result.slope, strict=True))
        self._emit(readings, t0, slope_at)
        self.emit_progress(100.0)
        if result is not None:
            self.emit_analysis(result.as_figures())
            for note in result.notes:
                self.log_event("analysis", note, logging.WARNING)
