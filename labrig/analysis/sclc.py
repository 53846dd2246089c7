"""Space-charge-limited-current analysis of a hole-only or electron-only device.

The construction is the one the perovskite/QD literature reads off a log J – log V plot
(the Lampert triangle):

1. the local slope s = d ln J / d ln V along the curve (a Savitzky–Golay derivative on an
   even log-voltage grid, i.e. smoothed);
2. the Ohmic region: the run of points from the low-voltage end with |s − 1| ≤ 0.25;
   a straight line is fitted to it in log–log;
3. the trap-filled-limit (TFL) region: the points after it whose slope exceeds 3; the
   TFL line is the tangent at the steepest point (slope s_max), fitted in log–log to the
   points around it whose slope is at least 80 % of s_max;
4. V_TFL is where the TFL line meets the extrapolated Ohmic line, and
   n_t = 2·ε0·εr·V_TFL/(q·d²);
5. the Child region: the points beyond the TFL region with |s − 2| ≤ 0.25 (slope taken
   against the corrected voltage V − V_bi − J·Rs when those corrections are given); the
   Mott–Gurney law J = 9/8·ε0·εr·μ·(V − V_bi − J·Rs)²/d³ is fitted there alone (least
   squares in ln J, one parameter) and the fit range is returned.

No slope-2 region means no mobility (``mobility_cm2_vs is None`` with the reason in
``notes``); a curve without an Ohmic or TFL region has no V_TFL in the same way.  Missing
thickness or permittivity is a ``ParameterError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.constants import elementary_charge as ELEMENTARY_CHARGE_C
from scipy.signal import savgol_filter

from labrig.errors import ParameterError

#: CODATA 2018 (scipy >= 1.15 carries CODATA 2022's 8.8541878188e-12); the simulator
#: and the report take it from here so model and analysis agree to the last digit
VACUUM_PERMITTIVITY_F_M = 8.8541878128e-12
OHMIC_TOLERANCE = 0.25
CHILD_TOLERANCE = 0.25
TFL_MIN_SLOPE = 3.0
MIN_REGION_POINTS = 3


@dataclass(frozen=True)
class SCLCResult:
    """What the SCLC construction found (SI-ish units: V, cm⁻³, cm²/Vs)."""

    voltage_v: np.ndarray
    slope: np.ndarray
    ohmic_range_v: tuple[float, float] | None
    ohmic_slope: float | None
    tfl_range_v: tuple[float, float] | None
    tfl_slope: float | None
    v_tfl_v: float | None
    trap_density_cm3: float | None
    child_range_v: tuple[float, float] | None
    child_slope: float | None
    mobility_cm2_vs: float | None
    notes: list[str] = field(default_factory=list)

    def as_figures(self) -> dict[str, tuple[Any, str]]:
        """Figures for the run file; absent ones are left out and ``notes`` says why."""
        figures: dict[str, tuple[Any, str]] = {}

        def put(name: str, value: Any, units: str) -> None:
            if value is not None:
                figures[name] = (value, units)

        put("v_tfl", self.v_tfl_v, "V")
        put("trap_density", self.trap_density_cm3, "cm^-3")
        put("mobility", self.mobility_cm2_vs, "cm^2/(V*s)")
        for name, rng in (
            ("ohmic", self.ohmic_range_v),
            ("tfl", self.tfl_range_v),
            ("child_fit", self.child_range_v),
        ):
            if rng is not None:
                put(f"{name}_v_min", rng[0], "V")
                put(f"{name}_v_max", rng[1], "V")
        put("ohmic_slope", self.ohmic_slope, "")
        put("tfl_slope", self.tfl_slope, "")
        put("child_slope", self.child_slope, "")
        if self.notes:
            figures["notes"] = ("; ".join(self.notes), "")
        return figures


def loglog_slope(voltage_v: np.ndarray, current: np.ndarray, window: int = 5) -> np.ndarray:
    """d ln|J| / d ln V at each point: Savitzky–Golay (quadratic, ``window`` points) on an
    even ln V grid the data are interpolated onto, then back to the data's voltages."""
    lv, lj = np.log(voltage_v), np.log(np.abs(current))
    if len(lv) < 3:
        raise ParameterError("SCLC data: need at least 3 points with V > 0")
    grid = np.linspace(lv[0], lv[-1], len(lv))
    lj_grid = np.interp(grid, lv, lj)
    win = min(window, len(lv) - (1 - len(lv) % 2))
    if win < 3:
        return np.gradient(lj, lv)
    slope_grid = savgol_filter(lj_grid, win, 2, deriv=1, delta=grid[1] - grid[0])
    return np.interp(lv, grid, slope_grid)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive index ranges of consecutive True values."""
    runs, start = [], None
    for i, flag in enumerate(mask):
        if flag and start is None:
            start = i
        if not flag and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def _line(lv: np.ndarray, lj: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(lv, lj, 1)
    return float(slope), float(intercept)


def analyze_sclc(
    voltage_v: Sequence[float],
    current_density_a_cm2: Sequence[float],
    *,
    thickness_nm: float | None,
    relative_permittivity: float | None,
    built_in_voltage_v: float = 0.0,
    series_resistance_ohm_cm2: float = 0.0,
) -> SCLCResult:
    """Run the construction of the module docstring on one J–V curve (V > 0 points)."""
    if thickness_nm is None or not thickness_nm > 0:
        raise ParameterError(
            f"device.thickness_nm: got {thickness_nm!r}; SCLC needs the film thickness (> 0 nm)"
        )
    if relative_permittivity is None or not relative_permittivity > 0:
        raise ParameterError(
            f"device.relative_permittivity: got {relative_permittivity!r}; SCLC needs εr (> 0)"
        )
    if series_resistance_ohm_cm2 < 0:
        raise ParameterError(
            f"series resistance: got {series_resistance_ohm_cm2} ohm*cm^2; allowed: >= 0"
        )
    v = np.abs(np.asarray(voltage_v, dtype=float))
    j = np.abs(np.asarray(current_density_a_cm2, dtype=float))
    if v.shape != j.shape:
        raise ParameterError("SCLC data: voltage and current must have the same length")
    ok = np.isfinite(v) & np.isfinite(j) & (v > 0) & (j > 0)
    order = np.argsort(v[ok])
    v, j = v[ok][order], j[ok][order]
    v, idx = np.unique(v, return_index=True)
    j = j[idx]
    d_m = thickness_nm * 1e-9
    eps = VACUUM_PERMITTIVITY_F_M * relative_permittivity
    slope = loglog_slope(v, j)
    lv, lj = np.log(v), np.log(j)
    notes: list[str] = []

    # 1. Ohmic region: from the low-voltage end
    ohmic = None
    runs = _runs(np.abs(slope - 1.0) <= OHMIC_TOLERANCE)
    if runs and runs[0][0] <= 1 and runs[0][1] - runs[0][0] + 1 >= MIN_REGION_POINTS:
        ohmic = runs[0]
    else:
        notes.append("no Ohmic (slope ≈1) region at the low-voltage end")

    # 2. TFL region: steep points after the Ohmic region
    start = ohmic[1] + 1 if ohmic else 0
    tfl = None
    steep = [r for r in _runs(slope > TFL_MIN_SLOPE) if r[0] >= start]
    if steep:
        tfl = steep[0]
    else:
        notes.append(f"no trap-filled-limit region (slope > {TFL_MIN_SLOPE:g})")

    v_tfl = n_t = ohm_fit = tfl_fit = None
    if ohmic and tfl:
        lo, hi = ohmic
        ohm_fit = _line(lv[lo : hi + 1], lj[lo : hi + 1])
        a, b = tfl
        s_max = float(np.max(slope[a : b + 1]))
        core = [i for i in range(a, b + 1) if slope[i] >= 0.8 * s_max]
        if len(core) >= 2:
            tfl_fit = _line(lv[core], lj[core])
        else:  # a single steep point: tangent with the smoothed slope there
            i = core[0]
            tfl_fit = (s_max, lj[i] - s_max * lv[i])
        ln_v = (ohm_fit[1] - tfl_fit[1]) / (tfl_fit[0] - ohm_fit[0])
        v_tfl = float(np.exp(ln_v))
        n_t = 2 * eps * v_tfl / (ELEMENTARY_CHARGE_C * d_m**2) * 1e-6

    # 3. Child region beyond the TFL region, slope against the corrected voltage
    v_corr = v - built_in_voltage_v - j * series_resistance_ohm_cm2
    after = (tfl[1] + 1) if tfl else (ohmic[1] + 1 if ohmic else 0)
    mobility = child = child_slope = None
    usable = np.flatnonzero(v_corr > 0)
    usable = usable[usable >= after]
    if usable.size >= MIN_REGION_POINTS:
        sub = slice(int(usable[0]), None)
        s_corr = loglog_slope(v_corr[sub], j[sub])
        child_runs = [
            r
            for r in _runs(np.abs(s_corr - 2.0) <= CHILD_TOLERANCE)
            if r[1] - r[0] + 1 >= MIN_REGION_POINTS
        ]
        if child_runs:
            a, b = max(child_runs, key=lambda r: r[1] - r[0])
            a, b = a + sub.start, b + sub.start
            vc, jc = v_corr[a : b + 1], j[a : b + 1]
            # J = 9/8 ε μ Vc²/d³  ->  ln μ = mean(ln J − ln(9/8 ε Vc²/d³)); J in A/m²
            mg = 9 / 8 * eps * vc**2 / d_m**3
            mobility = float(np.exp(np.mean(np.log(jc * 1e4) - np.log(mg)))) * 1e4
            child = (float(v[a]), float(v[b]))
            child_slope = _line(np.log(vc), np.log(jc))[0]
    if mobility is None:
        notes.append(
            f"no region of slope 2±{CHILD_TOLERANCE:g} above the trap-filled limit: "
            "no Mott–Gurney mobility reported"
        )

    return SCLCResult(
        voltage_v=v,
        slope=slope,
        ohmic_range_v=(float(v[ohmic[0]]), float(v[ohmic[1]])) if ohmic else None,
        ohmic_slope=ohm_fit[0] if ohm_fit else None,
        tfl_range_v=(float(v[tfl[0]]), float(v[tfl[1]])) if tfl else None,
        tfl_slope=tfl_fit[0] if tfl_fit else None,
        v_tfl_v=v_tfl,
        trap_density_cm3=n_t,
        child_range_v=child,
        child_slope=child_slope,
        mobility_cm2_vs=mobility,
        notes=notes,
    )
