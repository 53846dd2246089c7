"""Pulsed-mode EL: EL vs pulse width, pulsed J–V–L and EQE–J against DC, heating made visible.

Perovskite LEDs heat under DC drive; millisecond pulses keep the emitting film cool, so
the pulsed EQE at high J sits above the DC curve and the EL at a fixed drive falls as the
pulse gets longer.  This procedure separates that heating from the intrinsic roll-off.

**Pulses.**  The 2400 has no pulse mode: with ``:SOUR:CLE:AUTO ON`` its output is on only
for each source–delay–measure cycle (``SourceMeter.pulsed_cycles``), off in the solid-state
NORMAL output-off state between cycles (never HIMP, whose relay would switch every pulse).
The pulse width is the source delay plus the integration time (NPLC / line frequency, one
A/D phase: autozero is off, three phases would triple it); the period is set by the
trigger delay between cycles (``off_time`` = period − width − trigger latency).  The
2400 measures V and I at the end of each pulse (its integration is the last part of it).

**Achieved timing, measured.**  Before each width is used, a few back-to-back cycles at
0 (no light, no heating) are timed with the 2400's own timestamps (TIME element): their
spacing is trigger latency + width, so the achieved width is that spacing minus the
2400's specified trigger latency (its driver's ``TRIGGER_LATENCY_S``, autozero off).  The
achieved period is the median spacing of the pulse train's own timestamps; the duty cycle
is their ratio.  Both are stored per row, never the set values.

**Heating apart from ageing.**  The device ages while it is pulsed, so a sweep run in
increasing width order would add its ageing to the EL drop read as heating.  Each drive
level's width sweep is therefore bracketed: a train at the reference (shortest) width
first, then every other width followed by another reference train (``reference`` = 1).
The analysis divides each width's EL by the reference EL interpolated in drive on-time
(``on_time``) to the middle of its train -- heating alone -- and reports the reference
EL's change over the sweep as the drift (``labrig.analysis.pulsed.separate_heating``).
Warmth a long train leaves in the substrate dims the next reference a little and counts
as drift: give ``rest`` a few substrate time constants (on the simulated device, τ = 3 s,
the default 2 s leaves about 0.1 % of EL).

**Photodiode inside the pulse.**  The 2400 outputs a Trigger Link trigger when each pulse
starts (``:TRIG:OUTP SOUR``); the 6485, armed for one triggered conversion per pulse,
starts its integration a trigger delay later, placed so that its aperture (NPLC / line
frequency) ends ``APERTURE_MARGIN_S`` before the pulse does: the photodiode reads the
light of the end of the pulse, where the 2400 measures the current.  (Averaging over on
and off time and dividing by a duty cycle would mix in the 6485's and the cable's time
constants; the triggered aperture needs no correction.)  The dark current, read with the
output off before the first pulse, is subtracted.  This needs a Trigger Link cable from
the 2400 to the 6485 on ``trigger_line``.

**Photometry** as in the J–V–L sweep (``labrig.analysis.photometry.BenchPhotometry``) with
the configured reference spectrum (a spectrometer cannot integrate inside the pulses
without a trigger of its own; its exposure would average on and off time).

**DC reference.**  ``dc_reference=measure`` (the default): in a width sweep each level's
DC point follows the level's last train, which is at the reference width, so the two are
taken at the same ageing of the device and differ by heating: the level is held DC for
``dc_dwell`` and read with the 2400 and an averaged 6485 burst, then the output rests off
for ``dc_rest`` so the substrate cools before the next level.  A drive sweep holds its
levels DC after the pulsed points, in a rising sweep like a J–V–L (the device heats as it
would there).  ``file``: the J–V–L run file ``dc_file`` is read and its points stored.
Either way the DC rows sit in the same table (``mode`` = "dc" or "dc file") and the
analysis compares EQE–J on a shared log-J axis (``labrig.analysis.pulsed``); a width sweep
over several levels also stores each level's pulsed and DC EQE, their ratio, EL drop,
heating and drift as arrays across the levels (``levels_*``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from pymeasure.experiment.parameters import (
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
)

from labrig.errors import InstrumentSettingError, ParameterError
from labrig.instruments import driver_class
from labrig.interfaces import SHORT_BELOW_V
from labrig.limits import Drive, Requested, opposite
from labrig.procedure import Column, LabrigProcedure
from labrig.procedures.jvl import JVLProcedure

MODES = ("width sweep", "drive sweep")
DRIVES = ("current", "voltage")
DC_REFERENCES = ("none", "measure", "file")
#: longest integration per power-line cycle the validation assumes (50 Hz mains), s
WORST_CYCLE_S = 1 / 50
#: the photodiode aperture ends this long before the pulse does (trigger jitter), s
APERTURE_MARGIN_S = 2e-5
#: widths allowed at all (s); shorter than the NPLC allows is rejected separately
WIDTH_LIMITS_S = (1e-4, 0.1)
#: above this duty cycle the "pulses" heat like DC: use the J–V–L sweep
MAX_DUTY_CYCLE = 0.5
#: back-to-back cycles timed at 0 to measure the achieved width
TIMING_CYCLES = 4
#: readings averaged for each DC point and for the photodiode dark
DC_READINGS = 10
#: the bench's settling after a DC level change: the 6485 settles a step response within
#: 100 ms at 1-10 PLC (6485 manual, "Rate"); a shorter DC dwell reads before it has
DC_SETTLING_S = 0.1


def bracketed(level: float, widths: list[float]) -> list[tuple[float, float, bool]]:
    """(level, width, reference) of one drive level's width sweep: the reference
    (shortest) width first, then each other width (in the order given) followed by a
    reference train, so the device's drift during the sweep is measured beside it."""
    ref = min(widths)
    out = [(level, ref, False)]
    for width in dict.fromkeys(w for w in widths if w != ref):
        out += [(level, width, False), (level, ref, True)]
    return out


def number_list(name: str, text: str) -> list[float]:
    """Comma-separated finite numbers (ParameterError naming ``name`` otherwise)."""
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ParameterError(f"{name}={text!r}: not a comma-separated list of numbers") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ParameterError(f"{name}={text!r}: need at least one finite number")
    return values


class PulsedELProcedure(LabrigProcedure):
    """Pulse-width and drive sweeps of auto-off 2400 pulses with a triggered photodiode."""

    NAME = "pulsed-el"
    SUMMARY = "pulsed EL: EL vs pulse width, pulsed J-V-L/EQE-J vs DC (heating separated)"
    REQUIRED_ROLES = ("smu", "photometer")
    COLUMNS = (
        Column("mode", "", "width sweep, drive sweep, dc or dc file", "str"),
        Column("set_width", "ms", "pulse width asked for"),
        Column("achieved_width", "ms", "pulse width measured from the 2400's timestamps"),
        Column("achieved_period", "ms", "pulse period measured from the 2400's timestamps"),
        Column("duty_cycle", "%", "achieved width / achieved period (100 for DC)"),
        # units per run (``columns``): V for drive=voltage, A for drive=current
        Column("drive_level", "", "programmed level"),
        Column("voltage", "V", "voltage during the pulse"),
        Column("peak_current", "A", "current during the pulse"),
        Column("mean_current", "A", "time-averaged current: peak × duty cycle"),
        Column("current_density", "mA/cm^2", "current density J during the pulse"),
        Column("photodiode_current", "A", "photodiode current inside the pulse, dark-subtracted"),
        Column("luminance", "cd/m^2", "luminance during the pulse"),
        Column("eqe", "%", "external quantum efficiency"),
        Column("el_intensity", "1", "photodiode current relative to the first row of its sweep"),
        Column("compliance", "", "SMU in compliance during a pulse", "i1"),
        Column("timestamp", "s", "time since the run started"),
        Column(
            "reference",
            "",
            "1: a reference-width train bracketing the width sweep (drift), 0: a sweep point",
            "i1",
        ),
        Column("on_time", "s", "drive on-time at this level up to the middle of this train"),
    )
    SIGNAL = "el_intensity"
    AXIS = "set_width"

    _value = JVLProcedure._value  # pymeasure's conversion and range check, as ParameterError

    mode = ListParameter("Mode", choices=MODES, default="width sweep")
    drive = ListParameter("Drive", choices=DRIVES, default="current")
    drive_levels = Parameter(
        "Drive levels",
        default="0.001, 0.002, 0.004, 0.008",
        description="comma-separated pulse levels: A for drive=current, V for drive=voltage "
        "(default 1-8 mA: 25-200 mA/cm² on a 0.04 cm² pixel, up into the roll-off)",
    )
    widths = Parameter(
        "Pulse widths", default="0.5, 1, 2, 5, 10, 20", description="comma-separated, ms"
    )
    period = FloatParameter(
        "Period",
        units="ms",
        default=0.0,
        minimum=0.0,
        maximum=1e6,
        description="0: from the duty cycle (period = width / duty cycle)",
    )
    duty_cycle = FloatParameter("Duty cycle", units="%", default=1.0, minimum=0.001, maximum=100)
    pulses_per_point = IntegerParameter("Pulses per point", default=20, minimum=2, maximum=2500)
    compliance = FloatParameter(
        "Compliance",
        default=0.0,
        minimum=0.0,
        maximum=210.0,
        description="V for drive=current, A for drive=voltage; 0: the config's limit",
    )
    smu_nplc = FloatParameter("SMU NPLC", default=0.01, minimum=0.01, maximum=10)
    photometer_nplc = FloatParameter("Photometer NPLC", default=0.01, minimum=0.01, maximum=60)
    photometer_range = FloatParameter(
        "Photometer range",
        units="A",
        default=0.0,
        minimum=0.0,
        maximum=0.02,
        description="0: auto range; a fixed 6485 range (2e-9 … 2e-2 A) spares ranging time",
    )
    trigger_line = IntegerParameter("Trigger Link line", default=2, minimum=1, maximum=4)
    rest = FloatParameter(
        "Rest between points",
        units="s",
        default=2.0,
        minimum=0.0,
        maximum=3600,
        description="output off so the substrate cools before the next point",
    )
    dc_reference = ListParameter("DC reference", choices=DC_REFERENCES, default="measure")
    dc_file = Parameter("DC J-V-L run file", default="", description="for dc_reference=file")
    dc_dwell = FloatParameter(
        "DC dwell per point", units="s", default=1.0, minimum=0.0, maximum=600
    )
    dc_rest = FloatParameter(
        "Rest after a DC point",
        units="s",
        default=15.0,
        minimum=0.0,
        maximum=3600,
        description="width sweep: output off after each level's DC point so the substrate "
        "cools (several of its time constants) before the next level's pulses",
    )

    # ------------------------------------------------------------------ plan
    def levels(self) -> list[float]:
        return number_list("drive_levels", self._value("drive_levels"))

    def widths_s(self) -> list[float]:
        return [w * 1e-3 for w in number_list("widths", self._value("widths"))]

    def period_s(self, width_s: float) -> float:
        period_ms = self._value("period")
        return period_ms * 1e-3 if period_ms > 0 else width_s / (self._value("duty_cycle") / 100)

    def points(self) -> list[tuple[float, float, bool]]:
        """(level, width, reference) in measurement order: a bracketed width sweep
        (``bracketed``) inside each level for a width sweep, levels inside widths for a
        drive sweep."""
        levels, widths = self.levels(), self.widths_s()
        if self._value("mode") == "width sweep":
            return [p for lv in levels for p in bracketed(lv, widths)]
        return [(lv, w, False) for w in widths for lv in levels]

    def compliance_value(self, config: Any) -> float:
        value = self._value("compliance")
        if value > 0:
            return value
        if self._value("drive") == "current":
            return config.limits.max_voltage_v
        return config.limits.default_compliance_a

    def resolved_parameters(self, config: Any) -> dict[str, Any]:
        return {"compliance": self.compliance_value(config)}

    def columns(self) -> tuple[Column, ...]:
        """``drive_level`` in the drive's own unit (V or A)."""
        units = "A" if self.drive == "current" else "V"
        return tuple(
            Column(c.name, units, f"programmed {self.drive} level", c.dtype)
            if c.name == "drive_level"
            else c
            for c in self.COLUMNS
        )

    def estimated_points(self) -> int | None:
        try:
            dc = len(self.levels()) if self.dc_reference == "measure" else 0
            return len(self.points()) + dc
        except ParameterError:
            return None

    def drives(self, config: Any) -> list[Drive]:
        """The largest pulse level with the compliance, in the drive's units."""
        function = "current" if self.drive == "current" else "voltage"
        worst = max(self.levels(), key=abs)
        return [
            Drive(
                Requested(function, worst, "drive_levels", context="the highest level is"),
                Requested(opposite(function), self.compliance_value(config), "compliance"),
            )
        ]

    def validate(self, config: Any) -> None:
        """The drive against the 2400 and the config's limits (the default ``validate``),
        then pulse timings the 2400 can make and the photodiode can read inside."""
        for name in self._parameters:
            self._value(name)
        if self.mode == "width sweep":
            self.SIGNAL, self.AXIS = "el_intensity", "set_width"
        else:
            self.SIGNAL, self.AXIS = "eqe", "current_density"
        super().validate(config)
        smu = driver_class(config.instruments["smu"].driver)
        integration = self.smu_nplc * WORST_CYCLE_S
        aperture = self.photometer_nplc * WORST_CYCLE_S
        for width in self.widths_s():
            lo, hi = WIDTH_LIMITS_S
            if not lo <= width <= hi:
                raise ParameterError(
                    f"widths: {width * 1e3:g} ms is outside the allowed "
                    f"{lo * 1e3:g}–{hi * 1e3:g} ms"
                )
            if width < integration:
                raise ParameterError(
                    f"widths: {width * 1e3:g} ms is shorter than the 2400 can make at "
                    f"smu_nplc={self.smu_nplc:g} ({integration * 1e3:g} ms integration at "
                    f"50 Hz, autozero off); the minimum is NPLC {smu.NPLC_LIMITS[0]:g} -> "
                    f"{smu.NPLC_LIMITS[0] * WORST_CYCLE_S * 1e3:g} ms"
                )
            if width < aperture + APERTURE_MARGIN_S:
                raise ParameterError(
                    f"widths: {width * 1e3:g} ms cannot hold the photodiode reading: "
                    f"photometer_nplc={self.photometer_nplc:g} integrates "
                    f"{aperture * 1e3:g} ms at 50 Hz (+{APERTURE_MARGIN_S * 1e3:g} ms margin)"
                )
            self._check_period(width, smu)
        if self.photometer_range:
            photometer = driver_class(config.instruments["photometer"].driver)
            try:
                photometer.check_range("photometer_range", self.photometer_range)
            except InstrumentSettingError as exc:
                raise ParameterError(f"{exc}, or 0 (auto range)") from None
        if self.dc_reference == "file":
            self.reference_file()  # names a file, or ParameterError
            if self.context.reference is not None:
                self._dc_file_rows()  # a J-V-L run, with J and EQE, or ParameterError
        from labrig.analysis.photometry import BenchPhotometry

        BenchPhotometry(config).reference  # noqa: B018 - ConfigError when it cannot be built

    def _check_period(self, width: float, smu: Any) -> None:
        """The period of ``width`` pulses: longer than the pulse by the 2400's trigger
        latency, within its longest trigger delay, below the pulsed-mode duty cycle."""
        period = self.period_s(width)
        name = "period" if self.period > 0 else "duty_cycle"
        latency = smu.TRIGGER_LATENCY_S
        if width >= period:
            raise ParameterError(
                f"{name}: width {width * 1e3:g} ms is not shorter than the period "
                f"{period * 1e3:g} ms"
            )
        if period < width + latency:
            raise ParameterError(
                f"{name}: period {period * 1e3:g} ms leaves less than the 2400's "
                f"trigger latency ({latency * 1e3:g} ms) off after a "
                f"{width * 1e3:g} ms pulse"
            )
        if width / period > MAX_DUTY_CYCLE:
            raise ParameterError(
                f"{name}: duty cycle {100 * width / period:.3g} % at {width * 1e3:g} ms "
                f"exceeds the pulsed-mode limit {100 * MAX_DUTY_CYCLE:g} % (use the "
                "jvl procedure for DC)"
            )
        longest = smu.DELAY_LIMITS_S[1]
        if period - width - latency > longest:
            raise ParameterError(
                f"{name}: period {period:g} s needs more than the 2400's longest trigger "
                f"delay ({longest:g} s) between pulses"
            )

    def reference_file(self) -> Path | None:
        """The J-V-L run file of ``dc_reference=file`` (the runner reads it)."""
        if self.dc_reference != "file":
            return None
        text = str(self.dc_file or "").strip()
        if not text:
            raise ParameterError("dc_file: empty; dc_reference=file needs a J-V-L run file")
        path = Path(text).expanduser()
        if not path.is_file():
            raise ParameterError(f"dc_file={text!r}: no such file")
        return path

    def _dc_file_rows(self) -> dict[str, np.ndarray]:
        """J (mA/cm²), EQE (%), V, I, L and photodiode current of the J–V–L run the
        runner read from ``dc_file`` (``context.reference``)."""
        run = self.context.reference
        text = str(self.dc_file or "").strip()
        if run is None:
            raise ParameterError(f"dc_file={text!r}: not read (run the procedure with labrig run)")
        data = run.columns.get("data", {})
        needed = ("voltage", "current", "current_density", "eqe")
        missing = [c for c in needed if c not in data]
        if missing:
            raise ParameterError(
                f"dc_file={text!r}: not a J-V-L run (procedure {run.procedure!r}); "
                f"missing column(s) {', '.join(missing)}"
            )
        out = {name: np.asarray(data[name][0], float) for name in needed}
        for name in ("luminance", "photodiode_current"):
            out[name] = (
                np.asarray(data[name][0], float)
                if name in data
                else np.full(out["voltage"].shape, np.nan)
            )
        return out

    # ------------------------------------------------------------------ run
    def startup(self) -> None:
        from labrig.analysis.photometry import BenchPhotometry

        bench = self.bench
        config = bench.config
        self.validate(config)
        self._points = self.points()
        self._compliance = self.compliance_value(config)
        self._function = "current" if self.drive == "current" else "voltage"
        self._photometry = BenchPhotometry(config)
        self._area_cm2 = config.device.active_area_cm2
        self._configure_pulses()
        bench.photometer.configure(
            nplc=self.photometer_nplc, current_range=self.photometer_range or None
        )
        bench.photometer.zero_correct()
        frequency = getattr(bench.photometer, "line_frequency_hz", None)
        self._line_hz = float(frequency()) if frequency is not None else 1 / WORST_CYCLE_S
        self.log_event(
            "setup",
            f"photodiode triggered over Trigger Link line {self.trigger_line} at each pulse "
            f"start; aperture {self.photometer_nplc / self._line_hz * 1e3:.3g} ms ending "
            f"{APERTURE_MARGIN_S * 1e3:g} ms before the pulse does ({self._line_hz:g} Hz mains)",
        )
        if self.dc_reference == "measure" and self.dc_dwell < DC_SETTLING_S:
            self.log_event(
                "bad input",
                f"dc_dwell={self.dc_dwell:g} s is shorter than the instruments' settling "
                f"({DC_SETTLING_S:g} s): the DC reference is read before it has settled",
                logging.WARNING,
            )
        self._timing: dict[float, float] = {}
        self._first: dict[tuple[str, float], float] = {}
        self._shorts = 0
        self._on_time: dict[float, float] = {}
        self._rows: list[dict[str, Any]] = []

    def execute(self) -> None:
        bench = self.bench
        self._t0 = bench.clock.time()
        self._dark = self._photodiode_dark()
        # a width sweep measures each level's DC point right after the level's last
        # (reference-width) train: pulsed and DC at the same ageing, apart only by heating
        interleaved = self.dc_reference == "measure" and self.mode == "width sweep"
        rest = 0.0
        for k, (level, width, reference) in enumerate(self._points):
            if self.should_stop():
                self.log_event("stop", f"stopped by request before point {k}")
                return
            if rest:
                bench.clock.sleep(rest)
            self._pulsed_point(level, width, reference)
            self.emit_progress(100.0 * (k + 1) / (self.estimated_points() or 1))
            rest = self.rest
            last_of_level = k + 1 == len(self._points) or self._points[k + 1][0] != level
            if interleaved and last_of_level:
                self._measure_dc([level])
                self._configure_pulses()
                rest = max(self.rest, self.dc_rest)
        if self.dc_reference == "measure" and not interleaved:
            self._measure_dc(sorted(set(self.levels()), key=abs))
        elif self.dc_reference == "file":
            self._store_dc_file()
        self._emit_figures()

    def shutdown(self) -> None:
        """Stop sourcing; the bench ramps down and makes every output safe afterwards."""
        bench = getattr(self, "bench", None)
        if bench is not None and bench.smu is not None:
            bench.smu.disable_output()

    # ------------------------------------------------------------------ measurements
    def _configure_pulses(self) -> None:
        """The 2400 set up for auto-off pulses (autozero off: one A/D phase), output off."""
        smu = self.bench.smu
        smu.configure_source(
            self._function, self._compliance, nplc=self.smu_nplc, source_delay=0.0, autozero=False
        )
        smu.disable_output()

    def _photodiode_dark(self) -> float:
        """Mean photodiode current with the output off (subtracted from every reading)."""
        readings = self.bench.photometer.read_burst(DC_READINGS)
        dark = float(np.mean([r.current for r in readings]))
        self.log_event("dark", f"photodiode dark current {dark:.4g} A ({DC_READINGS} readings)")
        return dark

    def _integration_s(self) -> float:
        return self.smu_nplc / self._line_hz

    def _achieved_width(self, width: float) -> float:
        """Measured on-time for ``width``: back-to-back cycles at 0 timed by the 2400."""
        if width not in self._timing:
            smu = self.bench.smu
            smu.set_trigger_output((), line=self.trigger_line)
            smu.reset_timestamp()  # 7-digit stamps: keep them small to resolve µs
            readings = smu.pulsed_cycles(
                0.0,
                TIMING_CYCLES,
                source_delay=width - self._integration_s(),
                nplc=self.smu_nplc,
            )
            spacing = float(np.median(np.diff([r.time for r in readings])))
            self._timing[width] = spacing - smu.TRIGGER_LATENCY_S
            self.log_event(
                "timing",
                f"width {width * 1e3:g} ms: cycles {spacing * 1e3:.4g} ms apart, achieved "
                f"{self._timing[width] * 1e3:.4g} ms (trigger latency "
                f"{smu.TRIGGER_LATENCY_S * 1e3:g} ms subtracted)",
            )
        return self._timing[width]

    def _pulsed_point(self, level: float, width: float, reference: bool = False) -> None:
        smu, photometer = self.bench.smu, self.bench.photometer
        achieved_width = self._achieved_width(width)
        period = self.period_s(width)
        count = self.pulses_per_point
        aperture = self.photometer_nplc / self._line_hz
        photometer.arm_link_burst(
            count,
            line=self.trigger_line,
            delay_s=max(0.0, width - aperture - APERTURE_MARGIN_S),
        )
        smu.set_trigger_output(("source",), line=self.trigger_line)
        smu.reset_timestamp()
        readings = smu.pulsed_cycles(
            level,
            count,
            source_delay=width - self._integration_s(),
            nplc=self.smu_nplc,
            off_time=max(0.0, period - width - smu.TRIGGER_LATENCY_S),
        )
        # (after a failure the trigger output may stay on: harmless, the output is off)
        smu.set_trigger_output((), line=self.trigger_line)
        light = [r.current for r in photometer.fetch_link_burst(count)]
        stamps = [r.time for r in readings]
        achieved_period = float(np.median(np.diff(stamps)))
        duty = achieved_width / achieved_period
        peak = float(np.mean([r.current for r in readings]))
        mode = str(self.mode)
        before = self._on_time.get(level, 0.0)  # ageing at one level goes with on-time
        self._on_time[level] = before + count * achieved_width
        self._emit_point(
            mode=mode,
            set_width=width,
            achieved_width=achieved_width,
            achieved_period=achieved_period,
            duty=duty,
            level=level,
            voltage=float(np.mean([r.voltage for r in readings])),
            peak=peak,
            photodiode=float(np.mean(light)) - self._dark,
            compliance=any(r.in_compliance for r in readings),
            group=(mode, level if mode == "width sweep" else width),
            reference=reference,
            on_time=before + count * achieved_width / 2,
        )

    def _measure_dc(self, levels: list[float]) -> None:
        """DC at ``levels`` in turn (a rising sweep: J–V–L-like), ``dc_dwell`` each."""
        smu, photometer, clock = self.bench.smu, self.bench.photometer, self.bench.clock
        smu.configure_source(self._function, self._compliance, nplc=1.0, source_delay=0.0)
        smu.set_level(levels[0])
        smu.enable_output()
        try:
            for level in levels:
                if self.should_stop():
                    self.log_event("stop", "stopped by request during the DC reference")
                    return
                smu.set_level(level)
                clock.sleep(self.dc_dwell)
                reading = smu.measure()
                light = np.mean([r.current for r in photometer.read_burst(DC_READINGS)])
                self._emit_point(
                    mode="dc",
                    set_width=math.nan,
                    achieved_width=math.nan,
                    achieved_period=math.nan,
                    duty=1.0,
                    level=level,
                    voltage=reading.voltage,
                    peak=reading.current,
                    photodiode=float(light) - self._dark,
                    compliance=reading.in_compliance,
                    group=("dc", 0.0),
                )
        finally:
            smu.disable_output()
        self.log_event(
            "dc",
            f"DC reference: {', '.join(f'{lv:g}' for lv in levels)} "
            f"{'A' if self._function == 'current' else 'V'}, {self.dc_dwell:g} s each",
        )

    def _store_dc_file(self) -> None:
        data = self._dc_file_rows()
        n = len(data["voltage"])
        self.emit_rows(
            {
                "mode": ["dc file"] * n,
                "set_width": [math.nan] * n,
                "achieved_width": [math.nan] * n,
                "achieved_period": [math.nan] * n,
                "duty_cycle": [100.0] * n,
                "drive_level": list(data["voltage"]),
                "voltage": list(data["voltage"]),
                "peak_current": list(data["current"]),
                "mean_current": list(data["current"]),
                "current_density": list(data["current_density"]),
                "photodiode_current": list(data["photodiode_current"]),
                "luminance": list(data["luminance"]),
                "eqe": list(data["eqe"]),
                "el_intensity": [math.nan] * n,
                "compliance": [0] * n,
                "timestamp": [math.nan] * n,
                "reference": [0] * n,
                "on_time": [math.nan] * n,
            }
        )
        for k in range(n):
            self._rows.append(
                {
                    "mode": "dc file",
                    "current_density": float(data["current_density"][k]),
                    "eqe": float(data["eqe"][k]),
                }
            )
        self.log_event("dc", f"DC reference: {n} points from {self.dc_file}")

    def _emit_point(
        self,
        *,
        mode: str,
        set_width: float,
        achieved_width: float,
        achieved_period: float,
        duty: float,
        level: float,
        voltage: float,
        peak: float,
        photodiode: float,
        compliance: bool,
        group: tuple[str, float],
        reference: bool = False,
        on_time: float = math.nan,
    ) -> None:
        res = self._photometry.apply(
            np.array([photodiode]),
            np.array([peak]),
            np.array([voltage]),
            self._photometry.reference,
        )
        first = self._first.setdefault(group, photodiode)
        row = {
            "mode": mode,
            "set_width": set_width * 1e3,
            "achieved_width": achieved_width * 1e3,
            "achieved_period": achieved_period * 1e3,
            "duty_cycle": duty * 100,
            "drive_level": level,
            "voltage": voltage,
            "peak_current": peak,
            "mean_current": peak * duty,
            "current_density": peak / self._area_cm2 * 1e3,
            "photodiode_current": photodiode,
            "luminance": float(res.luminance_cd_m2[0]),
            "eqe": float(res.eqe[0] * 100),
            "el_intensity": photodiode / first if first > 0 else math.nan,
            "compliance": int(compliance),
            "timestamp": self.bench.clock.time() - self._t0,
            "reference": int(reference),
            "on_time": on_time,
        }
        self._rows.append(row)
        self.emit_row(row)
        if self._function == "current" and peak and abs(voltage) < SHORT_BELOW_V:
            self._shorts += 1
            if self._shorts == 1:  # once: every later pulse would say the same
                self.log_event(
                    "short",
                    f"{mode} at {level:g} A: {voltage:.3g} V across the device, below "
                    f"{SHORT_BELOW_V:g} V: it looks shorted (an LED passing current shows more)",
                    logging.WARNING,
                )
        if compliance:
            self.log_event(
                "compliance",
                f"{mode} at {level:g} {'A' if self._function == 'current' else 'V'}: the 2400 "
                f"was in compliance ({self._compliance:g})",
                logging.WARNING,
            )

    def _emit_figures(self) -> None:
        from labrig.analysis.pulsed import analyze_pulsed

        def col(name: str, rows: list[dict[str, Any]]) -> np.ndarray:
            return np.array([r[name] for r in rows], float)

        pulsed = [r for r in self._rows if r["mode"] in MODES]
        dc = [r for r in self._rows if r["mode"] in ("dc", "dc file")]
        widths = [r for r in pulsed if r["mode"] == "width sweep"]
        drive = [r for r in pulsed if r["mode"] == "drive sweep"]
        result = analyze_pulsed(
            width_ms=col("set_width", widths) if widths else None,
            width_el=col("photodiode_current", widths) if widths else None,
            width_level=col("drive_level", widths) if widths else None,
            width_on_time=col("on_time", widths) if widths else None,
            width_reference=col("reference", widths) if widths else None,
            width_j=col("current_density", widths) if widths else None,
            width_eqe=col("eqe", widths) if widths else None,
            pulsed_j=col("current_density", drive) if drive else None,
            pulsed_eqe=col("eqe", drive) if drive else None,
            dc_j=col("current_density", dc) if dc else None,
            dc_eqe=col("eqe", dc) if dc else None,
            duty_percent=col("duty_cycle", pulsed) if pulsed else None,
            peak_current=col("peak_current", pulsed) if pulsed else None,
            mean_current=col("mean_current", pulsed) if pulsed else None,
            set_width_ms=col("set_width", pulsed) if pulsed else None,
            achieved_width_ms=col("achieved_width", pulsed) if pulsed else None,
            level_units="A" if self._function == "current" else "V",
        )
        for note in result.notes:
            self.log_event("analysis", note)
        if result.figures:
            self.emit_analysis(result.figures)
