"""Optical power, photon flux, EQE, luminance and efficiencies from a photodiode reading.

The method of Forrest, Bradley & Thompson, "Measuring the efficiency of organic
light-emitting devices", Adv. Mater. 15, 1043 (2003): a large-area Si photodiode on axis
in front of a Lambertian emitter collects the fraction F of the forward-hemisphere flux,
and the normalised EL spectrum s(λ) turns the photodiode current into power, photons and
lumens.  With R(λ) the photodiode responsivity (A/W), V(λ) the CIE 1924 photopic curve,
E(λ) = hc/λ, A the emitting area, I the device current and V the drive voltage:

    R̄  = ∫R(λ)s(λ)dλ / ∫s(λ)dλ                 spectrum-weighted responsivity (A/W)
    P  = I_pd / (F·R̄)                          forward radiant flux (W)
    Ē  = ∫s(λ)dλ / ∫s(λ)/E(λ)dλ                photon-weighted mean energy (J)
    N  = P / Ē                                 photon flux (1/s)
    EQE = N / (I/e)                            external quantum efficiency
    K  = 683 lm/W · ∫V(λ)s(λ)dλ / ∫s(λ)dλ      luminous efficacy of the radiation
    L  = c_L · K·P / (π·A)                     luminance (cd/m²), Lambertian Φv = π·L·A
    Le = P / (π·A)                             radiance (W sr⁻¹ m⁻²)
    η_A = L·A / I                              current efficiency (cd/A)
    η_P = π·η_A / V                            power efficiency (lm/W)

s(λ) is a spectral *power* density shape (any scale: only ratios enter).  c_L is the
luminance-meter correction from ``labrig calibrate luminance``; it corrects the photometric
quantities (L, η_A, η_P), not P, N or EQE, which the meter does not measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from scipy.constants import elementary_charge

from labrig.analysis.optics import (
    KM_LM_PER_W,
    gaussian_spectrum,
    photon_energy_j,
    photopic_v,
    responsivity_at,
    spectral_integral,
)
from labrig.errors import ConfigError

if TYPE_CHECKING:
    from labrig.analysis.spectral import SpectralResponse
    from labrig.config import BenchConfig
    from labrig.interfaces import Spectrum

#: wavelength grid for the configured reference spectrum (nm)
REFERENCE_GRID_NM = np.arange(300.0, 1100.0 + 0.25, 0.25)


@dataclass(frozen=True)
class SpectralFactors:
    """What the EL spectrum contributes: R̄ (A/W), Ē (J) and K (lm/W), one per spectrum."""

    responsivity_a_per_w: np.ndarray
    mean_photon_energy_j: np.ndarray
    luminous_efficacy_lm_per_w: np.ndarray

    def take(self, index: np.ndarray) -> SpectralFactors:
        """The factors of the spectra ``index`` picks (one per step)."""
        return SpectralFactors(
            np.atleast_1d(self.responsivity_a_per_w)[index],
            np.atleast_1d(self.mean_photon_energy_j)[index],
            np.atleast_1d(self.luminous_efficacy_lm_per_w)[index],
        )


def spectral_factors(
    wavelength_nm: np.ndarray,
    spectrum: np.ndarray,
    responsivity_nm: np.ndarray,
    responsivity_a_per_w: np.ndarray,
) -> SpectralFactors:
    """R̄, Ē and K (module docstring) for one spectrum (1-D) or many (rows of a 2-D array).

    Negative values (noise after dark subtraction) are kept: clipping them would bias
    every integral upwards.  Raises ``ConfigError`` if the responsivity table does not
    cover the spectrum or a spectrum holds no signal.
    """
    wl = np.asarray(wavelength_nm, float)
    s = np.asarray(spectrum, float)
    total = spectral_integral(wl, s)
    if np.any(total <= 0):
        raise ConfigError("EL spectrum: no positive signal to weight the photodiode with")
    r = responsivity_at(responsivity_nm, responsivity_a_per_w, wl, spectrum=s)
    return SpectralFactors(
        responsivity_a_per_w=spectral_integral(wl, r * s) / total,
        mean_photon_energy_j=total / spectral_integral(wl, s / photon_energy_j(wl)),
        luminous_efficacy_lm_per_w=KM_LM_PER_W * spectral_integral(wl, photopic_v(wl) * s) / total,
    )


def power_shape_from_counts(wavelength_nm: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Spectral power density shape (any scale) from dark-subtracted CCD counts.

    A CCD pixel counts photons over its own width, so counts/pixel ∝ s(λ)·Δλ/E(λ) for a
    flat detector response; s ∝ counts·E(λ)/Δλ.  (With a spectral-response calibration,
    divide the counts by the response first.)  For a 628 nm line 33 nm wide the
    difference from using counts as they are is ~0.3 nm in the mean and ~1 % in K.
    """
    wl = np.asarray(wavelength_nm, float)
    width = np.abs(np.gradient(wl))
    return np.asarray(counts, float) * photon_energy_j(wl) / width / photon_energy_j(wl).max()


def emission_band(
    wavelength_nm: np.ndarray, spectrum: np.ndarray, level: float = 0.02, margin: float = 1.0
) -> np.ndarray:
    """The spectrum with everything outside its emission band set to 0.

    The band is the contiguous run around the peak above ``level`` × peak, widened on
    each side by ``margin`` × its own width: the line and its tails are kept, while the
    detector noise across the other ~1500 pixels (which would otherwise add up to a
    sizeable share of a dim spectrum's integral) is dropped.
    """
    s = np.asarray(spectrum, float)
    if s.size < 3:
        return s.copy()
    smooth = np.convolve(s, np.ones(5) / 5, mode="same")
    top = int(np.argmax(smooth))
    threshold = level * smooth[top]
    lo = top
    while lo > 0 and smooth[lo - 1] > threshold:
        lo -= 1
    hi = top
    while hi < s.size - 1 and smooth[hi + 1] > threshold:
        hi += 1
    width = hi - lo + 1
    lo = max(0, lo - int(round(margin * width)))
    hi = min(s.size - 1, hi + int(round(margin * width)))
    out = np.zeros_like(s)
    out[lo : hi + 1] = s[lo : hi + 1]
    return out


def recorded_power_shape(
    spectrum: Spectrum, response: SpectralResponse | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength_nm, spectral power shape) of a dark-subtracted recorded spectrum, cut to
    its emission band: through the spectral-response calibration when there is one, else
    from photon counts (``power_shape_from_counts``)."""
    wl = np.asarray(spectrum.wavelength_nm, float)
    counts = np.asarray(spectrum.counts, float)
    shape = (
        response.apply(wl, counts) if response is not None else power_shape_from_counts(wl, counts)
    )
    return wl, emission_band(wl, shape)


def usable_for_weighting(spectrum: Spectrum, min_snr: float = 100.0) -> bool:
    """True if a recorded spectrum can weight the photometry: not saturated, and its peak
    at least ``min_snr`` times the pixel noise (robust, from neighbouring-pixel differences).
    At an SNR of ~40 the noise over the emission band still moves K = 683·∫Vs/∫s by ~3 %
    (a dim green line on the simulated bench); at 100 it stays well below 1 %."""
    counts = np.asarray(spectrum.counts, float)
    noise = 1.4826 * float(np.median(np.abs(np.diff(counts)))) / np.sqrt(2.0) or 1.0
    return not spectrum.saturated and float(counts.max()) >= min_snr * noise


@dataclass(frozen=True)
class Photometry:
    """Per-step results, SI (EQE as a fraction)."""

    optical_power_w: np.ndarray
    photon_flux_per_s: np.ndarray
    eqe: np.ndarray
    luminance_cd_m2: np.ndarray
    radiance_w_sr_m2: np.ndarray
    current_efficiency_cd_a: np.ndarray
    power_efficiency_lm_w: np.ndarray


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den, NaN where the denominator is not positive (no forward drive: undefined)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _scalar_ratio(num: float, den: float) -> float:
    """``_ratio`` of one step."""
    return num / den if den > 0 else math.nan


class Light(NamedTuple):
    """What the photodiode reading alone gives (P, Le, L): all a luminance threshold or a
    breakdown check needs, before the figures that also need the device's drive."""

    optical_power_w: Any  # W
    radiance_w_sr_m2: Any  # W sr⁻¹ m⁻²
    luminance_cd_m2: Any  # cd/m²


def light_of(
    photodiode_current_a: Any,
    factors: SpectralFactors,
    collection_factor: float,
    area_m2: float,
    luminance_correction: float = 1.0,
) -> Light:
    """P, Le and L from the dark-subtracted photodiode current, vectorised over steps or
    for one float (then floats through and through: the same operations in the same
    order, so a scalar caller gets bit for bit what the vectorised one does)."""
    if not 0 < collection_factor <= 1:
        raise ValueError(f"collection factor must lie in (0, 1], got {collection_factor}")
    if not area_m2 > 0:
        raise ValueError(f"area must be > 0, got {area_m2}")
    i_pd = photodiode_current_a
    if not isinstance(i_pd, float):
        i_pd = np.asarray(i_pd, float)
    power = i_pd / (collection_factor * factors.responsivity_a_per_w)
    radiance = power / (np.pi * area_m2)
    return Light(
        power, radiance, luminance_correction * factors.luminous_efficacy_lm_per_w * radiance
    )


def figures(
    light: Light,
    device_current_a: Any,
    voltage_v: Any,
    factors: SpectralFactors,
    area_m2: float,
) -> Photometry:
    """``light`` (from ``light_of``) completed with what needs the device's current and
    voltage (N, EQE, η_A, η_P): the whole ``Photometry``, floats when the light and both
    readings are floats."""
    current, volts = device_current_a, voltage_v
    luminance = light.luminance_cd_m2
    if isinstance(luminance, float) and isinstance(current, float) and isinstance(volts, float):
        ratio: Any = _scalar_ratio  # one step: floats through and through
    else:
        current, volts = np.asarray(current, float), np.asarray(volts, float)
        ratio = _ratio
    power = light.optical_power_w
    photons = power / factors.mean_photon_energy_j
    current_eff = ratio(luminance * area_m2, current)
    return Photometry(
        optical_power_w=power,
        photon_flux_per_s=photons,
        eqe=ratio(photons * elementary_charge, current),
        luminance_cd_m2=luminance,
        radiance_w_sr_m2=light.radiance_w_sr_m2,
        current_efficiency_cd_a=current_eff,
        power_efficiency_lm_w=ratio(np.pi * current_eff, volts),
    )


def photometry(
    photodiode_current_a: np.ndarray,
    device_current_a: np.ndarray,
    voltage_v: np.ndarray,
    factors: SpectralFactors,
    collection_factor: float,
    area_m2: float,
    luminance_correction: float = 1.0,
) -> Photometry:
    """Everything in the module docstring (``light_of``, then ``figures``), vectorised over
    steps (or for one step, when the three readings are floats: then every figure is a
    float).

    ``photodiode_current_a`` must already be dark-subtracted; ``factors`` holds one entry
    per step (``SpectralFactors.take``) or a single one for all steps.
    """
    light = light_of(
        photodiode_current_a, factors, collection_factor, area_m2, luminance_correction
    )
    return figures(light, device_current_a, voltage_v, factors, area_m2)


def reference_spectrum(config: BenchConfig) -> tuple[np.ndarray, np.ndarray]:
    """The spectrum assumed when none is recorded: a Gaussian (``reference_spectrum_band``)
    on ``REFERENCE_GRID_NM``."""
    peak, fwhm = reference_spectrum_band(config)
    return REFERENCE_GRID_NM, gaussian_spectrum(REFERENCE_GRID_NM, peak, fwhm)


def reference_spectrum_band(config: BenchConfig) -> tuple[float, float]:
    """(peak, FWHM) in nm of the reference spectrum: ``calibration.reference_peak_nm``/
    ``reference_fwhm_nm``, else the configured device model's nominal peak and FWHM (what
    the sample is declared to be)."""
    cal = config.calibration
    peak, fwhm = cal.reference_peak_nm, cal.reference_fwhm_nm
    model = config.device.model
    if peak is None and model is not None and hasattr(model, "peak_nm"):
        peak = model.peak_nm
    if fwhm is None and model is not None and hasattr(model, "fwhm_nm"):
        fwhm = model.fwhm_nm
    if peak is None or fwhm is None:
        raise ConfigError(
            "calibration.reference_peak_nm/reference_fwhm_nm: needed when no EL spectra are "
            "recorded and the device config gives no emission peak"
        )
    return float(peak), float(fwhm)


def nearest_spectrum(step_current_density: np.ndarray, spectrum_current_density: np.ndarray):
    """For each step, the index of the spectrum taken at the nearest current density
    (distance in log|J|: spectra a decade apart matter equally at any drive)."""
    floor = 1e-12
    steps = np.log10(np.maximum(np.abs(np.asarray(step_current_density, float)), floor))
    spectra = np.log10(np.maximum(np.abs(np.asarray(spectrum_current_density, float)), floor))
    if spectra.size == 0:
        raise ValueError("no spectra to choose from")
    return np.argmin(np.abs(steps[:, None] - spectra[None, :]), axis=1)


class BenchPhotometry:
    """A bench config's photometric calibration, ready to apply: responsivity table,
    collection factor, device area, luminance correction, spectral-response calibration
    and the reference spectrum (built when first needed).  Raises ``ConfigError`` when the
    responsivity table (or response file) cannot be loaded."""

    def __init__(self, config: BenchConfig) -> None:
        from pathlib import Path

        from labrig.analysis.optics import collection_factor
        from labrig.config import load_responsivity

        cal = config.calibration
        base = Path(config.source_path).parent if config.source_path else None
        self.responsivity_nm, self.responsivity_a_per_w = load_responsivity(cal.photodiode, base)
        self.collection_factor = collection_factor(cal.photodiode)
        self.area_m2 = config.device.active_area_cm2 * 1e-4
        self.luminance_correction = cal.luminance_correction
        self.response: SpectralResponse | None = None
        if cal.spectral_response_file:
            from labrig.analysis.spectral import SpectralResponse

            path = Path(cal.spectral_response_file)
            if not path.is_absolute() and base is not None:
                path = base / path
            self.response = SpectralResponse.from_csv(path)
        self._config = config
        self._reference: SpectralFactors | None = None

    @property
    def reference(self) -> SpectralFactors:
        """Factors of the configured reference spectrum (``reference_spectrum``)."""
        if self._reference is None:
            wl, s = reference_spectrum(self._config)
            self._reference = self.factors(wl, s)
        return self._reference

    def factors(self, wavelength_nm: np.ndarray, shape: np.ndarray) -> SpectralFactors:
        return spectral_factors(
            wavelength_nm, shape, self.responsivity_nm, self.responsivity_a_per_w
        )

    def recorded(self, spectrum: Spectrum) -> tuple[np.ndarray, np.ndarray] | None:
        """(wavelength_nm, power shape) of a recorded spectrum, None if it is unusable."""
        if not usable_for_weighting(spectrum):
            return None
        return recorded_power_shape(spectrum, self.response)

    def luminance(self, photodiode_current_a: float, factors: SpectralFactors) -> float:
        """Luminance (cd/m²) of one dark-subtracted photodiode reading: ``apply``'s figure
        for a single sample without building arrays (a lifetime run takes thousands a
        second)."""
        return float(self.light_of(float(photodiode_current_a), factors).luminance_cd_m2)

    def light_of(self, photodiode_current_a: Any, factors: SpectralFactors) -> Light:
        """``light_of`` with this bench's calibration (the first half of ``apply``)."""
        return light_of(
            photodiode_current_a,
            factors,
            self.collection_factor,
            self.area_m2,
            self.luminance_correction,
        )

    def figures(
        self, light: Light, device_current_a: Any, voltage_v: Any, factors: SpectralFactors
    ) -> Photometry:
        """``figures`` for this bench's area (the second half of ``apply``)."""
        return figures(light, device_current_a, voltage_v, factors, self.area_m2)

    def apply(
        self,
        photodiode_current_a: np.ndarray,
        device_current_a: np.ndarray,
        voltage_v: np.ndarray,
        factors: SpectralFactors,
        *,
        corrected: bool = True,
    ) -> Photometry:
        """``photometry`` with this bench's calibration (``corrected=False``: without the
        luminance-meter correction, as ``labrig calibrate luminance`` needs it)."""
        return photometry(
            photodiode_current_a,
            device_current_a,
            voltage_v,
            factors,
            self.collection_factor,
            self.area_m2,
            self.luminance_correction if corrected else 1.0,
        )
