"""Solar-cell J–V under AM1.5G: dark and light scans in both directions, PV figures,
hysteresis index, and optional perturb-and-observe maximum-power-point tracking.

**Voltages.**  Start/stop/step are what the SMU sources (the PbS CQD work scans
−0.7 → +0.1 V in 0.02 V steps: 41 points from a linspace).  ``polarity`` maps the
instrument's signs to the device's: ``inverted`` (the default, as on that bench) means the
cell's cathode is on HI, so device V = −V_SMU and device I = −I_SMU.  Every stored column
is on the device side, current positive for forward injection.

**Directions.**  On the device side: ``forward`` scans from short circuit towards open
circuit (device V rising), ``reverse`` from open circuit towards short circuit.  Each
illumination state (dark, then light) is scanned reverse first, then forward, each
direction as the 2400's own list sweep with the settle delay as its source delay.

**Figures** (``labrig.analysis.solar``) per light direction, prefixed ``reverse_`` and
``forward_``: Jsc, Voc (or ``voc_status`` "above the scanned range"), Pmax, Vmp, Jmp, FF,
PCE, Rs, Rsh; then ``hysteresis_index`` = (PCE_rev − PCE_fwd)/PCE_rev.

**MPP tracking.**  With ``mpp_duration`` > 0 the light stays on and the voltage is
perturbed by ``mpp_step`` every ``mpp_interval`` from the reverse scan's Vmp, reversing
the perturbation whenever the power falls (perturb and observe).  The trace goes to the
``mpp`` data group (same columns, scan "light", direction "mpp"); its steady-state
figures (mean over the second half) are ``mpp_power``, ``mpp_voltage`` and ``mpp_pce``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from pymeasure.experiment.parameters import FloatParameter, IntegerParameter, ListParameter

from labrig.analysis.solar import analyze_jv, hysteresis_index
from labrig.errors import ParameterError
from labrig.limits import Drive, Requested
from labrig.procedure import Column, LabrigProcedure, compliance_current_parameter

POLARITIES = ("normal", "inverted")
MAX_POINTS = 2500


class SolarJVProcedure(LabrigProcedure):
    """Dark/light, forward/reverse J–V with PV figures (see the module docstring)."""

    NAME = "solar-jv"
    SUMMARY = "solar-cell J-V (dark and AM1.5G, both directions): Voc, Jsc, FF, PCE, hysteresis"
    REQUIRED_ROLES = ("smu",)
    COLUMNS = (
        Column("scan", "", "illumination: dark or light", "str"),
        Column("direction", "", "forward (Jsc->Voc), reverse (Voc->Jsc) or mpp", "str"),
        Column("voltage", "V", "device voltage"),
        Column("current", "A", "device current (forward positive)"),
        Column("current_density", "mA/cm^2", "current density"),
        Column("power_density", "mW/cm^2", "output power density -V*J"),
        Column("timestamp", "s", "clock time, seconds since the Unix epoch"),
    )
    SIGNAL = "current_density"
    AXIS = "voltage"
    #: each scan also in its own group, so a viewer plots one J-V curve per scan (the
    #: light reverse scan first) instead of all four joined into one line
    SCANS = ("light_reverse", "light_forward", "dark_reverse", "dark_forward")
    GROUPS = (*SCANS, "mpp")

    start_voltage = FloatParameter(
        "Start voltage", units="V", default=-0.7, minimum=-210, maximum=210
    )
    stop_voltage = FloatParameter("Stop voltage", units="V", default=0.1, minimum=-210, maximum=210)
    step_voltage = FloatParameter(
        "Step voltage", units="V", default=0.02, minimum=1e-6, maximum=210
    )
    polarity = ListParameter(
        "Polarity",
        choices=POLARITIES,
        default="inverted",
        description="inverted: cathode on the SMU's HI (device V = -V_SMU)",
    )
    settle_delay = FloatParameter("Settle delay", units="s", default=0.0, minimum=0, maximum=60)
    nplc = FloatParameter("SMU NPLC", default=1.0, minimum=0.01, maximum=10)
    compliance_current = compliance_current_parameter()
    light_intensity = FloatParameter(
        "Light intensity", units="mW/cm^2", default=100.0, minimum=0.0, maximum=1000.0
    )
    mask_area = FloatParameter(
        "Mask area",
        units="cm^2",
        default=None,
        minimum=0.0,
        maximum=1000.0,
        description="illuminated aperture; unset: the config's device.active_area_cm2",
    )
    mpp_duration = FloatParameter(
        "MPP tracking time", units="s", default=0.0, minimum=0, maximum=7 * 24 * 3600
    )
    mpp_step = FloatParameter(
        "MPP perturbation step", units="V", default=0.005, minimum=1e-5, maximum=0.5
    )
    mpp_interval = FloatParameter(
        "MPP step interval", units="s", default=0.5, minimum=0.001, maximum=3600
    )
    mpp_max_points = IntegerParameter(
        "MPP maximum points", default=100_000, minimum=1, maximum=10_000_000
    )

    # ------------------------------------------------------------------ plan
    @property
    def sign(self) -> float:
        return -1.0 if self.polarity == "inverted" else 1.0

    def levels(self) -> np.ndarray:
        """The SMU levels, start to stop (a linspace; the step must divide the range)."""
        start, stop, step = (
            float(x) for x in (self.start_voltage, self.stop_voltage, self.step_voltage)
        )
        if not step > 0:
            raise ParameterError(f"step_voltage={step:g}: allowed > 0 V")
        span = abs(stop - start)
        intervals = round(span / step)
        if intervals < 2 or abs(intervals * step - span) > 1e-6 * max(step, span):
            raise ParameterError(
                f"step_voltage={step:g}: must divide |stop - start| = {span:g} V into at least "
                "2 equal steps"
            )
        if intervals + 1 > MAX_POINTS:
            raise ParameterError(
                f"step_voltage={step:g}: {intervals + 1} points; allowed <= {MAX_POINTS}"
            )
        return np.linspace(start, stop, intervals + 1)

    def validate(self, config: Any) -> None:
        if self.polarity not in POLARITIES:
            raise ParameterError(f"polarity={self.polarity!r}: allowed: {', '.join(POLARITIES)}")
        levels = self.levels()
        if not levels.min() <= 0.0 <= levels.max():
            raise ParameterError(
                f"start_voltage/stop_voltage: the scan {self.start_voltage:g} -> "
                f"{self.stop_voltage:g} V does not include 0 V, so there is no Jsc; allowed: a "
                "range that spans 0 V"
            )
        if self.mask_area is None:
            self.mask_area = config.device.active_area_cm2
        if not self.mask_area > 0:
            raise ParameterError(f"mask_area={self.mask_area:g} cm^2: allowed > 0 cm^2")
        if not self.light_intensity > 0:
            raise ParameterError(
                f"light_intensity={self.light_intensity:g} mW/cm^2: allowed > 0 (the PCE needs it)"
            )
        super().validate(config)

    def drives(self, config: Any) -> list[Drive]:
        """The scan's largest |V| at the compliance current (0: the config's default)."""
        compliance = self.compliance_current or config.limits.default_compliance_a
        return [
            Drive(
                Requested(
                    "voltage",
                    float(np.abs(self.levels()).max()),
                    "start_voltage/stop_voltage",
                    context="the scan reaches",
                ),
                Requested("current", compliance, "compliance_current"),
            )
        ]

    def estimated_points(self) -> int | None:
        return 4 * len(self.levels())

    def default_plot(self) -> str:
        return self.SCANS[0]

    # ------------------------------------------------------------------ run
    def startup(self) -> None:
        if self.mask_area is None:
            self.mask_area = self.bench.config.device.active_area_cm2
        compliance = self.compliance_current or self.bench.limits.default_compliance_a
        self.bench.check_drive(volts=float(np.abs(self.levels()).max()), amps=compliance)
        self.bench.smu.configure_source(
            "voltage", compliance, nplc=self.nplc, source_delay=self.settle_delay
        )

    def _row(self, reading: Any, scan: str, direction: str, timestamp: float) -> dict:
        """One reading on the device side, as a row."""
        v, i = self.sign * reading.voltage, self.sign * reading.current
        j_ma = i / self.mask_area * 1e3
        if reading.in_compliance:
            self.log_event(
                "compliance", f"{scan} {direction} scan in compliance at {v:g} V", logging.WARNING
            )
        return {
            "scan": scan,
            "direction": direction,
            "voltage": v,
            "current": i,
            "current_density": j_ma,
            "power_density": -v * j_ma,
            "timestamp": timestamp,
        }

    def _scan(self, levels: np.ndarray, scan: str, direction: str) -> list[dict]:
        """One direction as the 2400's own list sweep (source–delay–measure per point, the
        settle delay being the source delay), each part into the file as it comes back (a
        stop mid-scan keeps what was measured)."""
        t0 = self.bench.clock.time()
        rows: list[dict] = []
        first: float | None = None
        for readings in self.bench.smu.sweep_chunks([float(x) for x in levels]):
            if not readings:
                continue
            first = readings[0].time if first is None else first
            part = [self._row(r, scan, direction, t0 + (r.time - first)) for r in readings]
            columns = {c.name: [r[c.name] for r in part] for c in self.COLUMNS}
            self.emit_rows(columns)
            self.emit_rows(columns, f"{scan}_{direction}")
            rows += part
        return rows

    def execute(self) -> None:
        levels = self.levels()
        # device voltage rising = forward; the SMU levels in that order
        forward = levels if self.sign * (levels[-1] - levels[0]) > 0 else levels[::-1]
        light_rows: dict[str, list[dict]] = {}
        done = 0
        for scan in ("dark", "light"):
            self.bench.set_illumination(scan == "light", self.light_intensity)
            for direction, order in (("reverse", forward[::-1]), ("forward", forward)):
                if self.should_stop():
                    return
                rows = self._scan(order, scan, direction)
                if scan == "light":
                    light_rows[direction] = rows
                done += 1
                self.emit_progress(100.0 * done / 4)
        self._analyze(light_rows)
        if self.mpp_duration > 0:
            self._track_mpp()

    def _analyze(self, light_rows: dict[str, list[dict]]) -> None:
        self._figures = {}
        for direction, rows in light_rows.items():
            try:
                fig = analyze_jv(
                    [r["voltage"] for r in rows],
                    [r["current"] for r in rows],
                    area_cm2=self.mask_area,
                    light_mw_cm2=self.light_intensity,
                )
            except ParameterError as exc:
                self.log_event("analysis", f"{direction} light scan: {exc}", logging.WARNING)
                continue
            self._figures[direction] = fig
            self.emit_analysis(fig.as_figures(f"{direction}_"))
        rev, fwd = self._figures.get("reverse"), self._figures.get("forward")
        if rev and fwd and rev.pce is not None and fwd.pce is not None:
            hi = hysteresis_index(rev.pce, fwd.pce)
            self.emit_analysis({"hysteresis_index": (hi, "")})

    def _track_mpp(self) -> None:
        """Perturb and observe from the reverse scan's Vmp for ``mpp_duration``."""
        start = self._figures.get("reverse") or self._figures.get("forward")
        if start is None or start.vmp_v is None:
            self.log_event(
                "mpp", "no maximum power point from the scans: tracking skipped", logging.WARNING
            )
            return
        self.bench.set_illumination(True, self.light_intensity)
        smu, clock = self.bench.smu, self.bench.clock
        v_dev, step = start.vmp_v, self.mpp_step
        t0 = clock.time()
        trace: list[dict] = []
        previous = -math.inf
        while len(trace) < self.mpp_max_points and not self.should_stop():
            due = t0 + len(trace) * self.mpp_interval
            if due - t0 >= self.mpp_duration:
                break
            level = v_dev / self.sign
            self.bench.check_drive(volts=level)
            smu.set_level(level)
            if not smu.output_enabled:
                smu.enable_output()
            clock.sleep(due - clock.time())
            row = self._row(smu.measure(), "light", "mpp", clock.time())
            self.emit_row(row, "mpp")
            trace.append(row)
            if row["power_density"] < previous:
                step = -step
            previous = row["power_density"]
            v_dev += step
        if trace:
            half = trace[len(trace) // 2 :]
            p_mw = float(np.mean([r["power_density"] for r in half]))
            self.emit_analysis(
                {
                    "mpp_power": (p_mw, "mW/cm^2"),
                    "mpp_voltage": (float(np.mean([r["voltage"] for r in half])), "V"),
                    "mpp_pce": (100.0 * p_mw / self.light_intensity, "%"),
                    "mpp_points": (len(trace), ""),
                }
            )

    def shutdown(self) -> None:
        """Lamp off (outputs off is the bench's job)."""
        bench = getattr(self, "bench", None)
        if bench is not None:
            bench.set_illumination(False)
