"""A solar cell on the simulated physics: the single-diode model with photocurrent.

    J = J0·(exp((V − J·Rs)/(n·V_T)) − 1) + (V − J·Rs)/Rsh − J_ph,   J_ph = J_L · P_in/100 mW/cm²

with J_L (``SolarModel.jsc_a_cm2``) the photocurrent density at one sun.  Sign convention
as everywhere on the physics: current positive = forward injection, so an illuminated cell
at 0 < V < Voc carries *negative* current (what the 2400 reads).  The implicit equation is
solved through the diode's junction voltage x = V − J·Rs, for which
x + Rs·g(x) = V with g increasing, so a bracketed root (scipy ``brentq``) always exists
and is unique.

``current_at``/``voltage_at`` are at the SMU terminals: with
``terminal_polarity: inverted`` (cathode on HI, usual for n-i-p cells on ITO) the
instrument sees −V and −I of the device, which is why the PbS work scans −0.7 → +0.1 V.
Every other method is on the device side.

The cell sits on the bench in the dark (``illumination_mw_cm2 = 0``) until the bench's
lamp shutter opens (``CoupledPhysics.set_illumination``).  The truth helpers (``voc``,
``jsc``, ``pmax``, ``ff``, ``pce``) take the irradiance to evaluate at (default one sun)
and are computed numerically from the same equation, never from the preset's numbers.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.constants import Boltzmann as BOLTZMANN_J_K
from scipy.constants import elementary_charge as ELEMENTARY_CHARGE_C
from scipy.optimize import brentq, minimize_scalar

from labrig.devices import SolarModel

ONE_SUN_MW_CM2 = 100.0
_MAX_EXPONENT = 600.0  # exp() argument cap: keeps brentq's trial points finite


def _increasing_root(f, guess: float) -> float:
    """Root of a strictly increasing f: expand a bracket around ``guess``, then brentq."""
    lo, hi = min(guess, 0.0) - 1.0, max(guess, 0.0) + 1.0
    while f(lo) > 0:
        lo = 2 * lo - 1.0
    while f(hi) < 0:
        hi = 2 * hi + 1.0
    return brentq(f, lo, hi, xtol=1e-15, rtol=1e-13, maxiter=500)


class SolarCell:
    """Single-diode solar cell (implements ``simulators.device.ElectricalDevice``)."""

    def __init__(self, model: SolarModel, area_cm2: float) -> None:
        if not area_cm2 > 0:
            raise ValueError(f"area_cm2 must be > 0, got {area_cm2}")
        self.model = model
        self.area_cm2 = float(area_cm2)
        self.illumination_mw_cm2 = 0.0
        self._terminal_sign = -1.0 if model.terminal_polarity == "inverted" else 1.0
        self._nvt = model.ideality * BOLTZMANN_J_K * model.temperature_k / ELEMENTARY_CHARGE_C

    def set_illumination(self, mw_cm2: float) -> None:
        """The lamp shutter (``CoupledPhysics.set_illumination`` calls this); 0 = dark."""
        if not mw_cm2 >= 0:
            raise ValueError(f"illumination must be >= 0 mW/cm², got {mw_cm2}")
        self.illumination_mw_cm2 = float(mw_cm2)

    # ------------------------------------------------------------------ the equation
    def photocurrent_a_cm2(self, mw_cm2: float | None = None) -> float:
        """J_ph at irradiance ``mw_cm2`` (default: the present illumination)."""
        level = self.illumination_mw_cm2 if mw_cm2 is None else mw_cm2
        return self.model.jsc_a_cm2 * max(level, 0.0) / ONE_SUN_MW_CM2

    def _diode(self, x: float, jph: float) -> float:
        """Current density through the diode + shunt at junction voltage x, minus J_ph."""
        m = self.model
        arg = min(x / self._nvt, _MAX_EXPONENT)
        return m.j0_a_cm2 * math.expm1(arg) + x / m.rsh_ohm_cm2 - jph

    def _junction_voltage(self, volts: float, jph: float) -> float:
        """Junction voltage x at terminal voltage ``volts``: x + Rs·g(x) = V."""
        rs = self.model.rs_ohm_cm2
        return _increasing_root(lambda x: x + rs * self._diode(x, jph) - volts, volts)

    def current_density_at(self, volts: float, mw_cm2: float | None = None) -> float:
        """J (A/cm², forward positive) at terminal voltage ``volts``."""
        jph = self.photocurrent_a_cm2(mw_cm2)
        return self._diode(self._junction_voltage(volts, jph), jph)

    def voltage_at_density(self, j_a_cm2: float, mw_cm2: float | None = None) -> float:
        """Terminal voltage that carries ``j_a_cm2``: V = x + J·Rs with g(x) = J."""
        jph = self.photocurrent_a_cm2(mw_cm2)
        x = _increasing_root(lambda x: self._diode(x, jph + j_a_cm2), 0.0)
        return x + j_a_cm2 * self.model.rs_ohm_cm2

    # ------------------------------------------------------------ ElectricalDevice
    def current_at(self, volts: float) -> float:
        """Current at the SMU terminals (the wiring's polarity applied)."""
        s = self._terminal_sign
        return s * self.current_density_at(s * volts) * self.area_cm2

    def voltage_at(self, amps: float) -> float:
        s = self._terminal_sign
        return s * self.voltage_at_density(s * amps / self.area_cm2)

    def advance(self, dt_s: float, volts: float, amps: float) -> None:
        """A static cell: no heating or light soaking is modelled."""

    def optical_power_w(self, amps: float) -> float:
        return 0.0

    def spectrum_shape(self, wavelength_nm: np.ndarray, amps: float) -> np.ndarray:
        return np.zeros_like(np.asarray(wavelength_nm, dtype=float))

    # ------------------------------------------------------------------ truth
    def jsc(self, mw_cm2: float = ONE_SUN_MW_CM2) -> float:
        """Short-circuit current density (A/cm², positive number) under ``mw_cm2``."""
        return -self.current_density_at(0.0, mw_cm2)

    def voc(self, mw_cm2: float = ONE_SUN_MW_CM2) -> float:
        """Open-circuit voltage (V) under ``mw_cm2``; 0 in the dark."""
        return self.voltage_at_density(0.0, mw_cm2)

    def max_power_point(self, mw_cm2: float = ONE_SUN_MW_CM2) -> tuple[float, float, float]:
        """(Vmp in V, Jmp in A/cm² as a positive number, Pmax in W/cm²)."""
        voc = self.voc(mw_cm2)
        if voc <= 0:
            return 0.0, 0.0, 0.0
        res = minimize_scalar(
            lambda v: v * self.current_density_at(v, mw_cm2),
            bounds=(0.0, voc),
            method="bounded",
            options={"xatol": 1e-9},
        )
        vmp = float(res.x)
        jmp = -self.current_density_at(vmp, mw_cm2)
        return vmp, jmp, vmp * jmp

    def pmax(self, mw_cm2: float = ONE_SUN_MW_CM2) -> float:
        """Maximum output power density (W/cm²)."""
        return self.max_power_point(mw_cm2)[2]

    def ff(self, mw_cm2: float = ONE_SUN_MW_CM2) -> float:
        """Fill factor (fraction)."""
        return self.pmax(mw_cm2) / (self.voc(mw_cm2) * self.jsc(mw_cm2))

    def pce(self, mw_cm2: float = ONE_SUN_MW_CM2) -> float:
        """Power conversion efficiency (fraction) = Pmax / P_in."""
        return self.pmax(mw_cm2) / (mw_cm2 * 1e-3)

    def slope_resistance_ohm_cm2(self, volts: float, mw_cm2: float = ONE_SUN_MW_CM2) -> float:
        """dV/dJ at ``volts`` (Ω·cm²), exact from the model: Rs + 1/g'(x)."""
        m = self.model
        jph = self.photocurrent_a_cm2(mw_cm2)
        x = self._junction_voltage(volts, jph)
        g_prime = m.j0_a_cm2 * math.exp(min(x / self._nvt, _MAX_EXPONENT)) / self._nvt
        g_prime += 1.0 / m.rsh_ohm_cm2
        return m.rs_ohm_cm2 + 1.0 / g_prime
