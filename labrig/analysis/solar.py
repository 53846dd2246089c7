"""Solar-cell figures from a J–V scan: Jsc, Voc, Pmax, Vmp, Jmp, FF, PCE, Rs, Rsh, hysteresis.

Conventions (device side, after the polarity flag is applied): V across the cell, J
positive for forward injection, so an illuminated cell at 0 < V < Voc has J < 0.  Jsc and
Jmp are reported as positive magnitudes, as papers do.

* Jsc = −J(0 V), read off a monotone cubic (PCHIP) through the points; a scan whose range
  does not include 0 V has no Jsc and is refused.
* Voc is the zero of that interpolant between the two points where J changes sign; a scan
  that never reaches J = 0 reports Voc as "above the scanned range" — never extrapolated —
  and then has no FF, Pmax or PCE either (the power quadrant was not fully measured).
* Pmax = max(−V·J) on the interpolant over 0 ≤ V ≤ Voc; FF = Pmax/(Voc·Jsc);
  PCE = Pmax/P_in.
* Rs = dV/dJ at Voc and Rsh = dV/dJ at 0 V (the slope approximations; in Ω·cm²), from a
  local quadratic through the five points nearest each.
* Hysteresis index HI = (PCE_reverse − PCE_forward)/PCE_reverse, where reverse is the
  scan from Voc towards Jsc (device voltage falling).  0 = no hysteresis; > 0 when the
  reverse scan looks better, the usual case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq, minimize_scalar

from labrig.errors import ParameterError

VOC_INTERPOLATED = "interpolated"
VOC_ABOVE_RANGE = "above the scanned range"
_SLOPE_POINTS = 5
#: −J(0 V) below this fraction of the largest |J| in the scan counts as no photocurrent
_MIN_PHOTOCURRENT_FRACTION = 1e-4


@dataclass(frozen=True)
class SolarFigures:
    """Figures of one light J–V scan (SI-ish units: V, A/cm², W/cm², Ω·cm², fractions)."""

    jsc_a_cm2: float
    voc_v: float | None
    voc_status: str
    pmax_w_cm2: float | None
    vmp_v: float | None
    jmp_a_cm2: float | None
    ff: float | None
    pce: float | None
    rs_ohm_cm2: float | None
    rsh_ohm_cm2: float
    light_mw_cm2: float
    area_cm2: float

    def as_figures(self, prefix: str = "") -> dict[str, tuple[Any, str]]:
        """Lab units for the run file: mA/cm², mW/cm², %, Ω·cm²; figures that do not
        exist (Voc above the range) are left out and ``voc_status`` says why."""
        figures: dict[str, tuple[Any, str]] = {
            "jsc": (self.jsc_a_cm2 * 1e3, "mA/cm^2"),
            "voc": (self.voc_v, "V"),
            "voc_status": (self.voc_status, ""),
            "pmax": (None if self.pmax_w_cm2 is None else self.pmax_w_cm2 * 1e3, "mW/cm^2"),
            "vmp": (self.vmp_v, "V"),
            "jmp": (None if self.jmp_a_cm2 is None else self.jmp_a_cm2 * 1e3, "mA/cm^2"),
            "ff": (None if self.ff is None else self.ff * 100, "%"),
            "pce": (None if self.pce is None else self.pce * 100, "%"),
            "rs": (self.rs_ohm_cm2, "ohm*cm^2"),
            "rsh": (self.rsh_ohm_cm2, "ohm*cm^2"),
        }
        return {prefix + k: v for k, v in figures.items() if v[0] is not None}


def _sorted_curve(v: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by voltage, repeated voltages averaged (a scan may revisit one)."""
    order = np.argsort(v, kind="stable")
    v, j = v[order], j[order]
    uv, inverse = np.unique(v, return_inverse=True)
    uj = np.bincount(inverse, weights=j) / np.bincount(inverse)
    return uv, uj


def _local_slope(v: np.ndarray, j: np.ndarray, at: float) -> float:
    """dJ/dV at ``at`` from a quadratic through the points nearest it."""
    idx = np.sort(np.argsort(np.abs(v - at))[: min(_SLOPE_POINTS, len(v))])
    deg = 2 if len(idx) >= 4 else 1
    coeffs = np.polyfit(v[idx] - at, j[idx], deg)
    return float(coeffs[-2])


def analyze_jv(
    voltage_v: Sequence[float],
    current_a: Sequence[float],
    *,
    area_cm2: float,
    light_mw_cm2: float = 100.0,
    polarity: int = 1,
) -> SolarFigures:
    """Figures of one illuminated scan.

    ``voltage_v``/``current_a`` are as the instrument measured them; ``polarity`` (+1 or
    −1) maps them to the device (−1 when the cell's cathode is on the SMU's HI terminal).
    ``area_cm2`` is the mask (illuminated) area, ``light_mw_cm2`` the irradiance.
    """
    if polarity not in (1, -1):
        raise ParameterError(f"polarity: got {polarity!r}; allowed: +1 or -1")
    if not area_cm2 > 0:
        raise ParameterError(f"mask area: got {area_cm2} cm^2; allowed: > 0")
    if not light_mw_cm2 > 0:
        raise ParameterError(f"light intensity: got {light_mw_cm2} mW/cm^2; allowed: > 0")
    v = polarity * np.asarray(voltage_v, dtype=float)
    j = polarity * np.asarray(current_a, dtype=float) / area_cm2
    if v.shape != j.shape or v.size < 3:
        raise ParameterError("J–V data: need at least 3 points with one current per voltage")
    ok = np.isfinite(v) & np.isfinite(j)
    v, j = _sorted_curve(v[ok], j[ok])
    if len(v) < 3:
        raise ParameterError("J–V data: fewer than 3 finite points")
    if not v[0] <= 0.0 <= v[-1]:
        raise ParameterError(
            f"scan range: device voltage {v[0]:g} to {v[-1]:g} V does not include 0 V, "
            "so there is no Jsc; allowed: a scan that spans 0 V"
        )
    curve = PchipInterpolator(v, j)
    j0 = float(curve(0.0))
    if not -j0 > _MIN_PHOTOCURRENT_FRACTION * np.max(np.abs(j)):
        raise ParameterError(
            f"J(0 V) = {j0 * 1e3:+.4g} mA/cm^2: no photocurrent — a dark scan, the light "
            "off, or the polarity flag reversed"
        )
    jsc = -j0
    rsh = 1.0 / _local_slope(v, j, 0.0)

    # Voc: first sign change from J < 0 to J >= 0 at V > 0
    crossing = np.flatnonzero((j[:-1] < 0) & (j[1:] >= 0) & (v[1:] > 0))
    if crossing.size == 0:
        return SolarFigures(
            jsc_a_cm2=jsc,
            voc_v=None,
            voc_status=VOC_ABOVE_RANGE,
            pmax_w_cm2=None,
            vmp_v=None,
            jmp_a_cm2=None,
            ff=None,
            pce=None,
            rs_ohm_cm2=None,
            rsh_ohm_cm2=rsh,
            light_mw_cm2=light_mw_cm2,
            area_cm2=area_cm2,
        )
    i = int(crossing[0])
    voc = float(v[i + 1]) if j[i + 1] == 0 else float(brentq(curve, max(v[i], 0.0), v[i + 1]))

    # maximum power point on the interpolant: coarse grid, then bounded refinement
    grid = np.linspace(0.0, voc, 2001)
    power = -grid * curve(grid)
    k = int(np.argmax(power))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = minimize_scalar(lambda x: float(x * curve(x)), bounds=(lo, hi), method="bounded")
    vmp = float(res.x)
    jmp = -float(curve(vmp))
    pmax = vmp * jmp
    rs = 1.0 / _local_slope(v, j, voc)
    return SolarFigures(
        jsc_a_cm2=jsc,
        voc_v=voc,
        voc_status=VOC_INTERPOLATED,
        pmax_w_cm2=pmax,
        vmp_v=vmp,
        jmp_a_cm2=jmp,
        ff=pmax / (voc * jsc),
        pce=pmax / (light_mw_cm2 * 1e-3),
        rs_ohm_cm2=rs,
        rsh_ohm_cm2=rsh,
        light_mw_cm2=light_mw_cm2,
        area_cm2=area_cm2,
    )


def hysteresis_index(pce_reverse: float, pce_forward: float) -> float:
    """HI = (PCE_reverse − PCE_forward)/PCE_reverse (see the module docstring)."""
    if not pce_reverse > 0:
        raise ParameterError(f"hysteresis index: reverse-scan PCE is {pce_reverse}; need > 0")
    return (pce_reverse - pce_forward) / pce_reverse
