"""A hole-only or electron-only film on the simulated physics: space-charge-limited current.

The model is the Lampert triangle that the SCLC literature reads its figures from
(Lampert & Mark, *Current Injection in Solids*, 1970), with its corners rounded:

* Ohmic:        J_Ω(V)   = q·n0·μ·V/d
* trap filling: J_TFL(V) = J_Ω(V_TFL)·(V/V_TFL)^m,   V_TFL = q·n_t·d²/(2·ε0·εr)
* Child:        J_C(V)   = 9/8·ε0·εr·μ·(V − V_bi)²/d³          (Mott–Gurney, trap-free)

    J = smooth_max(J_Ω, smooth_min(J_TFL, J_C)),  smooth_max(a, b) = (a^k + b^k)^(1/k)

with k = ``CORNER_SHARPNESS`` (the corners are rounded over ~1/k of an e-fold of current).
So below V_TFL the current is Ohmic, at V_TFL it rises with log–log slope m (the steep
side of the triangle, whose foot on the Ohmic line is exactly V_TFL) until it meets the
Child line, and above that it follows Mott–Gurney.  The literature's construction —
V_TFL where the steep TFL line meets the extrapolated Ohmic line, μ from a Mott–Gurney fit
where the slope is 2 — therefore recovers n_t and μ from this device when it is done
right, and misses them when it is not (e.g. fitting μ in the steep region).

A series resistance splits the terminal voltage: V = V_int + J·Rs, solved with brentq.
The device is symmetric: J(−V) = −J(V).  It emits no light and does not heat.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.constants import elementary_charge as ELEMENTARY_CHARGE_C
from scipy.optimize import brentq

from labrig.analysis.sclc import VACUUM_PERMITTIVITY_F_M
from labrig.devices import SingleCarrierModel

CORNER_SHARPNESS = 3.0


class SingleCarrierDevice:
    """Single-carrier SCLC device (implements ``simulators.device.ElectricalDevice``)."""

    def __init__(
        self,
        model: SingleCarrierModel,
        area_cm2: float,
        thickness_nm: float,
        relative_permittivity: float,
        carrier: str = "hole",
    ) -> None:
        for name, value in (
            ("area_cm2", area_cm2),
            ("thickness_nm", thickness_nm),
            ("relative_permittivity", relative_permittivity),
        ):
            if value is None or not value > 0:
                raise ValueError(f"{name} must be > 0 for a single-carrier device, got {value}")
        if carrier not in ("hole", "electron"):
            raise ValueError(f"carrier must be 'hole' or 'electron', got {carrier!r}")
        self.model = model
        self.area_cm2 = float(area_cm2)
        self.thickness_nm = float(thickness_nm)
        self.relative_permittivity = float(relative_permittivity)
        self.carrier = carrier

    # ------------------------------------------------------------------ truth
    @property
    def permittivity_f_m(self) -> float:
        return VACUUM_PERMITTIVITY_F_M * self.relative_permittivity

    @property
    def _d_m(self) -> float:
        return self.thickness_nm * 1e-9

    @property
    def _mu_m2(self) -> float:
        return self.model.mobility_cm2_vs * 1e-4

    @property
    def v_tfl(self) -> float:
        """Trap-filled-limit voltage (V) = q·n_t·d²/(2ε0εr)."""
        n_t = self.model.trap_density_cm3 * 1e6
        return ELEMENTARY_CHARGE_C * n_t * self._d_m**2 / (2 * self.permittivity_f_m)

    def ohmic_density(self, volts: float) -> float:
        """J_Ω in A/cm²."""
        n0 = self.model.free_carrier_density_cm3 * 1e6
        return ELEMENTARY_CHARGE_C * n0 * self._mu_m2 * volts / self._d_m * 1e-4

    def child_density(self, volts: float) -> float:
        """Mott–Gurney J in A/cm² (0 below the built-in voltage)."""
        v = max(volts - self.model.built_in_voltage_v, 0.0)
        return 9 / 8 * self.permittivity_f_m * self._mu_m2 * v**2 / self._d_m**3 * 1e-4

    def intrinsic_density(self, volts: float) -> float:
        """J (A/cm²) at internal voltage ``volts`` ≥ 0, before the series resistance."""
        if volts <= 0:
            return 0.0
        k = CORNER_SHARPNESS
        j_ohm = self.ohmic_density(volts)
        j_tfl = self.ohmic_density(self.v_tfl) * (volts / self.v_tfl) ** self.model.tfl_slope
        j_child = self.child_density(volts)
        if j_child <= 0:
            return j_ohm
        # in logs, so that 30 decades between the branches cannot overflow
        ln_upper = -np.logaddexp(-k * math.log(j_tfl), -k * math.log(j_child)) / k
        return float(np.exp(np.logaddexp(k * math.log(j_ohm), k * ln_upper) / k))

    # ------------------------------------------------------------ the terminals
    def current_density_at(self, volts: float) -> float:
        """J (A/cm², sign of V) at terminal voltage ``volts``."""
        v = abs(volts)
        if v == 0:
            return 0.0
        rs = self.model.rs_ohm_cm2
        if rs == 0:
            j = self.intrinsic_density(v)
        else:
            v_int = brentq(
                lambda x: x + self.intrinsic_density(x) * rs - v, 0.0, v, xtol=1e-15, rtol=1e-13
            )
            j = (v - v_int) / rs
        return math.copysign(j, volts)

    def voltage_at_density(self, j_a_cm2: float) -> float:
        """Terminal voltage carrying ``j_a_cm2`` (inverse of ``current_density_at``)."""
        j = abs(j_a_cm2)
        if j == 0:
            return 0.0
        lo, hi = 1e-3, 1.0
        while self.intrinsic_density(hi) < j:
            hi *= 2.0
        while self.intrinsic_density(lo) > j:
            lo *= 1e-3
        v_int = brentq(
            lambda x: math.log(self.intrinsic_density(x) / j), lo, hi, xtol=1e-15, rtol=1e-13
        )
        return math.copysign(v_int + j * self.model.rs_ohm_cm2, j_a_cm2)

    # ------------------------------------------------------------ ElectricalDevice
    def current_at(self, volts: float) -> float:
        return self.current_density_at(volts) * self.area_cm2

    def voltage_at(self, amps: float) -> float:
        return self.voltage_at_density(amps / self.area_cm2)

    def advance(self, dt_s: float, volts: float, amps: float) -> None:
        """A static film: no heating, no trap filling memory."""

    def optical_power_w(self, amps: float) -> float:
        return 0.0

    def spectrum_shape(self, wavelength_nm: np.ndarray, amps: float) -> np.ndarray:
        return np.zeros_like(np.asarray(wavelength_nm, dtype=float))
