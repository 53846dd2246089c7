"""Figures of one emission spectrum: peak, FWHM, centroid, CIE 1931 colour.

Every function takes a spectrum on any (monotonic, possibly non-uniform) wavelength grid
in nm, as the USB2000+ delivers it, so the numbers do not depend on resampling.  The
CIE 1931 2° colour-matching functions come from colour-science and are interpolated to
the spectrum's grid; colour-science is imported inside the functions because importing
it costs seconds and the CLI must start fast.

Dominant wavelength and colour purity depend on the white point: the default here is
the equal-energy illuminant E (x = y = 1/3), as most LED papers use; D65 is available.
Colour purity is the excitation purity (distance from the white point over the distance
from the white point to the spectral locus along the same line).

The spectral-response calibration (counts -> relative spectral power) also lives here,
because both the spectrometer driver and the procedures apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.integrate import trapezoid

from labrig.errors import ConfigError

CIE_1931_2DEG = "CIE 1931 2 Degree Standard Observer"
WhitePoint = Literal["E", "D65"]
WHITE_POINT_NAMES = {
    "E": "CIE illuminant E (equal energy, x = y = 1/3)",
    "D65": "CIE illuminant D65 (x = 0.3127, y = 0.3290)",
}
#: fraction of the peak above which a pixel counts as part of the emission
SIGNIFICANT_FRACTION = 0.01


def _as_spectrum(wavelength_nm: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float arrays sorted by increasing wavelength (real grids may run either way)."""
    wl = np.asarray(wavelength_nm, dtype=float)
    s = np.asarray(values, dtype=float)
    if wl.ndim != 1 or wl.shape != s.shape or len(wl) < 3:
        raise ValueError(
            f"spectrum needs 1-D wavelength and value arrays of equal length >= 3, "
            f"got shapes {wl.shape} and {s.shape}"
        )
    if not (np.all(np.isfinite(wl)) and np.all(np.isfinite(s))):
        raise ValueError("spectrum contains NaN or infinite values")
    order = np.argsort(wl)
    wl, s = wl[order], s[order]
    if np.any(np.diff(wl) <= 0):
        raise ValueError("spectrum wavelengths must be distinct")
    return wl, s


# ------------------------------------------------------------------ peak and width
def _top_parabola(wl: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """Vertex (wavelength, height) of a least-squares parabola through the top of the peak.

    The window is the contiguous run of pixels above 95 % of the maximum (at least the
    maximum and its two neighbours): wide enough to average out noise, narrow enough that
    a Gaussian top is still parabolic (height bias < 0.05 %).
    """
    i = int(np.argmax(s))
    if i == 0 or i == len(s) - 1:
        return float(wl[i]), float(s[i])
    level = 0.95 * s[i]
    lo = i
    while lo > 0 and s[lo - 1] >= level:
        lo -= 1
    hi = i
    while hi < len(s) - 1 and s[hi + 1] >= level:
        hi += 1
    lo, hi = min(lo, i - 1), max(hi, i + 1)
    x = wl[lo : hi + 1] - wl[i]
    a, b, c = np.polyfit(x, s[lo : hi + 1], 2)
    if a >= 0:  # not a maximum (flat or noisy top): fall back to the sampled maximum
        return float(wl[i]), float(s[i])
    x0 = float(np.clip(-b / (2 * a), x[0], x[-1]))
    return float(wl[i] + x0), float(np.polyval((a, b, c), x0))


def peak_wavelength(wavelength_nm: np.ndarray, values: np.ndarray) -> float:
    """Peak wavelength in nm, refined below a pixel by a parabola through the peak's top."""
    wl, s = _as_spectrum(wavelength_nm, values)
    return _top_parabola(wl, s)[0]


def _crossing(wl: np.ndarray, s: np.ndarray, i: int, level: float, step: int) -> float:
    """Wavelength where ``s`` first falls below ``level`` walking from index ``i`` by ``step``,
    linearly interpolated between the two bracketing pixels."""
    j = i
    while 0 <= j + step < len(s) and s[j + step] >= level:
        j += step
    k = j + step
    if not 0 <= k < len(s):
        side = "short" if step < 0 else "long"
        raise ValueError(
            f"spectrum does not fall to half maximum on the {side}-wavelength side "
            f"within {wl[0]:.1f}-{wl[-1]:.1f} nm"
        )
    return float(np.interp(level, [s[k], s[j]], [wl[k], wl[j]]))


def fwhm(wavelength_nm: np.ndarray, values: np.ndarray) -> float:
    """Full width at half maximum in nm from the interpolated half-maximum crossings either
    side of the main peak (half of the refined peak height)."""
    wl, s = _as_spectrum(wavelength_nm, values)
    _, height = _top_parabola(wl, s)
    if not height > 0:
        raise ValueError("spectrum has no positive peak")
    i = int(np.argmax(s))
    half = 0.5 * height
    return _crossing(wl, s, i, half, +1) - _crossing(wl, s, i, half, -1)


def integrated_intensity(wavelength_nm: np.ndarray, values: np.ndarray) -> float:
    """∫ s(λ) dλ over the grid (trapezoidal), in the spectrum's units × nm."""
    wl, s = _as_spectrum(wavelength_nm, values)
    return float(trapezoid(s, wl))


def centroid(wavelength_nm: np.ndarray, values: np.ndarray) -> float:
    """Intensity-weighted mean wavelength in nm, over the pixels above 1 % of the peak
    (the dark-subtracted baseline elsewhere is noise and would pull it to mid-range)."""
    wl, s = _as_spectrum(wavelength_nm, values)
    w = np.where(s >= SIGNIFICANT_FRACTION * s.max(), s, 0.0)
    total = trapezoid(w, wl)
    if not total > 0:
        raise ValueError("spectrum has no positive signal")
    return float(trapezoid(w * wl, wl) / total)


# ------------------------------------------------------------------------- colour
def _cmfs_on(wl: np.ndarray) -> np.ndarray:
    """CIE 1931 2° x̄, ȳ, z̄ (pixels × 3) linearly interpolated to ``wl``; zero outside
    the tabulated 360–830 nm, where the functions are negligible."""
    import colour

    cmfs = colour.MSDS_CMFS[CIE_1931_2DEG]
    table = np.asarray(cmfs.values)
    grid = np.asarray(cmfs.wavelengths)
    return np.stack([np.interp(wl, grid, table[:, k], left=0, right=0) for k in range(3)], 1)


def tristimulus(wavelength_nm: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Relative CIE 1931 XYZ (∫ s x̄ dλ, ...) on the spectrum's own grid."""
    wl, s = _as_spectrum(wavelength_nm, values)
    return trapezoid(s[:, None] * _cmfs_on(wl), wl, axis=0)


def chromaticity_xy(wavelength_nm: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """CIE 1931 2° chromaticity (x, y) of a spectral power distribution."""
    xyz = tristimulus(wavelength_nm, values)
    total = float(xyz.sum())
    if not total > 0:
        raise ValueError("spectrum has no visible signal (X + Y + Z <= 0)")
    return float(xyz[0] / total), float(xyz[1] / total)


def white_point_xy(white_point: WhitePoint = "E") -> np.ndarray:
    """Chromaticity of the named white point for the CIE 1931 2° observer."""
    import colour

    points = colour.CCS_ILLUMINANTS[CIE_1931_2DEG]
    if white_point not in ("E", "D65"):
        raise ValueError(f"white point must be 'E' or 'D65', got {white_point!r}")
    return np.asarray(points[white_point], dtype=float)


def _locus_wavelength(xy_point: np.ndarray, wl: np.ndarray, xy_s: np.ndarray) -> float:
    """Wavelength of a point on the spectral locus, interpolated along the nearest locus
    segment (colour-science snaps it to the 1 nm table)."""
    a, b = xy_s[:-1], xy_s[1:]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", xy_point - a, ab) / np.einsum("ij,ij->i", ab, ab), 0, 1)
    dist = np.linalg.norm(a + t[:, None] * ab - xy_point, axis=1)
    k = int(np.argmin(dist))
    return float(wl[k] + t[k] * (wl[k + 1] - wl[k]))


def dominant_wavelength(x: float, y: float, white_point: WhitePoint = "E") -> tuple[float, float]:
    """(dominant wavelength in nm, excitation purity 0–1) of chromaticity (x, y) seen from
    ``white_point``.  A purple (line of purples) gives the complementary wavelength as a
    negative number, as the CIE convention has it."""
    import colour
    from colour.colorimetry import dominant_wavelength as cs_dominant
    from colour.colorimetry import excitation_purity

    cmfs = colour.MSDS_CMFS[CIE_1931_2DEG]
    xy = np.array([x, y], dtype=float)
    xy_n = white_point_xy(white_point)
    wl_snapped, xy_wl, xy_cwl = cs_dominant(xy, xy_n, cmfs)
    xy_s = colour.XYZ_to_xy(np.asarray(cmfs.values))
    grid = np.asarray(cmfs.wavelengths, dtype=float)
    on_locus = xy_cwl if float(wl_snapped) < 0 else xy_wl
    wl = _locus_wavelength(np.asarray(on_locus)[None, :], grid, xy_s)
    purity = float(excitation_purity(xy, xy_n, cmfs))
    return (-wl if float(wl_snapped) < 0 else wl), purity


# --------------------------------------------------------------------- photometry
def luminous_efficacy_of_radiation(wavelength_nm: np.ndarray, values: np.ndarray) -> float:
    """K = 683 lm/W · ∫V(λ)s(λ)dλ / ∫s(λ)dλ: lumens per radiant watt of this spectrum
    (photopic V(λ) from labrig.analysis.optics)."""
    from labrig.analysis.optics import KM_LM_PER_W, photopic_v

    wl, s = _as_spectrum(wavelength_nm, values)
    total = trapezoid(s, wl)
    if not total > 0:
        raise ValueError("spectrum has no positive signal")
    return float(KM_LM_PER_W * trapezoid(s * photopic_v(wl), wl) / total)


# ------------------------------------------------------------------ all at once
@dataclass(frozen=True)
class SpectralFigures:
    """The figures a paper quotes for one emission spectrum."""

    peak_nm: float
    fwhm_nm: float
    centroid_nm: float
    integrated: float
    cie_x: float
    cie_y: float
    dominant_nm: float
    purity: float
    white_point: str

    def as_analysis(self) -> dict[str, tuple[float | str, str]]:
        """``{name: (value, units)}`` for ``LabrigProcedure.emit_analysis``; the white point
        the dominant wavelength and purity refer to is recorded with them."""
        return {
            "peak_wavelength": (self.peak_nm, "nm"),
            "fwhm": (self.fwhm_nm, "nm"),
            "centroid_wavelength": (self.centroid_nm, "nm"),
            "integrated_intensity": (self.integrated, "nm"),  # relative power × nm
            "cie_x": (self.cie_x, ""),
            "cie_y": (self.cie_y, ""),
            "dominant_wavelength": (self.dominant_nm, "nm"),
            "color_purity": (self.purity, ""),
            "white_point": (WHITE_POINT_NAMES[self.white_point], ""),
        }


def analyze_spectrum(
    wavelength_nm: np.ndarray, values: np.ndarray, *, white_point: WhitePoint = "E"
) -> SpectralFigures:
    """Every figure of :class:`SpectralFigures` for one (dark-subtracted) spectrum."""
    wl, s = _as_spectrum(wavelength_nm, values)
    x, y = chromaticity_xy(wl, s)
    dominant, purity = dominant_wavelength(x, y, white_point)
    return SpectralFigures(
        peak_nm=peak_wavelength(wl, s),
        fwhm_nm=fwhm(wl, s),
        centroid_nm=centroid(wl, s),
        integrated=integrated_intensity(wl, s),
        cie_x=x,
        cie_y=y,
        dominant_nm=dominant,
        purity=purity,
        white_point=white_point,
    )


# ------------------------------------------------------- spectral-response calibration
@dataclass(frozen=True)
class SpectralResponse:
    """Relative spectral response of the spectrometer + fibre (counts per unit spectral
    power, any scale), from a lamp calibration: dividing counts by it gives relative
    spectral power."""

    wavelength_nm: np.ndarray
    response: np.ndarray
    source: str = ""

    @classmethod
    def from_csv(cls, path: str | Path) -> SpectralResponse:
        """Two columns ``wavelength_nm, relative response`` (header and # comments allowed)."""
        path = Path(path)
        from labrig.analysis.optics import read_spectral_table

        where = f"calibration.spectral_response_file {path}"
        wl, r = read_spectral_table(path, where, "relative response")
        return cls(wl, r, str(path))

    def apply(self, wavelength_nm: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Counts -> relative spectral power (peak 1).  Raises ``ConfigError`` when the
        calibration does not cover the wavelengths where the spectrum is significant
        (above 1 % of its peak); pixels outside the calibrated range are set to 0."""
        wl = np.asarray(wavelength_nm, dtype=float)
        c = np.asarray(counts, dtype=float)
        lo, hi = float(self.wavelength_nm[0]), float(self.wavelength_nm[-1])
        significant = wl[c >= SIGNIFICANT_FRACTION * c.max()] if c.max() > 0 else wl[:0]
        if significant.size and (significant.min() < lo or significant.max() > hi):
            raise ConfigError(
                f"calibration.spectral_response_file {self.source}: covers {lo:g}-{hi:g} nm "
                f"but the spectrum extends over {significant.min():.1f}-"
                f"{significant.max():.1f} nm; use a calibration that covers it"
            )
        inside = (wl >= lo) & (wl <= hi)
        power = np.zeros_like(c)
        power[inside] = c[inside] / np.interp(wl[inside], self.wavelength_nm, self.response)
        peak = power.max()
        return power / peak if peak > 0 else power
