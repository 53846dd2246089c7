"""Optics primitives shared by the photometry analysis and the simulated bench's truth.

Both sides must use the same collection geometry, responsivity interpolation, V(λ) table
and photon energy, or the analysis could never recover the simulator's ground truth for
the right reason.  Wavelengths are in nm (as every spectrometer and table gives them);
everything else is SI.  V(λ) comes from a copy of colour-science's table shipped as package
data (kept identical to the library's by a test): importing colour-science costs ~0.7 s and
~80 MB, and a run without spectra needs nothing else from it.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.constants import Planck, speed_of_light

from labrig.errors import ConfigError

if TYPE_CHECKING:
    from labrig.config import PhotodiodeCalibration

#: maximum luminous efficacy of radiation at 555 nm (CIE photopic), lm/W
KM_LM_PER_W = 683.0

#: share of a spectrum's integral allowed to fall outside the responsivity table
SIGNIFICANT_FRACTION = 0.01


def read_spectral_table(path: Path, where: str, quantity: str) -> tuple[np.ndarray, np.ndarray]:
    """A calibration CSV of two columns ``wavelength_nm, quantity`` (header and ``#``
    comments allowed) as two arrays; a problem is one ``ConfigError`` line naming
    ``where`` (the config key and file)."""
    try:
        table = np.genfromtxt(path, delimiter=",", comments="#", dtype=float)
    except OSError:
        raise ConfigError(f"{where}: file not found") from None
    if table.ndim == 2:
        table = table[~np.isnan(table).any(axis=1)]
    if table.ndim != 2 or table.shape[1] != 2 or len(table) < 2:
        raise ConfigError(
            f"{where}: need two numeric columns (wavelength_nm, {quantity}) and at least two rows"
        )
    wl, values = table[:, 0], table[:, 1]
    if np.any(np.diff(wl) <= 0) or np.any(values <= 0):
        raise ConfigError(f"{where}: wavelengths must increase strictly and values be positive")
    return wl, values


def lambertian_collection_factor(radius_m: float, distance_m: float) -> float:
    """Fraction of a small Lambertian emitter's forward-hemisphere flux that reaches an
    on-axis disc detector of radius r at distance d: F = r²/(r²+d²).

    (Integrate cosθ·sinθ over the cone tanθ_max = r/d and divide by the hemisphere's π/2:
    sin²θ_max = r²/(r²+d²).)
    """
    if not radius_m > 0 or not distance_m > 0:
        raise ValueError(f"radius and distance must be > 0, got r={radius_m}, d={distance_m}")
    r2 = radius_m * radius_m
    return r2 / (r2 + distance_m * distance_m)


def collection_factor(cal: PhotodiodeCalibration) -> float:
    """The calibrated collection factor if the calibration gives one (it includes what
    geometry misses: window losses, off-axis alignment), else the Lambertian geometric one."""
    if cal.collection_factor is not None:
        return float(cal.collection_factor)
    if cal.radius_mm is None or cal.distance_mm is None:
        raise ConfigError(
            "calibration.photodiode: give collection_factor, or both radius_mm and distance_mm"
        )
    return lambertian_collection_factor(cal.radius_mm * 1e-3, cal.distance_mm * 1e-3)


def spectral_integral(wavelength_nm: np.ndarray, values: np.ndarray) -> np.ndarray:
    """∫ values dλ over nm (trapezoid, last axis), the one quadrature used throughout."""
    return np.trapezoid(np.asarray(values, float), np.asarray(wavelength_nm, float), axis=-1)


def responsivity_at(
    table_nm: np.ndarray,
    table_a_per_w: np.ndarray,
    wavelength_nm: np.ndarray,
    spectrum: np.ndarray | None = None,
) -> np.ndarray:
    """Photodiode responsivity R(λ) in A/W at ``wavelength_nm`` by linear interpolation.

    Outside the table R is unknown and returned as 0.  When the ``spectrum`` (on
    ``wavelength_nm``) it will weight is given, more than ``SIGNIFICANT_FRACTION`` of its
    integral falling outside the table raises ``ConfigError``: extrapolating a
    calibration would give a silently wrong EQE.
    """
    table_nm = np.asarray(table_nm, float)
    table_r = np.asarray(table_a_per_w, float)
    wl = np.asarray(wavelength_nm, float)
    if table_nm.ndim != 1 or table_nm.shape != table_r.shape or len(table_nm) < 2:
        raise ConfigError("responsivity table: need two equal-length columns of >= 2 rows")
    if np.any(np.diff(table_nm) <= 0):
        raise ConfigError("responsivity table: wavelengths must increase strictly")
    inside = (wl >= table_nm[0]) & (wl <= table_nm[-1])
    if spectrum is not None:
        s = np.clip(np.asarray(spectrum, float), 0.0, None)
        total = np.atleast_1d(spectral_integral(wl, s))
        outside = total - np.atleast_1d(spectral_integral(wl, np.where(inside, s, 0.0)))
        share = np.divide(outside, total, out=np.zeros_like(total), where=total > 0)
        if np.any(share > SIGNIFICANT_FRACTION):
            frac = float(np.max(share))
            raise ConfigError(
                f"responsivity table covers {table_nm[0]:g}-{table_nm[-1]:g} nm but "
                f"{frac:.1%} of the spectrum lies outside it (allowed "
                f"{SIGNIFICANT_FRACTION:.0%}); extend the table"
            )
    return np.where(inside, np.interp(wl, table_nm, table_r), 0.0)


PHOTOPIC_V_TABLE = "cie_1924_photopic_v.csv"


@lru_cache(maxsize=1)
def photopic_table() -> tuple[np.ndarray, np.ndarray]:
    """(wavelength_nm, V) of the CIE 1924 photopic observer at 1 nm, 360–830 nm."""
    with files("labrig.analysis").joinpath("data", PHOTOPIC_V_TABLE).open() as f:
        table = np.loadtxt(f, delimiter=",", comments="#")
    return table[:, 0], table[:, 1]


def photopic_v(wavelength_nm: np.ndarray) -> np.ndarray:
    """CIE 1924 photopic luminous efficiency V(λ) (1 at 555 nm), linearly interpolated
    from colour-science's 1 nm table, 0 outside 360–830 nm."""
    wl_table, v_table = photopic_table()
    return np.interp(np.asarray(wavelength_nm, float), wl_table, v_table, left=0.0, right=0.0)


def photon_energy_j(wavelength_nm: np.ndarray) -> np.ndarray:
    """E = h·c/λ in joules for λ in nm."""
    return Planck * speed_of_light / (np.asarray(wavelength_nm, float) * 1e-9)


def gaussian_spectrum(wavelength_nm: np.ndarray, peak_nm: float, fwhm_nm: float) -> np.ndarray:
    """A Gaussian emission band normalised to unit integral over nm (the reference EL
    spectrum when no spectra are recorded, and the simulated LED's line shape)."""
    if not fwhm_nm > 0:
        raise ValueError(f"fwhm_nm must be > 0, got {fwhm_nm}")
    sigma = fwhm_nm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    wl = np.asarray(wavelength_nm, float)
    return np.exp(-0.5 * ((wl - peak_nm) / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))
