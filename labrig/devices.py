"""What a device under test is: its geometry and, for the simulated bench, the model
parameters that are its ground truth.

Presets for published devices live in ``configs/devices/*.yaml``.  The model classes are
validated like the rest of the config (unknown keys are errors).  The equations these
parameters feed are in the simulator modules' docstrings (``labrig.simulators.led``,
``labrig.simulators.solar_cell``, ``labrig.simulators.single_carrier``).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator

from labrig.storable import check_storable


class StrictModel(BaseModel):
    """Config models reject unknown keys: a typo must never pass silently.  Numbers must
    be finite (NaN would pass every range check); a field that means "unbounded" opts in
    with ``Field(allow_inf_nan=True)`` and a bound that refuses NaN.  Values are taken
    strictly as their type: ``true`` or ``"12"`` is not a number (pydantic's lax mode
    would read them as 1 and 12), ``"yes"`` not a boolean."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        """Config text goes into the run file: it must be text HDF5 can hold."""
        if isinstance(value, str):
            check_storable(value)
        return value


class DegradationModel(StrictModel):
    """Two-component (optionally stretched) exponential loss of efficiency under drive.

    L(t)/L(0) = f1·exp(-(t/τ1)^β) + (1-f1)·exp(-(t/τ2)^β), with τi = τi_ref·(J_ref/J)^n.
    β = 1 (the default) is the plain two-component decay; ``fraction1`` 0 makes it a single
    (β = 1) or stretched (β < 1: dispersive, a spread of trap depths) exponential.
    """

    tau1_h: PositiveFloat = 2.0
    tau2_h: PositiveFloat = 30.0
    fraction1: Annotated[float, Field(ge=0, le=1)] = 0.3
    reference_current_density_a_cm2: PositiveFloat = 0.0125
    acceleration_exponent: PositiveFloat = 1.7
    stretch_exponent: Annotated[float, Field(gt=0, le=3)] = 1.0


class LEDModel(StrictModel):
    """Thin-film LED: V(J) = n·V_T·ln(1+J/J0) + (J/K)^(1/m) + J·Rs, a shunt Rsh across
    the terminals (leakage that emits nothing; ``.inf``: none), EQE(J) with turn-on and
    roll-off, Gaussian EL spectrum, Joule heating and degradation.

    Heating: two thermal nodes in series with the ambient (a Foster pair), each
    dΔT_i/dt = (R_i·V·J - ΔT_i)/τ_i: the substrate (``thermal_*``, seconds) and the
    emitting film/junction (``junction_thermal_*``, milliseconds; 0 K·cm²/W: none);
    T = T_amb + ΔT_substrate + ΔT_junction and EQE falls as exp(-α·(T - T_amb)).  The fast
    node is what makes millisecond pulses cooler than DC."""

    kind: Literal["led"] = "led"
    j0_a_cm2: PositiveFloat = 1e-23
    ideality: PositiveFloat = 2.0
    k_a_cm2_vm: PositiveFloat = 2.4e-3
    m: PositiveFloat = 2.6
    rs_ohm_cm2: Annotated[float, Field(ge=0)] = 5.0
    #: shunt (leakage) resistance-area across the terminals; .inf: no shunt
    rsh_ohm_cm2: Annotated[float, Field(gt=0, allow_inf_nan=True)] = math.inf
    eqe_max: Annotated[float, Field(gt=0, le=1)] = 0.268
    j_on_a_cm2: PositiveFloat = 3e-5
    a: PositiveFloat = 1.2
    j_roll_a_cm2: PositiveFloat = 2.1e-2
    b: PositiveFloat = 1.4
    peak_nm: Annotated[float, Field(ge=300, le=1100)] = 628.0
    fwhm_nm: Annotated[float, Field(gt=0, le=300)] = 33.0
    peak_shift_nm_per_decade: Annotated[float, Field(ge=-50, le=50)] = 0.0
    #: J at which the EL peak sits exactly at ``peak_nm`` (the shift is per decade from here)
    spectrum_reference_current_density_a_cm2: PositiveFloat = 1e-3
    ambient_temperature_k: Annotated[float, Field(ge=150, le=450)] = 298.15
    thermal_time_constant_s: PositiveFloat = 3.0
    thermal_resistance_k_cm2_w: Annotated[float, Field(ge=0)] = 60.0
    #: emitting film/junction: heats within a ~ms pulse (0: single-node model)
    junction_thermal_time_constant_s: PositiveFloat = 3e-3
    junction_thermal_resistance_k_cm2_w: Annotated[float, Field(ge=0)] = 0.0
    eqe_temperature_coefficient_per_k: Annotated[float, Field(ge=0)] = 0.004
    degradation: DegradationModel = DegradationModel()


class SolarModel(StrictModel):
    """Single-diode solar cell with photocurrent, series and shunt resistance.

    ``jsc_a_cm2`` is the photocurrent density J_ph at 100 mW/cm²; the short-circuit
    current is slightly lower (J_ph·Rsh/(Rs+Rsh) near enough)."""

    kind: Literal["solar"] = "solar"
    jsc_a_cm2: PositiveFloat = 30.2e-3
    j0_a_cm2: PositiveFloat = 1e-12
    ideality: PositiveFloat = 1.5
    rs_ohm_cm2: Annotated[float, Field(ge=0)] = 2.0
    rsh_ohm_cm2: PositiveFloat = 1000.0
    temperature_k: PositiveFloat = 298.15
    #: how the cell sits on the SMU: "inverted" = cathode on HI (n-i-p cells on ITO), so
    #: the instrument sees −V and −I of the device
    terminal_polarity: Literal["normal", "inverted"] = "normal"


class SingleCarrierModel(StrictModel):
    """Hole- or electron-only film: Ohmic, trap-filled-limit and Mott–Gurney regions."""

    kind: Literal["single_carrier"] = "single_carrier"
    mobility_cm2_vs: PositiveFloat = 0.01
    trap_density_cm3: PositiveFloat = 1e15
    free_carrier_density_cm3: PositiveFloat = 1e11
    built_in_voltage_v: float = 0.0
    rs_ohm_cm2: Annotated[float, Field(ge=0)] = 0.0
    #: log–log slope of the trap-filling rise (the Lampert triangle's steep side)
    tfl_slope: Annotated[float, Field(gt=3, le=40)] = 8.0


DeviceModel = Annotated[LEDModel | SolarModel | SingleCarrierModel, Field(discriminator="kind")]


class DeviceConfig(StrictModel):
    """The sample on the bench."""

    preset: str | None = None
    sample: str = "sample"
    kind: Literal["led", "solar", "single_carrier"] = "led"
    active_area_cm2: PositiveFloat = 0.04
    thickness_nm: PositiveFloat | None = None
    relative_permittivity: PositiveFloat | None = None
    carrier: Literal["hole", "electron"] | None = None
    description: str = ""
    model: DeviceModel | None = None
