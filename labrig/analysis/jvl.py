"""The headline figures of a J–V–L sweep, from its columns (SI in, lab units out).

What an LED paper's first table reports: turn-on voltage (at 1 cd/m²), maximum luminance
and its voltage, peak EQE and the J where it occurs, peak current and power efficiency,
EQE at 100 and 1000 cd/m², the J at which EQE has rolled off to half its peak, and the
EL peak, FWHM and CIE 1931 (x, y) of the spectrum at peak EQE.  Threshold crossings are
interpolated linearly in log L (or log J) against V (or EQE), since L rises roughly
exponentially with V near turn-on; they are taken on the first monotonic branch of the
sweep so a return scan cannot produce a second crossing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Figures = dict[str, tuple[float, str]]

#: luminances at which EQE is quoted (cd/m²)
EQE_QUOTE_LUMINANCES = (100.0, 1000.0)
TURN_ON_LUMINANCE = 1.0


@dataclass
class JVLAnalysis:
    """Figures ``{name: (value, units)}`` and, for each figure that could not be
    determined, one line saying why (stored in the run's log)."""

    figures: Figures = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def first_branch(voltage_v: np.ndarray) -> np.ndarray:
    """Indices of the first monotonic run of the sweep, ordered by increasing voltage."""
    v = np.asarray(voltage_v, float)
    if v.size < 2:
        return np.arange(v.size)
    steps = np.sign(np.diff(v))
    direction = steps[np.nonzero(steps)[0][0]] if np.any(steps) else 1.0
    end = 1
    while end < v.size and np.sign(v[end] - v[end - 1]) in (direction, 0.0):
        end += 1
    idx = np.arange(end)
    return idx if direction > 0 else idx[::-1]


def crossing(x: np.ndarray, y: np.ndarray, level: float, *, log_y: bool = True) -> float | None:
    """x where y first rises through ``level`` (y read in order), interpolated linearly
    in log10 y (or y); None if y never reaches it.  A first point already at or above the
    level is not a crossing (the threshold lies before the data)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    above = np.nonzero(np.nan_to_num(y, nan=-np.inf) >= level)[0]
    if above.size == 0 or above[0] == 0:
        return None
    i = above[0]
    y0, y1 = y[i - 1], y[i]
    if log_y:
        if not y0 > 0:
            return float(x[i])  # below-noise point before: the crossing is at most here
        t = (np.log10(level) - np.log10(y0)) / (np.log10(y1) - np.log10(y0))
    else:
        t = (level - y0) / (y1 - y0)
    return float(x[i - 1] + t * (x[i] - x[i - 1]))


def _eqe_at_luminance(lum: np.ndarray, eqe: np.ndarray, level: float) -> float | None:
    """EQE where L first reaches ``level``, interpolated against log L."""
    above = np.nonzero(np.nan_to_num(lum, nan=-np.inf) >= level)[0]
    if above.size == 0:
        return None
    i = above[0]
    if i == 0 or not lum[i - 1] > 0:
        return float(eqe[i])
    t = (np.log10(level) - np.log10(lum[i - 1])) / (np.log10(lum[i]) - np.log10(lum[i - 1]))
    return float(eqe[i - 1] + t * (eqe[i] - eqe[i - 1]))


def _rolloff_half_j(j: np.ndarray, eqe: np.ndarray, peak: int) -> float | None:
    """J above the peak where EQE first falls to half its peak value (log-J interpolation)."""
    half = eqe[peak] / 2
    after = np.nonzero(np.nan_to_num(eqe[peak:], nan=np.inf) <= half)[0]
    if after.size == 0:
        return None
    i = peak + after[0]
    e0, e1 = eqe[i - 1], eqe[i]
    if not (j[i - 1] > 0 and j[i] > 0) or e0 == e1:
        return float(j[i])
    t = (e0 - half) / (e0 - e1)
    return float(10 ** (np.log10(j[i - 1]) + t * (np.log10(j[i]) - np.log10(j[i - 1]))))


def spectrum_figures(wavelength_nm: np.ndarray, spectrum: np.ndarray) -> Figures:
    """EL peak, FWHM and CIE 1931 (x, y) of one spectrum (via labrig.analysis.spectral)."""
    from labrig.analysis import spectral

    wl = np.asarray(wavelength_nm, float)
    s = np.asarray(spectrum, float)
    x, y = spectral.chromaticity_xy(wl, s)
    return {
        "el_peak_wavelength": (float(spectral.peak_wavelength(wl, s)), "nm"),
        "el_fwhm": (float(spectral.fwhm(wl, s)), "nm"),
        "cie_x": (float(x), ""),
        "cie_y": (float(y), ""),
    }


def analyze_jvl(
    voltage_v: np.ndarray,
    current_density_a_m2: np.ndarray,
    luminance_cd_m2: np.ndarray,
    eqe: np.ndarray,
    current_efficiency_cd_a: np.ndarray,
    power_efficiency_lm_w: np.ndarray,
    spectrum_at_peak: tuple[np.ndarray, np.ndarray] | None = None,
    measurable: np.ndarray | None = None,
) -> JVLAnalysis:
    """All figures of a sweep.  Arrays are per step in SI (EQE a fraction); the result
    is in lab units: V, cd/m², %, mA/cm² (1 A/m² = 0.1 mA/cm²), cd/A, lm/W, nm.

    ``spectrum_at_peak`` is the (wavelength_nm, spectral power) recorded nearest the
    peak-EQE step (the caller knows which spectrum that is); without it the EL figures are
    absent.  ``measurable`` marks the steps whose light is above the photodiode's noise:
    efficiencies elsewhere are ratios of noise to a tiny current (an EQE of 70 % at 0 V)
    and take no part in the efficiency figures.
    """
    out = JVLAnalysis()
    v = np.asarray(voltage_v, float)
    j = np.asarray(current_density_a_m2, float)
    lum = np.asarray(luminance_cd_m2, float)
    eqe = np.asarray(eqe, float)
    ce = np.asarray(current_efficiency_cd_a, float)
    pe = np.asarray(power_efficiency_lm_w, float)
    if measurable is not None:
        noise = ~np.asarray(measurable, bool)
        eqe, ce, pe = (np.where(noise, np.nan, x) for x in (eqe, ce, pe))
    if v.size == 0:
        out.notes.append("no data points: no figures")
        return out
    to_ma_cm2 = 0.1

    branch = first_branch(v)
    turn_on = crossing(v[branch], lum[branch], TURN_ON_LUMINANCE)
    if turn_on is None:
        reached = np.nanmax(lum[branch]) if np.any(np.isfinite(lum)) else float("nan")
        out.notes.append(
            f"turn_on_voltage: luminance never rose through {TURN_ON_LUMINANCE:g} cd/m² "
            f"(max {reached:.3g} cd/m² on the first branch)"
        )
    else:
        out.figures["turn_on_voltage"] = (turn_on, "V")

    if np.any(np.isfinite(lum)):
        i_lmax = int(np.nanargmax(lum))
        out.figures["max_luminance"] = (float(lum[i_lmax]), "cd/m^2")
        out.figures["voltage_at_max_luminance"] = (float(v[i_lmax]), "V")

    if np.any(np.isfinite(eqe)):
        i_peak = int(np.nanargmax(eqe))
        out.figures["peak_eqe"] = (float(eqe[i_peak] * 100), "%")
        out.figures["current_density_at_peak_eqe"] = (float(j[i_peak] * to_ma_cm2), "mA/cm^2")
        out.figures["voltage_at_peak_eqe"] = (float(v[i_peak]), "V")
        b_peak = int(np.nanargmax(eqe[branch]))
        half = _rolloff_half_j(j[branch], eqe[branch], b_peak)
        if half is None:
            out.notes.append(
                "current_density_at_half_peak_eqe: EQE did not roll off to half its peak "
                "within the sweep"
            )
        else:
            out.figures["current_density_at_half_peak_eqe"] = (half * to_ma_cm2, "mA/cm^2")
        for level in EQE_QUOTE_LUMINANCES:
            name = f"eqe_at_{level:g}_cd_m2"
            value = _eqe_at_luminance(lum[branch], eqe[branch], level)
            if value is None:
                out.notes.append(f"{name}: luminance never reached {level:g} cd/m²")
            else:
                out.figures[name] = (value * 100, "%")
    else:
        out.notes.append("peak_eqe: no step with forward current and measurable light")

    if np.any(np.isfinite(ce)):
        out.figures["peak_current_efficiency"] = (float(np.nanmax(ce)), "cd/A")
    if np.any(np.isfinite(pe)):
        out.figures["peak_power_efficiency"] = (float(np.nanmax(pe)), "lm/W")

    if spectrum_at_peak is None:
        out.notes.append("EL peak/FWHM/CIE: no spectrum recorded during the sweep")
    else:
        out.figures.update(spectrum_figures(*spectrum_at_peak))
    return out
