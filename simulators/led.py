"""A thin-film LED (perovskite QD LED) as the simulated bench's device under test.

Equations (J in A/cm², T the device temperature, V_T = k·T/q):

* J–V: a diode in series with trap-limited (space-charge) transport and a series
  resistance, ``V(J) = n·V_T·ln(1 + J/J0) + (J/K)^(1/m) + J·Rs``.  Turn-on sits near the
  photon energy through J0 and n; the (J/K)^(1/m) term keeps the current rising steeply
  but not exponentially above it.  Reverse current saturates at -J0.  J0, K and Rs are
  held temperature-independent, so only V_T carries the self-heating into the J–V (a hot
  device needs slightly more voltage for the same J).  ``current_at``
  inverts V(J) by a safeguarded Newton iteration in ln J from an upper bound (V is convex
  and increasing in ln J, so the iteration cannot overshoot): ~10 µs per call.
* Shunt: a leakage resistance ``Rsh`` (Ω·cm², ``.inf``: none) across the terminals,
  ``J = J_d(V) + V/Rsh`` with J_d the stack above; only J_d emits, so the EQE of the
  terminal current is ``EQE_int(J_d)·J_d/J`` (a leaky pixel turns on later and peaks
  lower).
* EQE: ``EQE_int(J) = EQE_max·x/(1+x)/(1+(J/J_roll)^b)``, ``x = (J/J_on)^a`` (turn-on from
  trap filling, roll-off from Auger/field quenching) at ambient temperature, undegraded.
  Now: ``EQE(J) = EQE_int(J)·exp(-α·(T - T_amb))·(c1 + c2)``.
* EL spectrum: the spectral *power* is a Gaussian in wavelength with ``peak_nm`` and
  ``fwhm_nm``; the peak shifts by ``peak_shift_nm_per_decade`` per decade of J above
  ``spectrum_reference_current_density_a_cm2``.
* Optical power into the forward hemisphere ``P = EQE·(I/e)·⟨hν⟩`` with
  ``1/⟨hν⟩ = ∫ s(λ)/(hc/λ) dλ``, so the photon flux is exactly ``EQE·I/e``.
* Lambertian luminance ``L = 683·∫V(λ)·P·s(λ)dλ / (π·A)`` (cd/m², A in m²).
* Joule heating through two thermal nodes (a Foster pair, R in K·cm²/W): the substrate,
  ``dΔT_s/dt = (R_th·V·J - ΔT_s)/τ_th`` with τ_th of seconds, and the emitting film
  (junction), ``dΔT_j/dt = (R_j·V·J - ΔT_j)/τ_j`` with τ_j of milliseconds;
  ``T = T_amb + ΔT_s + ΔT_j``.  DC settles at ``T_amb + (R_th + R_j)·V·J``; a pulse of
  width w heats the film by about ``R_j·V·J·(1 - exp(-w/τ_j))`` and the substrate hardly
  at all, so EL at high J falls with pulse width and sits lowest under DC.
* Degradation: two populations ``c1, c2`` (start at f1 and 1-f1),
  ``dc_i/dt = -c_i/τ_i(J)``, ``τ_i(J) = τ_i,ref·(J_ref/J)^n``; relative efficiency c1+c2.
  At constant J, ``L/L0 = f1·exp(-t/τ1) + (1-f1)·exp(-t/τ2)`` and every T_x scales as
  J^-n.  With a stretch exponent β ≠ 1 each population follows its own dose
  ``D_i = ∫dt/τ_i(J)`` as ``c_i = f_i·exp(-D_i^β)`` (at constant J the stretched
  exponential ``exp(-(t/τ_i)^β)``; the dose makes it well defined when J changes).
  Heating does not accelerate degradation in this model.

The optics primitives (V(λ), photon energy, line shape, quadrature) come from
``labrig.analysis.optics`` so that the simulator's truth and the photometry analysis use
the same tables.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.constants import Boltzmann, elementary_charge
from scipy.optimize import brentq

from labrig.analysis import optics
from labrig.devices import LEDModel

#: wavelength grid (nm) on which photometric integrals of the line shape are taken
SPECTRAL_GRID_NM = np.arange(200.0, 1300.0 + 0.1, 0.1)
_HOURS = 3600.0


@lru_cache(maxsize=256)
def _line_integrals(peak_nm: float, fwhm_nm: float) -> tuple[float, float]:
    """(∫V(λ)s(λ)dλ, ∫s(λ)/E(λ)dλ in 1/J) for the unit-area Gaussian line shape."""
    s = optics.gaussian_spectrum(SPECTRAL_GRID_NM, peak_nm, fwhm_nm)
    v = float(optics.spectral_integral(SPECTRAL_GRID_NM, optics.photopic_v(SPECTRAL_GRID_NM) * s))
    per_j = float(
        optics.spectral_integral(SPECTRAL_GRID_NM, s / optics.photon_energy_j(SPECTRAL_GRID_NM))
    )
    return v, per_j


@lru_cache(maxsize=64)
def _cie_xy(peak_nm: float, fwhm_nm: float) -> tuple[float, float]:
    """CIE 1931 (x, y) of the Gaussian line, straight from colour-science (truth only)."""
    import colour

    wl = np.arange(360.0, 781.0, 1.0)  # the CIE 1931 table's range in colour-science
    sd = colour.SpectralDistribution(optics.gaussian_spectrum(wl, peak_nm, fwhm_nm), wl)
    xy = colour.XYZ_to_xy(colour.sd_to_XYZ(sd, method="Integration"))
    return float(xy[0]), float(xy[1])


class LEDDevice:
    """One LED pixel: static J–V–EQE–spectrum model plus temperature and degradation state.

    Implements ``simulators.device.ElectricalDevice``.  State changes only through
    ``advance`` (the bench calls it along the shared clock) and ``reset``.
    """

    def __init__(self, model: LEDModel, area_cm2: float) -> None:
        if not area_cm2 > 0:
            raise ValueError(f"area_cm2 must be > 0, got {area_cm2}")
        self.model = model
        self.area_cm2 = float(area_cm2)
        self.thermal_time_constant_s = model.thermal_time_constant_s
        #: every thermal time constant that matters (the bench sub-steps on the fastest)
        self.thermal_time_constants_s: tuple[float, ...] = (model.thermal_time_constant_s,)
        if model.junction_thermal_resistance_k_cm2_w > 0:
            self.thermal_time_constants_s += (model.junction_thermal_time_constant_s,)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """A fresh device at ambient temperature."""
        self.substrate_rise_k = 0.0
        self.junction_rise_k = 0.0
        f1 = self.model.degradation.fraction1
        self.c1 = f1
        self.c2 = 1.0 - f1
        self.dose1 = self.dose2 = 0.0  # ∫dt/τ_i(J): what a stretched decay follows

    @property
    def temperature_k(self) -> float:
        """Temperature of the emitting film: ambient + substrate rise + junction rise."""
        return self.model.ambient_temperature_k + self.substrate_rise_k + self.junction_rise_k

    @temperature_k.setter
    def temperature_k(self, value: float) -> None:
        """Put the whole device at ``value`` (film and substrate in equilibrium)."""
        self.substrate_rise_k = float(value) - self.model.ambient_temperature_k
        self.junction_rise_k = 0.0

    @property
    def relative_efficiency(self) -> float:
        """c1 + c2: 1.0 fresh, falling as the device degrades."""
        return self.c1 + self.c2

    def thermal_factor(self) -> float:
        """EQE multiplier from the present self-heating, exp(-α·ΔT)."""
        dt = self.temperature_k - self.model.ambient_temperature_k
        return math.exp(-self.model.eqe_temperature_coefficient_per_k * dt)

    # ------------------------------------------------------------------ J–V
    def _nvt(self) -> float:
        return self.model.ideality * Boltzmann * self.temperature_k / elementary_charge

    def _stack_voltage(self, j_a_cm2: float) -> float:
        """V(J_d) of the diode stack alone; -inf when J ≤ -J0 (beyond reverse saturation)."""
        m = self.model
        if j_a_cm2 <= -m.j0_a_cm2:
            return -math.inf
        transport = math.copysign((abs(j_a_cm2) / m.k_a_cm2_vm) ** (1.0 / m.m), j_a_cm2)
        return self._nvt() * math.log1p(j_a_cm2 / m.j0_a_cm2) + transport + j_a_cm2 * m.rs_ohm_cm2

    def _stack_current_density(self, volts: float) -> float:
        """J_d(V) of the diode stack alone (inverse of ``_stack_voltage``)."""
        m = self.model
        nvt = self._nvt()
        if volts <= 0.0:
            # Reverse/zero bias: the diode term dominates by orders of magnitude.
            return m.j0_a_cm2 * math.expm1(volts / nvt)
        inv_m = 1.0 / m.m
        # Each term alone bounds J from above; Newton on a convex increasing f(ln J) from
        # the right converges monotonically.
        bounds = [m.j0_a_cm2 * math.expm1(min(volts / nvt, 700.0)), m.k_a_cm2_vm * volts**m.m]
        if m.rs_ohm_cm2 > 0:
            bounds.append(volts / m.rs_ohm_cm2)
        u = math.log(min(bounds))
        for _ in range(200):
            j = math.exp(u)
            transport = (j / m.k_a_cm2_vm) ** inv_m
            f = nvt * math.log1p(j / m.j0_a_cm2) + transport + j * m.rs_ohm_cm2 - volts
            df = nvt * j / (m.j0_a_cm2 + j) + inv_m * transport + j * m.rs_ohm_cm2
            step = f / df
            u -= step
            if abs(step) < 1e-12:
                break
        return math.exp(u)

    def current_density_at(self, volts: float) -> float:
        """J(V) at the terminals at the present temperature: the stack and the shunt."""
        return self._stack_current_density(volts) + volts / self.model.rsh_ohm_cm2

    def voltage_at_density(self, j_a_cm2: float) -> float:
        """V(J) at the terminals at the present temperature (inverse of
        ``current_density_at``); without a shunt -inf when J ≤ -J0."""
        rsh = self.model.rsh_ohm_cm2
        if not math.isfinite(rsh) or j_a_cm2 == 0:
            return self._stack_voltage(j_a_cm2)
        # J(V) increases monotonically; the root lies between 0 and the voltage the
        # stack or the shunt alone would need for all of J
        if j_a_cm2 > 0:
            low, high = 0.0, min(self._stack_voltage(j_a_cm2), j_a_cm2 * rsh)
        else:
            low, high = j_a_cm2 * rsh, 0.0
        if high <= low:
            return high
        return brentq(lambda v: self.current_density_at(v) - j_a_cm2, low, high, xtol=1e-12)

    def diode_current_density(self, j_a_cm2: float) -> float:
        """The part of the terminal current density that flows through the diode (and
        can emit); the rest leaks through the shunt."""
        rsh = self.model.rsh_ohm_cm2
        if not math.isfinite(rsh) or j_a_cm2 <= 0:
            return j_a_cm2
        return max(j_a_cm2 - self.voltage_at_density(j_a_cm2) / rsh, 0.0)

    def current_at(self, volts: float) -> float:
        return self.current_density_at(volts) * self.area_cm2

    def voltage_at(self, amps: float) -> float:
        return self.voltage_at_density(amps / self.area_cm2)

    # ------------------------------------------------------------------ efficiency
    def intrinsic_eqe(self, j_a_cm2: float) -> float:
        """EQE at ambient temperature, undegraded, of the terminal current ``j_a_cm2``:
        the published EQE–J curve of the diode's share (all of it without a shunt)."""
        if j_a_cm2 <= 0:
            return 0.0
        m = self.model
        j = self.diode_current_density(j_a_cm2)
        if j <= 0:
            return 0.0
        x = (j / m.j_on_a_cm2) ** m.a
        return m.eqe_max * x / (1.0 + x) / (1.0 + (j / m.j_roll_a_cm2) ** m.b) * j / j_a_cm2

    def eqe(self, j_a_cm2: float) -> float:
        """EQE now: intrinsic × thermal quenching × remaining efficiency."""
        return self.intrinsic_eqe(j_a_cm2) * self.thermal_factor() * self.relative_efficiency

    # ------------------------------------------------------------------ spectrum
    def peak_nm_at(self, amps: float) -> float:
        """EL peak wavelength at this drive current."""
        m = self.model
        j = amps / self.area_cm2
        if m.peak_shift_nm_per_decade == 0.0 or j <= 0:
            return m.peak_nm
        return m.peak_nm + m.peak_shift_nm_per_decade * math.log10(
            j / m.spectrum_reference_current_density_a_cm2
        )

    def spectrum_shape(self, wavelength_nm: np.ndarray, amps: float) -> np.ndarray:
        """Unit-area spectral power shape on ``wavelength_nm`` (1/nm)."""
        return optics.gaussian_spectrum(wavelength_nm, self.peak_nm_at(amps), self.model.fwhm_nm)

    def photon_flux_per_s(self, amps: float) -> float:
        """Forward-hemisphere photons per second: EQE·I/e."""
        j = amps / self.area_cm2
        return self.eqe(j) * max(amps, 0.0) / elementary_charge

    def optical_power_w(self, amps: float) -> float:
        """Forward radiant flux P = EQE·(I/e)·⟨hν⟩."""
        if amps <= 0:
            return 0.0
        _, per_j = _line_integrals(self.peak_nm_at(amps), self.model.fwhm_nm)
        return self.photon_flux_per_s(amps) / per_j

    def _luminance(self, amps: float, power_w: float) -> float:
        if power_w <= 0:
            return 0.0
        v_int, _ = _line_integrals(self.peak_nm_at(amps), self.model.fwhm_nm)
        return optics.KM_LM_PER_W * v_int * power_w / (math.pi * self.area_cm2 * 1e-4)

    def luminance_cd_m2(self, amps: float) -> float:
        """Lambertian luminance now (cd/m²)."""
        return self._luminance(amps, self.optical_power_w(amps))

    def intrinsic_luminance_cd_m2(self, j_a_cm2: float) -> float:
        """Luminance with the intrinsic EQE (ambient temperature, undegraded)."""
        amps = j_a_cm2 * self.area_cm2
        if amps <= 0:
            return 0.0
        _, per_j = _line_integrals(self.peak_nm_at(amps), self.model.fwhm_nm)
        power = self.intrinsic_eqe(j_a_cm2) * amps / elementary_charge / per_j
        return self._luminance(amps, power)

    def current_density_for_luminance(self, l_cd_m2: float) -> float:
        """Lowest J at which the intrinsic luminance reaches ``l_cd_m2`` (A/cm²); raises
        ValueError if the device cannot reach it.  (Lifetime tests choose J from L0.)"""
        js = np.logspace(-9, 1, 201)
        ls = np.array([self.intrinsic_luminance_cd_m2(j) for j in js])
        above = np.nonzero(ls >= l_cd_m2)[0]
        if not l_cd_m2 > 0 or len(above) == 0:
            raise ValueError(
                f"luminance {l_cd_m2} cd/m² is out of reach (max ~{ls.max():.4g} cd/m²)"
            )
        k = int(above[0])
        if k == 0:
            return float(js[0])
        log_j = brentq(
            lambda lj: self.intrinsic_luminance_cd_m2(10**lj) - l_cd_m2,
            math.log10(js[k - 1]),
            math.log10(js[k]),
            xtol=1e-12,
        )
        return float(10**log_j)

    # ------------------------------------------------------------------ time evolution
    def degradation_time_constants_s(self, j_a_cm2: float) -> tuple[float, float]:
        """(τ1, τ2) in s at current density J (inf when J ≤ 0: no current, no ageing)."""
        d = self.model.degradation
        if j_a_cm2 <= 0:
            return math.inf, math.inf
        scale = (d.reference_current_density_a_cm2 / j_a_cm2) ** d.acceleration_exponent
        return d.tau1_h * _HOURS * scale, d.tau2_h * _HOURS * scale

    def advance(self, dt_s: float, volts: float, amps: float) -> None:
        """Let ``dt_s`` pass at a constant operating point: exact exponential relaxation of
        each thermal node towards R_i·V·J and of both degradation populations.
        (The bench sub-steps when the operating point depends on temperature.)"""
        if dt_s <= 0:
            return
        m = self.model
        j = amps / self.area_cm2
        power_density = max(volts * j, 0.0)
        target = m.thermal_resistance_k_cm2_w * power_density
        self.substrate_rise_k = target + (self.substrate_rise_k - target) * math.exp(
            -dt_s / m.thermal_time_constant_s
        )
        target = m.junction_thermal_resistance_k_cm2_w * power_density
        self.junction_rise_k = target + (self.junction_rise_k - target) * math.exp(
            -dt_s / m.junction_thermal_time_constant_s
        )
        self.age(dt_s, amps)

    def age(self, dt_s: float, amps: float) -> None:
        """Degrade both populations by ``dt_s`` at ``amps`` (temperature untouched: also a
        stress replayed from a run's record, on a device that has cooled since)."""
        tau1, tau2 = self.degradation_time_constants_s(amps / self.area_cm2)
        if dt_s <= 0 or not math.isfinite(tau1):
            return
        d = self.model.degradation
        if d.stretch_exponent == 1.0:
            self.c1 *= math.exp(-dt_s / tau1)
            self.c2 *= math.exp(-dt_s / tau2)
            return
        self.dose1 += dt_s / tau1
        self.dose2 += dt_s / tau2
        self.c1 = d.fraction1 * math.exp(-(self.dose1**d.stretch_exponent))
        self.c2 = (1.0 - d.fraction1) * math.exp(-(self.dose2**d.stretch_exponent))

    def steady_state_temperature_k(self, volts: float, amps: float) -> float:
        """T_amb + (R_th + R_j)·V·J: where DC operation at this point settles."""
        m = self.model
        r_total = m.thermal_resistance_k_cm2_w + m.junction_thermal_resistance_k_cm2_w
        return m.ambient_temperature_k + r_total * max(volts * amps / self.area_cm2, 0.0)

    def pulse_temperature_k(self, volts: float, amps: float, width_s: float) -> float:
        """Truth: temperature at the end of one ``width_s`` pulse at (V, I) from ambient
        (a fully cooled device, i.e. a low duty cycle)."""
        m = self.model
        p = max(volts * amps / self.area_cm2, 0.0)
        return (
            m.ambient_temperature_k
            + m.thermal_resistance_k_cm2_w * p * -math.expm1(-width_s / m.thermal_time_constant_s)
            + m.junction_thermal_resistance_k_cm2_w
            * p
            * -math.expm1(-width_s / m.junction_thermal_time_constant_s)
        )

    def relative_efficiency_after(self, t_s: float, j_a_cm2: float) -> float:
        """Truth: L/L0 of a fresh device after ``t_s`` at constant J (thermal factor aside)."""
        d = self.model.degradation
        tau1, tau2 = self.degradation_time_constants_s(j_a_cm2)
        beta = d.stretch_exponent
        return d.fraction1 * math.exp(-((t_s / tau1) ** beta)) + (1.0 - d.fraction1) * math.exp(
            -((t_s / tau2) ** beta)
        )

    def t_fraction_s(self, fraction: float, j_a_cm2: float, age_s: float = 0.0) -> float:
        """Truth: time (s) at constant J until L/L0 falls to ``fraction`` (0.5 -> T50,
        0.95 -> T95), for a device already driven ``age_s`` at that J when L0 is read (a
        run's settling before t = 0).  L0 is the luminance at t = 0 at the same temperature."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
        if not j_a_cm2 > 0:
            raise ValueError(f"j_a_cm2 must be > 0, got {j_a_cm2}")
        if age_s < 0:
            raise ValueError(f"age_s must be >= 0, got {age_s}")
        level = fraction * self.relative_efficiency_after(age_s, j_a_cm2)

        def above(t: float) -> float:
            return self.relative_efficiency_after(age_s + t, j_a_cm2) - level

        # At t = τ_max·(ln(1/fraction) + 1)^(1/β) even the slow component of a fresh device
        # is below fraction/e; a stretched decay slows with age, so widen until bracketed.
        hi = max(self.degradation_time_constants_s(j_a_cm2)) * (math.log(1.0 / fraction) + 1.0) ** (
            1.0 / self.model.degradation.stretch_exponent
        )
        while above(hi) > 0:
            hi *= 2
        return float(
            brentq(
                above,
                0.0,
                hi,
                xtol=1e-9 * hi,
                rtol=1e-12,
            )
        )

    def luminance_scaling_exponent(self, l0_cd_m2: list[float] | np.ndarray) -> float:
        """Truth for L0^n·T50 = const: n from a least-squares line through ln T50 vs ln L0
        at these initial luminances.  It differs from the J exponent because L is not
        proportional to J (EQE varies with J)."""
        l0 = np.asarray(l0_cd_m2, float)
        if l0.size < 2:
            raise ValueError("need at least two initial luminances")
        t50 = [self.t_fraction_s(0.5, self.current_density_for_luminance(x)) for x in l0]
        slope = np.polyfit(np.log(l0), np.log(t50), 1)[0]
        return float(-slope)

    # ------------------------------------------------------------------ truth
    def cie_xy(self, amps: float) -> tuple[float, float]:
        """CIE 1931 chromaticity of the EL at this drive current."""
        return _cie_xy(self.peak_nm_at(amps), self.model.fwhm_nm)

    def truth(self, volts: float, amps: float) -> dict[str, float]:
        """Ground truth at this operating point (for tests and the bench's ``truth``)."""
        j = amps / self.area_cm2
        power = self.optical_power_w(amps)
        cie_x, cie_y = self.cie_xy(amps)
        return {
            "current_density_a_cm2": j,
            "eqe": self.eqe(j),
            "intrinsic_eqe": self.intrinsic_eqe(j),
            "luminance_cd_m2": self._luminance(amps, power),
            "optical_power_w": power,
            "photon_flux_per_s": self.photon_flux_per_s(amps),
            "peak_nm": self.peak_nm_at(amps),
            "fwhm_nm": self.model.fwhm_nm,
            "intrinsic_luminance_cd_m2": self.intrinsic_luminance_cd_m2(j),
            "temperature_k": self.temperature_k,
            "junction_rise_k": self.junction_rise_k,
            "relative_efficiency": self.relative_efficiency,
            "thermal_factor": self.thermal_factor(),
            "cie_x": cie_x,
            "cie_y": cie_y,
        }
