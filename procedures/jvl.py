"""J–V–L sweep: current density, luminance, EQE, cd/A, lm/W and EL spectra per step.

The measurement every LED paper opens with.  The SMU sources a voltage staircase; at each
step the photodiode current (dark-subtracted) becomes optical power, photons and lumens
through ``labrig.analysis.photometry``, weighted by the EL spectrum taken at (or nearest)
that step's current density, or by the configured reference spectrum when spectra are off.

**Spectra.**  Each spectrum is auto-exposed; the dark for it was taken with the source off
before the sweep, on a ladder of integration times (factors of 2 up to the exposure
limit): the step is recorded at the ladder time just below the auto-exposed one, so the
peak lands at 35–70 % of full scale and a matching dark always exists.  A spectrum too
weak to weight the photometry (peak below 100 times the pixel noise, or saturated) is
still stored but not used.  A row is written once the spectrum it is weighted with is known — at once when a spectrum is taken at that step, else when the
next one is (so "nearest in J" is exact on a monotonic sweep); rows before the first
spectrum get the first one.  Its index in ``/entry/spectra`` is the ``spectrum_index``
column (-1: the reference spectrum); its power shape is cut to the emission line and its
tails before weighting, and ``band_start``/``band_end`` are that band's first and last
wavelength (NaN for the reference spectrum), so the file alone reproduces the weighting.

**Buffered mode.**  The 2400's list sweep returns every V–I point from one ``:READ?``, but
the 6485 cannot be triggered per point inside it (no trigger link on this bench).  So
buffered mode is honest about it: the J–V curve comes from the list sweep (V, I, J,
compliance columns), then a light pass sources the same levels point by point and reads
the photodiode (and spectra) at each; EQE and the efficiencies use the list sweep's
current.  The two passes' currents are compared and the largest relative difference is
logged (a heating or degrading device shows here).  The maximum current density is
enforced by the 2400 itself in buffered mode: the compliance becomes
min(compliance, J_max·A) with the sweep aborting at the first compliance point.

**Stops.**  Compliance reached (optional), luminance falling below a fraction of its
maximum while the drive still rises (device breakdown), and a maximum current density:
each ends the sweep with the point that triggered it kept, the reason in ``/entry/log``,
the output off.  Ramping down at the end is the bench's job.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from pymeasure.experiment.parameters import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
)

from labrig.errors import ParameterError
from labrig.interfaces import SourceMeter, Spectrum
from labrig.limits import Drive, Requested
from labrig.procedure import Column, LabrigProcedure, compliance_current_parameter
from labrig.spectrum_recorder import SpectrumRecorder

if TYPE_CHECKING:
    from labrig.analysis.photometry import Light

DIRECTIONS = ("forward", "reverse", "both")
MODES = ("point-by-point", "buffered")
SPECTRA = ("none", "every_step", "every_n_steps", "above_threshold")
#: luminance a breakdown check needs to have seen before it can trigger (cd/m²)
BREAKDOWN_MIN_LUMINANCE = 1.0
#: light counts as measured (for the efficiency figures) above this many dark-noise sigmas
#: (stored as the run's ``light_threshold`` figure)
LIGHT_SNR = 20.0
#: a light-pass current this far from the list sweep's is reported (relative)
PASS_MISMATCH_WARNING = 0.01


@dataclass
class _Step:
    """One measured step, SI, before photometry."""

    index: int
    voltage: float
    current: float
    photodiode: float  # A, dark-subtracted
    time: float  # s since the sweep started
    compliance: bool


class _Weighed(NamedTuple):
    """A step, the spectrum that weights it (its factors and index) and the light they
    give: all of its row but the figures only the row needs (``_SweepPhotometry.row``)."""

    step: _Step
    light: Light
    factors: Any
    spectrum_index: int  # -1: the reference spectrum (or none)


class JVLProcedure(LabrigProcedure):
    """J–V–L sweep with photometry, EQE, efficiencies and EL spectra (see module docstring)."""

    NAME = "jvl"
    SUMMARY = "J-V-L sweep: J, luminance, EQE, cd/A, lm/W and EL spectra vs voltage"
    REQUIRED_ROLES = ("smu", "photometer")
    OPTIONAL_ROLES = ("spectrometer",)
    COLUMNS = (
        Column("voltage", "V", "voltage"),
        Column("current", "A", "current"),
        Column("current_density", "mA/cm^2", "current density J"),
        Column("photodiode_current", "A", "photodiode current (dark-subtracted)"),
        Column("luminance", "cd/m^2", "luminance L"),
        Column("eqe", "%", "external quantum efficiency"),
        Column("current_efficiency", "cd/A", "current efficiency"),
        Column("power_efficiency", "lm/W", "power efficiency"),
        Column("radiance", "W/(sr*m^2)", "radiance"),
        Column("photon_flux", "1/s", "forward photon flux"),
        Column("spectrum_index", "", "index in /entry/spectra of the weighting spectrum", "i8"),
        Column("band_start", "nm", "first wavelength of the weighting spectrum's band"),
        Column("band_end", "nm", "last wavelength of the weighting spectrum's band"),
        Column("timestamp", "s", "time since the sweep started"),
        Column("compliance", "", "SMU in compliance", "i1"),
    )
    SIGNAL = "luminance"
    AXIS = "voltage"

    start_voltage = FloatParameter(
        "Start voltage", units="V", default=0.0, minimum=-210, maximum=210
    )
    stop_voltage = FloatParameter("Stop voltage", units="V", default=6.0, minimum=-210, maximum=210)
    step_voltage = FloatParameter("Step voltage", units="V", default=0.1, minimum=-210, maximum=210)
    voltages = Parameter(
        "Voltage list (comma-separated V; replaces start/stop/step)",
        default="",
        description="comma-separated volts; when given it replaces start/stop/step",
    )
    direction = ListParameter("Direction", choices=DIRECTIONS, default="forward")
    mode = ListParameter("Mode", choices=MODES, default="point-by-point")
    compliance_current = compliance_current_parameter(
        "Compliance current (0 = limits.default_compliance_a)"
    )
    smu_nplc = FloatParameter("SMU NPLC", default=1.0, minimum=0.01, maximum=10)
    photometer_nplc = FloatParameter("Photometer NPLC", default=1.0, minimum=0.01, maximum=60)
    source_delay = FloatParameter("Source delay", units="s", default=0.05, minimum=0, maximum=60)
    dark_readings = IntegerParameter(
        "Photodiode dark readings (0 = no dark subtraction)",
        default=10,
        minimum=0,
        maximum=2500,
        description="readings averaged with the source off and subtracted; 0: none",
    )
    spectra = ListParameter("Spectra", choices=SPECTRA, default="above_threshold")
    spectrum_interval = IntegerParameter(
        "Spectrum every N steps (spectra=every_n_steps)", default=5, minimum=1, maximum=2500
    )
    spectrum_threshold = FloatParameter(
        "Spectrum luminance threshold (spectra=above_threshold)",
        units="cd/m^2",
        default=1.0,
        minimum=0,
        maximum=1e7,
    )
    stop_on_compliance = BooleanParameter("Stop at compliance", default=True)
    breakdown_fraction = FloatParameter(
        "Breakdown when L < this fraction of its max (0 = off)",
        default=0.2,
        minimum=0.0,
        maximum=1.0,
        description="stop when L falls below this fraction of its maximum as V rises; 0: off",
    )
    contact_check = BooleanParameter(
        "Stop at a shorted or open device",
        default=True,
        description="judge the contacts from each point (labrig.analysis.contact) and end "
        "the sweep with the contact_defect figure when a pixel is shorted or open",
    )
    max_current_density = FloatParameter(
        "Maximum current density (0 = off)",
        units="mA/cm^2",
        default=1000.0,
        minimum=0.0,
        maximum=1e6,
        description="stop above it; 0: off",
    )

    # ------------------------------------------------------------------ plan
    def _value(self, name: str) -> Any:
        """The parameter converted and range-checked by pymeasure, as a ParameterError."""
        param = self._parameters[name]
        raw = getattr(self, name)
        try:
            param.value = raw
        except (ValueError, TypeError) as exc:
            allowed = ""
            if isinstance(param, (FloatParameter, IntegerParameter)):
                allowed = f"; allowed {param.minimum:g} to {param.maximum:g} {param.units or ''}"
            elif isinstance(param, ListParameter):
                allowed = "; allowed: " + ", ".join(map(str, param.choices))
            raise ParameterError(f"{name}={raw!r}: {exc}{allowed}".rstrip()) from None
        value = param.value
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"{name}={raw!r}: must be a finite number")
        setattr(self, name, value)
        return value

    def levels(self) -> list[float]:
        """The voltages to source, in order (direction applied); ParameterError if bad."""
        text = str(self._value("voltages") or "").strip()
        if text:
            try:
                base = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
            except ValueError:
                raise ParameterError(
                    f"voltages={text!r}: not a comma-separated list of numbers"
                ) from None
            if not base or not all(math.isfinite(v) for v in base):
                raise ParameterError(f"voltages={text!r}: need at least one finite number")
        else:
            start, stop = self._value("start_voltage"), self._value("stop_voltage")
            step = self._value("step_voltage")
            if step == 0:
                raise ParameterError("step_voltage=0: the step must be non-zero")
            if stop != start and math.copysign(1, step) != math.copysign(1, stop - start):
                raise ParameterError(
                    f"step_voltage={step:g}: must have the sign of stop_voltage - start_voltage "
                    f"({stop:g} - {start:g} V)"
                )
            steps = abs(stop - start) / abs(step)  # inf for a subnormal step
            if not steps < 100_000:
                raise ParameterError(
                    f"step_voltage={step:g}: {steps + 1:.3g} points is too many; at most 100000"
                )
            n = int(math.floor(steps + 1e-9)) + 1
            base = [round(start + k * step, 12) for k in range(n)]
        direction = self._value("direction")
        if direction == "reverse":
            return base[::-1]
        if direction == "both":
            return base + base[-2::-1]
        return base

    def compliance_a(self, config) -> float:
        value = self._value("compliance_current")
        return value if value > 0 else config.limits.default_compliance_a

    def estimated_points(self) -> int | None:
        try:
            return len(self.levels())
        except ParameterError:
            return None

    def drives(self, config) -> list[Drive]:
        """The sweep's largest |V| at the compliance current."""
        name = "voltages" if str(self.voltages).strip() else "start/stop_voltage"
        worst = max(self.levels(), key=abs)
        return [
            Drive(
                Requested("voltage", worst, name, context="the sweep reaches"),
                Requested("current", self.compliance_a(config), "compliance_current"),
            )
        ]

    def validate(self, config) -> None:
        """Sweep within the config limits, sensible step, buffered size, loadable
        responsivity (and a reference spectrum it covers when spectra are off)."""
        for name in self._parameters:
            self._value(name)
        levels = self.levels()
        super().validate(config)
        if self.mode == "buffered" and len(levels) > SourceMeter.MAX_SWEEP_POINTS:
            raise ParameterError(
                f"mode=buffered: {len(levels)} points, the 2400 holds at most "
                f"{SourceMeter.MAX_SWEEP_POINTS}; use a larger step or point-by-point mode"
            )
        from labrig.analysis.photometry import BenchPhotometry

        photometry = BenchPhotometry(config)  # loads the responsivity table or raises
        # without spectra, and for a threshold in cd/m² before any spectrum, the reference
        # spectrum is what turns photodiode current into luminance
        if self.spectra in ("none", "above_threshold") or "spectrometer" not in config.instruments:
            photometry.reference  # noqa: B018 - raises ConfigError when it cannot be built

    # ------------------------------------------------------------------ run
    def startup(self) -> None:
        bench = self.bench
        config = bench.config
        self._levels = self.levels()
        self._photometry = _SweepPhotometry(config)
        self._compliance = self.compliance_a(config)
        self._area_m2 = area_m2 = config.device.active_area_cm2 * 1e-4
        self._j_max_a_m2 = self.max_current_density * 10.0 if self.max_current_density else 0.0
        if self.mode == "buffered" and self._j_max_a_m2:
            self._compliance = min(self._compliance, self._j_max_a_m2 * area_m2)
        bench.check_drive(volts=max(self._levels, key=abs), amps=self._compliance)
        bench.smu.configure_source(
            "voltage", self._compliance, nplc=self.smu_nplc, source_delay=self.source_delay
        )
        bench.photometer.configure(nplc=self.photometer_nplc)
        bench.photometer.zero_correct()  # also leaves zero check off (on at 6485 power-up)
        self._use_spectra = self.spectra != "none" and bench.has("spectrometer")
        if self.spectra != "none" and not self._use_spectra:
            self.log_event("spectra", "no spectrometer on this bench: reference spectrum used")
        self._rows: list[dict[str, float]] = []
        self._pending: list[_Step] = []
        self._made: list[_Weighed] = []  # steps weighed, their rows not emitted yet
        self._progress: float | None = None  # percent done, not emitted yet
        self._stored_spectra = 0
        self._max_luminance = 0.0
        from labrig.analysis.contact import ContactCheck

        self._contacts = ContactCheck(config.device.active_area_cm2)

    def execute(self) -> None:
        bench = self.bench
        bench.smu.disable_output()
        self._photodiode_dark = self._measure_photodiode_dark()
        self._recorder = self._measure_spectrum_darks() if self._use_spectra else None
        self._t0 = bench.clock.time()
        if self.mode == "buffered":
            self._buffered_sweep()
        else:
            self._point_by_point_sweep()
        bench.smu.disable_output()
        self._flush()
        self._emit_figures()

    def shutdown(self) -> None:
        """Stop sourcing (the bench ramps and makes every output safe afterwards), then
        write the rows still waiting for a spectrum (a stop or failure mid-sweep keeps
        them, weighted with the spectra recorded so far)."""
        bench = getattr(self, "bench", None)
        try:
            if bench is not None and bench.smu is not None:
                bench.smu.disable_output()
        finally:
            if getattr(self, "_pending", None) or getattr(self, "_made", None):
                self._flush()

    # ------------------------------------------------------------------ darks
    def _measure_photodiode_dark(self) -> float:
        self._photodiode_noise = 0.0
        if self.dark_readings == 0:
            return 0.0
        currents = np.array(
            [r.current for r in self.bench.photometer.read_burst(self.dark_readings)]
        )
        dark = float(np.mean(currents))
        if currents.size > 1:
            self._photodiode_noise = float(np.std(currents, ddof=1))
        self.log_event(
            "dark",
            f"photodiode dark current {dark:.4g} A, noise {self._photodiode_noise:.2g} A "
            f"({currents.size} readings)",
        )
        # as data too: the report draws the efficiency curves with the same criterion
        self.emit_analysis(
            {
                "photodiode_dark_current": (dark, "A"),
                "photodiode_noise": (self._photodiode_noise, "A"),
                "light_threshold": (LIGHT_SNR * self._photodiode_noise, "A"),
            }
        )
        return dark

    def _measure_spectrum_darks(self) -> SpectrumRecorder:
        recorder = SpectrumRecorder(self.bench.spectrometer)
        recorder.take_darks()
        self.log_event("dark", f"spectrometer darks at {len(recorder.ladder)} integration times")
        return recorder

    # ------------------------------------------------------------------ sweeps
    def _point_by_point_sweep(self) -> None:
        smu, photometer, clock = self.bench.smu, self.bench.photometer, self.bench.clock
        emit_made = self._emit_made
        smu.set_level(self._levels[0])
        smu.enable_output()
        for k, volts in enumerate(self._levels):
            # the previous step's row is stored while the 2400 sources and measures this
            # one, or before the run is held or stopped
            if self.should_stop(deliver=emit_made):
                self._end_sweep("stop", f"stopped by request before step {k}", logging.INFO)
                return
            reading = smu.measure_at(volts, meanwhile=emit_made)
            light = photometer.read().current - self._photodiode_dark
            step = _Step(
                k,
                reading.voltage,
                reading.current,
                light,
                clock.time() - self._t0,
                reading.in_compliance,
            )
            if self._step_done(step, rising=self._rising(k)):
                return

    def _buffered_sweep(self) -> None:
        smu, photometer = self.bench.smu, self.bench.photometer
        readings = smu.sweep(self._levels, abort_on_compliance=self.stop_on_compliance)
        sweep_end = self.bench.clock.time() - self._t0
        self.log_event(
            "buffered", f"list sweep: {len(readings)} of {len(self._levels)} points in one read"
        )
        t_first = readings[0].time if readings else 0.0
        span = (readings[-1].time - t_first) if readings else 0.0
        smu.set_level(self._levels[0])
        smu.enable_output()
        mismatch = 0.0
        # compare only where the current is well above the SMU's noise
        significant = 1e-3 * max((abs(r.current) for r in readings), default=0.0)
        emit_made = self._emit_made
        for k, reading in enumerate(readings):
            if self.should_stop(deliver=emit_made):
                self._end_sweep("stop", f"stopped by request before step {k}", logging.INFO)
                return
            again = smu.measure_at(self._levels[k], meanwhile=emit_made)
            light = photometer.read().current - self._photodiode_dark
            if abs(reading.current) > significant:
                mismatch = max(mismatch, abs(again.current / reading.current - 1))
            step = _Step(
                k,
                reading.voltage,
                reading.current,
                light,
                sweep_end - span + (reading.time - t_first),
                reading.in_compliance,
            )
            if self._step_done(step, rising=self._rising(k)):
                break
        self._emit_made()
        level = logging.WARNING if mismatch > PASS_MISMATCH_WARNING else logging.INFO
        self.log_event(
            "buffered",
            f"light pass current differs from the list sweep by up to {mismatch:.2%}",
            level,
        )

    def _rising(self, k: int) -> bool:
        return k > 0 and abs(self._levels[k]) > abs(self._levels[k - 1])

    # ------------------------------------------------------------------ per step
    def _step_done(self, step: _Step, rising: bool) -> bool:
        """Record a step (spectrum if due); True when a stop condition ends the sweep.
        Its row (once its photometry is final) and progress are emitted by
        ``_emit_made``: during the next step's reading, or when the sweep ends."""
        self._pending.append(step)
        if self._use_spectra:
            lum = self._photometry.provisional_luminance(step)
            if self._spectrum_due(step.index, lum) and self._take_spectrum(step):
                self._weigh_pending()
        else:  # no spectrum can come: the step's light is final, computed once
            lum = self._weigh_pending()[-1].light.luminance_cd_m2
        self._progress = 100.0 * (step.index + 1) / len(self._levels)

        j = abs(step.current) / self._area_m2
        if self.contact_check and self._contact_defect(step):
            return True
        if step.compliance and self.stop_on_compliance:
            return self._end_sweep(
                "compliance",
                f"compliance ({self._compliance:g} A) reached at {step.voltage:.4g} V: sweep ended",
            )
        if self._j_max_a_m2 and j > self._j_max_a_m2:
            return self._end_sweep(
                "max_current_density",
                f"J = {j / 10:.4g} mA/cm² at {step.voltage:.4g} V exceeds "
                f"max_current_density ({self.max_current_density:g} mA/cm²): sweep ended",
            )
        if rising and lum > self._max_luminance:
            self._max_luminance = lum
        if (
            rising
            and self.breakdown_fraction > 0
            and self._max_luminance >= BREAKDOWN_MIN_LUMINANCE
            and lum < self.breakdown_fraction * self._max_luminance
        ):
            return self._end_sweep(
                "breakdown",
                f"luminance fell to {lum:.4g} cd/m² at {step.voltage:.4g} V, below "
                f"{self.breakdown_fraction:g} × its maximum {self._max_luminance:.4g} cd/m² "
                "(device breakdown): sweep ended",
            )
        return False

    def _end_sweep(self, kind: str, message: str, level: int = logging.WARNING) -> bool:
        """The event that ends the sweep, after the rows made so far (a reader sees the
        step that ended it before the reason); True."""
        self._emit_made()
        self.log_event(kind, message, level)
        return True

    def _contact_defect(self, step: _Step) -> bool:
        """True (sweep ended, the defect recorded as figures) when the point shows a
        shorted or open pixel."""
        defect = self._contacts.point(step.voltage, step.current, step.compliance)
        if defect is None:
            return False
        self._end_sweep("contact", f"{defect.note}: sweep ended")
        self.emit_analysis({"contact_defect": (defect.kind, ""), "contact_note": (defect.note, "")})
        return True

    def _spectrum_due(self, k: int, provisional_luminance: float) -> bool:
        if self.spectra == "every_step":
            return True
        if self.spectra == "every_n_steps":
            return k % self.spectrum_interval == 0
        if self.spectra == "above_threshold":
            return provisional_luminance >= self.spectrum_threshold
        return False

    def _take_spectrum(self, step: _Step) -> bool:
        """Record and store a spectrum; True if it can weight the photometry."""
        spectrum, dark = self._recorder.acquire()
        self.emit_spectrum(step.index, spectrum, dark=dark)
        index = self._stored_spectra
        self._stored_spectra += 1
        if self._photometry.add_spectrum(index, step.current, spectrum):
            return True
        self.log_event(
            "spectrum",
            f"spectrum {index} at {step.voltage:.4g} V too weak or saturated to weight "
            "the photometry; kept in the file, not used",
        )
        return False

    # ------------------------------------------------------------------ rows
    def _flush(self) -> None:
        """Rows for every step still pending or weighed, emitted (the sweep's end, or a
        stop or failure in it)."""
        self._weigh_pending()
        self._emit_made()

    def _weigh_pending(self) -> list[_Weighed]:
        """The pending steps weighed with their nearest usable spectrum (their light, what
        the checks need), queued for ``_emit_made`` to make and emit their rows.  (Called
        when a usable spectrum has just been added, after every step when no spectra are
        taken, and at the end.)"""
        if not self._pending:
            return []
        steps, self._pending = self._pending, []
        if not self._photometry.has_spectra and self._photometry.reference is None:
            self.log_event(
                "photometry",
                f"{len(steps)} steps without a usable spectrum and no reference spectrum "
                "configured: luminance, EQE and efficiencies left empty (NaN)",
                logging.WARNING,
            )
        weighed = [self._photometry.weigh(s) for s in steps]
        self._made.extend(weighed)
        return weighed

    def _emit_made(self) -> None:
        """Make the weighed steps' rows (kept for the figures) and emit them with the
        progress; the sweep calls it while the 2400 works on the next step, so the rows'
        figures, the store's and the subscribers' time are the instrument's too."""
        weighed, self._made = self._made, []
        rows = [self._photometry.row(w) for w in weighed]
        self._rows.extend(rows)
        if len(rows) == 1:  # every step of a sweep without spectra: no columns to build
            self.emit_row(rows[0])
        elif rows:
            self.emit_rows({name: [r[name] for r in rows] for name in rows[0]})
        if self._progress is not None:
            percent, self._progress = self._progress, None
            self.emit_progress(percent)

    def _emit_figures(self) -> None:
        from labrig.analysis.jvl import analyze_jvl

        if not self._rows:
            self.log_event("analysis", "no data points: no figures")
            return

        def col(name: str) -> np.ndarray:
            return np.array([r[name] for r in self._rows], float)

        measurable = col("photodiode_current") > LIGHT_SNR * self._photodiode_noise
        eqe = np.where(measurable, col("eqe") / 100, np.nan)
        spectrum = None
        if np.any(np.isfinite(eqe)):
            at_peak = self._rows[int(np.nanargmax(eqe))]["spectrum_index"]
            spectrum = self._photometry.spectrum_shape(int(at_peak))
        result = analyze_jvl(
            col("voltage"),
            col("current_density") * 10.0,  # mA/cm² -> A/m²
            col("luminance"),
            eqe,
            col("current_efficiency"),
            col("power_efficiency"),
            spectrum_at_peak=spectrum,
            measurable=measurable,
        )
        for note in result.notes:
            self.log_event("analysis", note)
        self.emit_analysis(result.figures)


class _SweepPhotometry:
    """The bench's photometry applied to the steps of one sweep, each weighted by the
    usable spectrum nearest in J recorded so far (or the reference spectrum)."""

    def __init__(self, config) -> None:
        from labrig.analysis.photometry import BenchPhotometry, SpectralFactors
        from labrig.errors import ConfigError

        self.bench = BenchPhotometry(config)
        self.area_cm2 = config.device.active_area_cm2
        self._j: list[float] = []
        self._index: list[int] = []
        self._factors: list[Any] = []
        self._shapes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        #: first and last wavelength of the emission band each spectrum weights over
        self._bands: dict[int, tuple[float, float]] = {}
        # worked out once, before the first step (the config does not change during a
        # sweep; every step needs one or the other)
        try:
            reference = self.bench.reference
        except ConfigError:
            reference = None
        #: the reference spectrum's factors, or None when the config gives none
        self.reference: Any = _as_floats(reference)
        #: the factors of a step no recorded spectrum weights: the reference spectrum's,
        #: or NaN ones (its photometric columns NaN: nothing to weight them with)
        self.unweighted: Any = self.reference or SpectralFactors(math.nan, math.nan, math.nan)

    @property
    def has_spectra(self) -> bool:
        return bool(self._factors)

    def add_spectrum(self, index: int, current_a: float, spectrum: Spectrum) -> bool:
        """Keep stored spectrum ``index`` for weighting if it is usable; True if it is."""
        shape = self.bench.recorded(spectrum)
        if shape is None:
            return False
        self._factors.append(self.bench.factors(*shape))
        self._j.append(abs(current_a) / self.area_cm2)
        self._index.append(index)
        self._shapes[index] = shape
        inside = shape[0][np.flatnonzero(shape[1])]
        self._bands[index] = (float(inside.min()), float(inside.max()))
        return True

    def spectrum_shape(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(wavelength_nm, power shape) of stored spectrum ``index`` (None: reference)."""
        return self._shapes.get(index)

    def _nearest_factors(self, j_a_cm2: float) -> tuple[Any, int]:
        """The factors of the usable spectrum nearest in J, as floats, and its index."""
        from labrig.analysis.photometry import SpectralFactors, nearest_spectrum

        pick = int(nearest_spectrum(np.atleast_1d(j_a_cm2), np.array(self._j))[0])
        chosen = self._factors[pick]
        factors = SpectralFactors(
            float(chosen.responsivity_a_per_w),
            float(chosen.mean_photon_energy_j),
            float(chosen.luminous_efficacy_lm_per_w),
        )
        return factors, self._index[pick]

    def provisional_luminance(self, step: _Step) -> float:
        """Luminance with the latest spectrum (for thresholds and breakdown checks); NaN
        before the first usable spectrum when there is no reference spectrum."""
        factors = self._factors[-1] if self._factors else self.reference
        if factors is None:
            return math.nan
        return float(self.bench.light_of(step.photodiode, factors).luminance_cd_m2)

    def weigh(self, s: _Step) -> _Weighed:
        """The step weighed by the usable spectrum nearest in J (or the reference spectrum,
        or NaN factors: then its photometric columns are NaN, nothing to weight them
        with), and its light.  On floats, not arrays: the same operations, bit for bit
        (tests/labrig/analysis/test_photometry.py), at a fraction of the cost for the one
        step a sweep without spectra weighs at a time."""
        if self._factors:
            factors, index = self._nearest_factors(s.current / self.area_cm2)
        else:
            factors, index = self.unweighted, -1
        return _Weighed(s, self.bench.light_of(s.photodiode, factors), factors, index)

    def row(self, weighed: _Weighed) -> dict[str, float]:
        """The data row (lab units) of a weighed step."""
        s, index = weighed.step, weighed.spectrum_index
        res = self.bench.figures(weighed.light, s.current, s.voltage, weighed.factors)
        band_start, band_end = self._bands.get(index, _NO_BAND)
        return {
            "voltage": s.voltage,
            "current": s.current,
            "current_density": s.current / self.area_cm2 * 1e3,
            "photodiode_current": s.photodiode,
            "luminance": float(res.luminance_cd_m2),
            "eqe": float(res.eqe) * 100,
            "current_efficiency": float(res.current_efficiency_cd_a),
            "power_efficiency": float(res.power_efficiency_lm_w),
            "radiance": float(res.radiance_w_sr_m2),
            "photon_flux": float(res.photon_flux_per_s),
            "spectrum_index": int(index),
            "band_start": band_start,
            "band_end": band_end,
            "timestamp": s.time,
            "compliance": int(s.compliance),
        }


#: the band of a row weighted by the reference spectrum (or by nothing)
_NO_BAND = (math.nan, math.nan)


def _as_floats(factors: Any) -> Any:
    """The reference factors as Python floats (numpy scalars give the same IEEE results
    at several times the cost, on every step); kept as they are when one is not a
    positive number, so a degenerate table fails exactly as before."""
    if factors is None:
        return None
    values = (
        factors.responsivity_a_per_w,
        factors.mean_photon_energy_j,
        factors.luminous_efficacy_lm_per_w,
    )
    if not all(np.ndim(v) == 0 and v > 0 for v in values):
        return factors
    return type(factors)(*(float(v) for v in values))
