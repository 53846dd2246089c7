"""LEDDevice physics against hand-computed values and the published device shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labrig.analysis import optics
from labrig.config import load_preset
from labrig.devices import DegradationModel, DeviceConfig, LEDModel
from labrig.simulators.device import ElectricalDevice
from labrig.simulators.led import LEDDevice

Q = 1.602176634e-19
AREA = 0.04


def preset(name: str) -> LEDDevice:
    dev = DeviceConfig.model_validate(load_preset(name))
    assert isinstance(dev.model, LEDModel)
    return LEDDevice(dev.model, dev.active_area_cm2)


@pytest.fixture
def red() -> LEDDevice:
    return preset("red_cspbi3")


def turn_on_voltage(d: LEDDevice, l_cd_m2: float = 1.0) -> float:
    from scipy.optimize import brentq

    return brentq(lambda v: d.intrinsic_luminance_cd_m2(d.current_density_at(v)) - l_cd_m2, 1, 9)


def test_implements_electrical_device(red: LEDDevice) -> None:
    assert isinstance(red, ElectricalDevice)
    assert red.relative_efficiency == 1.0
    assert red.temperature_k == pytest.approx(298.15)


def test_voltage_hand_computed(red: LEDDevice) -> None:
    # J = 1 mA/cm2: 2·0.0256926·ln(1e20) + (1e-3/2.4e-3)^(1/2.6) + 1e-3·5
    #             = 2.36638 + 0.71408 + 0.005 = 3.08546 V
    assert red.voltage_at_density(1e-3) == pytest.approx(3.08546, abs=2e-4)
    # J = 0.1 A/cm2: 2·0.0256926·ln(1e22) + (41.667)^(1/2.6) + 0.5
    #              = 2.60302 + 4.19757 + 0.5 = 7.30059 V
    assert red.voltage_at_density(0.1) == pytest.approx(7.30059, abs=2e-4)
    assert red.voltage_at(1e-3 * AREA) == red.voltage_at_density(1e-3)
    assert red.voltage_at_density(0.0) == 0.0
    assert red.voltage_at_density(-2e-23) == -math.inf  # beyond reverse saturation


def test_eqe_hand_computed(red: LEDDevice) -> None:
    # J = J_on: x = 1 -> 0.268/2/(1 + (3e-5/2.1e-2)^1.4) = 0.134/1.000104
    assert red.intrinsic_eqe(3e-5) == pytest.approx(0.133986, rel=1e-5)
    # J = J_roll: x = 700^1.2 = 2594.6 -> 0.268·0.999615/2
    assert red.intrinsic_eqe(2.1e-2) == pytest.approx(0.133948, rel=1e-5)
    assert red.intrinsic_eqe(0.0) == 0.0
    assert red.intrinsic_eqe(-1e-3) == 0.0


def test_current_voltage_round_trip_and_monotonic(red: LEDDevice) -> None:
    volts = np.linspace(-3, 15, 1801)
    j = np.array([red.current_density_at(v) for v in volts])
    assert np.all(np.diff(j) >= 0)
    assert np.all(np.diff(j[volts > 0]) > 0)
    for v, jj in zip(volts, j, strict=True):
        if v > 0:
            assert red.voltage_at_density(jj) == pytest.approx(v, abs=1e-9)
    # reverse current saturates at -J0
    assert red.current_density_at(-3) == pytest.approx(-1e-23, rel=1e-6)
    for amps in np.logspace(-12, -1, 23):
        assert red.current_at(red.voltage_at(amps)) == pytest.approx(amps, rel=1e-9)


def test_red_preset_reproduces_published_shape(red: LEDDevice) -> None:
    assert 2.2 <= turn_on_voltage(red) <= 2.4
    js = np.logspace(-5, -1, 801)
    eqe = np.array([red.intrinsic_eqe(j) for j in js])
    k = int(np.argmax(eqe))
    assert eqe[k] == pytest.approx(0.26, abs=0.01)
    assert 0.5e-3 <= js[k] <= 2e-3
    lum_58 = red.intrinsic_luminance_cd_m2(red.current_density_at(5.8))
    assert 3000 <= lum_58 <= 5000
    assert red.cie_xy(1e-3)[0] > 0.68  # saturated red


@pytest.mark.parametrize(
    ("name", "l0", "t50_min"),
    [("red_cspbi3", 1000, 729), ("green_cspbbr3", 1200, 60), ("blue_cspbbr3", 90, 20)],
)
def test_presets_t50_at_published_luminance(name: str, l0: float, t50_min: float) -> None:
    d = preset(name)
    j = d.current_density_for_luminance(l0)
    assert d.intrinsic_luminance_cd_m2(j) == pytest.approx(l0, rel=1e-6)
    assert d.t_fraction_s(0.5, j) / 60 == pytest.approx(t50_min, rel=0.02)


def test_presets_colours_and_turn_on_order() -> None:
    red, green, blue = (preset(n) for n in ("red_cspbi3", "green_cspbbr3", "blue_cspbbr3"))
    assert turn_on_voltage(red) < turn_on_voltage(green) < turn_on_voltage(blue)
    js = np.logspace(-5, -1, 401)
    peak = {d.model.peak_nm: max(d.intrinsic_eqe(j) for j in js) for d in (red, green, blue)}
    assert peak[628] > peak[512] > peak[475]
    assert peak[512] == pytest.approx(0.16, abs=0.01)
    assert peak[475] == pytest.approx(0.06, abs=0.005)
    assert green.cie_xy(1e-3)[1] > 0.6  # green
    assert blue.cie_xy(1e-3)[1] < 0.2  # blue


def test_luminance_and_photon_flux_hand_computed(red: LEDDevice) -> None:
    amps = 2e-3 * AREA
    eqe = red.eqe(2e-3)
    assert red.photon_flux_per_s(amps) == pytest.approx(eqe * amps / Q, rel=1e-12)
    # independent quadrature on a coarser grid: P = N·hc/λ for a Gaussian in λ
    wl = np.arange(400.0, 900.0, 0.5)
    s = optics.gaussian_spectrum(wl, 628, 33)
    power = eqe * amps / Q / np.trapezoid(s / optics.photon_energy_j(wl), wl)
    assert red.optical_power_w(amps) == pytest.approx(power, rel=1e-5)
    lum = 683 * power * np.trapezoid(optics.photopic_v(wl) * s, wl) / (math.pi * AREA * 1e-4)
    assert red.luminance_cd_m2(amps) == pytest.approx(lum, rel=1e-4)
    assert red.optical_power_w(0.0) == 0.0
    assert red.luminance_cd_m2(-1e-3) == 0.0


def test_spectrum_shape_and_peak_shift() -> None:
    model = LEDModel(peak_shift_nm_per_decade=2.0, spectrum_reference_current_density_a_cm2=1e-3)
    d = LEDDevice(model, AREA)
    wl = np.arange(500.0, 760.0, 0.1)
    for j, expected in [(1e-3, 628.0), (1e-2, 630.0), (1e-4, 626.0)]:
        s = d.spectrum_shape(wl, j * AREA)
        assert np.trapezoid(s, wl) == pytest.approx(1.0, rel=1e-6)
        assert wl[int(np.argmax(s))] == pytest.approx(expected, abs=0.05)
        half = wl[s >= s.max() / 2]
        assert half[-1] - half[0] == pytest.approx(33.0, abs=0.2)


def test_heating_steady_state_and_time_constant(red: LEDDevice) -> None:
    """Two thermal nodes: the substrate (R_th, τ_th of seconds) and the film (R_j, τ_j of
    ms); each relaxes exactly, DC settles at (R_th + R_j)·P = 60 K·cm²/W·P on the preset."""
    volts = 6.0
    amps = red.current_at(volts)
    p_density = volts * amps / AREA  # W/cm2
    t_amb = red.model.ambient_temperature_k
    tau = red.model.thermal_time_constant_s
    r_s, r_j = red.model.thermal_resistance_k_cm2_w, red.model.junction_thermal_resistance_k_cm2_w
    tau_j = red.model.junction_thermal_time_constant_s
    assert r_s + r_j == pytest.approx(60.0) and r_j > 0 and 1e-3 <= tau_j <= 5e-3
    red.advance(tau, volts, amps)
    rise = 60.0 * p_density
    expected = r_s * p_density * (1 - math.exp(-1)) + r_j * p_density * (1 - math.exp(-tau / tau_j))
    assert red.temperature_k - t_amb == pytest.approx(expected, rel=1e-9)
    red.advance(50 * tau, volts, amps)
    assert red.temperature_k - t_amb == pytest.approx(rise, rel=1e-9)
    assert red.steady_state_temperature_k(volts, amps) == pytest.approx(red.temperature_k)
    # hot device: EQE lowered by exp(-0.004·ΔT) (on top of the ageing at this high J)
    j = amps / AREA
    expected = red.intrinsic_eqe(j) * math.exp(-0.004 * rise) * red.relative_efficiency
    assert red.relative_efficiency < 1.0
    assert red.eqe(j) == pytest.approx(expected, rel=1e-6)
    # output off: each node cools back with its own time constant
    red.advance(tau, 0.0, 0.0)
    expected = r_s * p_density * math.exp(-1) + r_j * p_density * math.exp(-tau / tau_j)
    assert red.temperature_k - t_amb == pytest.approx(expected, rel=1e-9)


def test_short_pulse_heats_the_film_not_the_substrate(red: LEDDevice) -> None:
    volts = 6.0
    amps = red.current_at(volts)
    p_density = volts * amps / AREA
    m = red.model
    substrate_rise = m.thermal_resistance_k_cm2_w * p_density
    red.advance(1e-3, volts, amps)
    assert red.substrate_rise_k < 1e-3 * substrate_rise
    film = m.junction_thermal_resistance_k_cm2_w * p_density
    tau_j = m.junction_thermal_time_constant_s
    assert red.junction_rise_k == pytest.approx(film * (1 - math.exp(-1e-3 / tau_j)), rel=1e-9)
    assert red.temperature_k == pytest.approx(red.pulse_temperature_k(volts, amps, 1e-3))
    assert 0.995 < red.thermal_factor() < 1.0
    red.advance(10.0, volts, amps)
    assert red.thermal_factor() < 0.97


def test_el_falls_with_pulse_width_and_dc_is_lowest(red: LEDDevice) -> None:
    """At high J the film heats within 0.5–20 ms pulses: EQE at the end of a pulse falls
    monotonically with width, and DC (both nodes settled) is lower still; at low J the
    difference vanishes (the published J–V–L shape is untouched)."""
    alpha = red.model.eqe_temperature_coefficient_per_k
    widths = [0.5e-3, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3]
    for j, spread in [(0.3, (0.02, 0.06)), (1e-3, (0.0, 1e-4))]:
        amps = j * AREA
        volts = red.voltage_at(amps)
        factors = [
            math.exp(-alpha * (red.pulse_temperature_k(volts, amps, w) - 298.15)) for w in widths
        ]
        dc = math.exp(-alpha * (red.steady_state_temperature_k(volts, amps) - 298.15))
        assert all(np.diff(factors) < 0)
        assert spread[0] <= factors[0] - factors[-1] <= spread[1]
        assert dc < factors[-1]


def test_degradation_t50_and_scaling(red: LEDDevice) -> None:
    d = red.model.degradation
    j = d.reference_current_density_a_cm2
    t50 = red.t_fraction_s(0.5, j)
    assert red.relative_efficiency_after(t50, j) == pytest.approx(0.5, abs=1e-9)
    # integrated in many steps along the way, the device reaches 0.5 at T50
    for _ in range(100):
        red.advance(t50 / 100, 3.5, j * AREA)
    assert red.relative_efficiency == pytest.approx(0.5, rel=1e-9)
    # T50 scales as J^-n with the configured exponent
    n = d.acceleration_exponent
    for factor in (0.5, 2.0, 10.0):
        assert red.t_fraction_s(0.5, factor * j) == pytest.approx(t50 * factor**-n, rel=1e-8)
    t95 = red.t_fraction_s(0.95, j)
    assert 0 < t95 < t50
    assert red.relative_efficiency_after(t95, j) == pytest.approx(0.95, abs=1e-9)


def test_two_component_decay_matches_closed_form() -> None:
    deg = DegradationModel(
        tau1_h=1.0, tau2_h=10.0, fraction1=0.4, reference_current_density_a_cm2=1e-2
    )
    d = LEDDevice(LEDModel(degradation=deg), AREA)
    d.advance(3600.0, 4.0, 1e-2 * AREA)
    expected = 0.4 * math.exp(-1.0) + 0.6 * math.exp(-0.1)
    assert d.relative_efficiency == pytest.approx(expected, rel=1e-12)
    assert d.eqe(1e-3) == pytest.approx(d.intrinsic_eqe(1e-3) * expected * d.thermal_factor())
    d.reset()
    d.advance(1e6, 0.0, 0.0)  # no current, no ageing
    assert d.relative_efficiency == 1.0


def test_stretched_decay_follows_its_dose_and_matches_closed_form() -> None:
    deg = DegradationModel(
        tau1_h=1.0, tau2_h=10.0, fraction1=0.0, stretch_exponent=0.5,
        reference_current_density_a_cm2=1e-2,
    )  # fmt: skip
    d = LEDDevice(LEDModel(degradation=deg), AREA)
    for _ in range(36):  # 10 h in 36 steps at J_ref: exp(-(t/τ2)^β) whatever the steps
        d.advance(1000.0, 4.0, 1e-2 * AREA)
    assert d.relative_efficiency == pytest.approx(math.exp(-((36000 / 36000) ** 0.5)), rel=1e-12)
    assert d.relative_efficiency_after(36000.0, 1e-2) == pytest.approx(math.exp(-1.0), rel=1e-12)
    t50 = d.t_fraction_s(0.5, 1e-2)
    assert t50 == pytest.approx(36000 * math.log(2) ** 2, rel=1e-9)
    # driven 10 h before L0 is read: exp(-((a+t)/τ)^β) = ½·exp(-(a/τ)^β) solved for t —
    # a stretched decay slows with age, so the remaining T50 is longer (here 1.9 τ·ln²2)
    aged = d.t_fraction_s(0.5, 1e-2, age_s=36000.0)
    assert aged == pytest.approx(36000 * ((1 + math.log(2)) ** 2 - 1), rel=1e-9)
    # at twice J the dose accrues 2^n times faster (n = 1.7): 1 h there is 2^1.7 h at J_ref
    d.reset()
    d.advance(3600.0, 4.0, 2e-2 * AREA)
    assert d.relative_efficiency == pytest.approx(math.exp(-((2**1.7 / 10) ** 0.5)), rel=1e-12)


def test_bad_arguments_raise(red: LEDDevice) -> None:
    with pytest.raises(ValueError, match="fraction"):
        red.t_fraction_s(1.5, 1e-3)
    with pytest.raises(ValueError, match="j_a_cm2"):
        red.t_fraction_s(0.5, 0.0)
    with pytest.raises(ValueError, match="age_s"):
        red.t_fraction_s(0.5, 1e-3, age_s=-1.0)
    with pytest.raises(ValueError, match="out of reach"):
        red.current_density_for_luminance(1e7)
    with pytest.raises(ValueError, match="area_cm2"):
        LEDDevice(LEDModel(), 0.0)


@settings(max_examples=200, deadline=None)
@given(
    volts=st.floats(1e-6, 200.0),
    j0=st.floats(1e-35, 1e-10),
    ideality=st.floats(1.0, 4.0),
    k=st.floats(1e-5, 1.0),
    m=st.floats(1.0, 8.0),
    rs=st.floats(0.0, 100.0),
    temperature_k=st.floats(250.0, 400.0),
)
def test_inversion_round_trip_for_any_parameters(
    volts: float, j0: float, ideality: float, k: float, m: float, rs: float, temperature_k: float
) -> None:
    model = LEDModel(j0_a_cm2=j0, ideality=ideality, k_a_cm2_vm=k, m=m, rs_ohm_cm2=rs)
    d = LEDDevice(model, AREA)
    d.temperature_k = temperature_k
    j = d.current_density_at(volts)
    assert j > 0 and math.isfinite(j)
    assert d.voltage_at_density(j) == pytest.approx(volts, rel=1e-9, abs=1e-12)


def test_luminance_scaling_exponent(red: LEDDevice) -> None:
    l_lo, l_hi = 500.0, 2000.0
    j_lo, j_hi = (red.current_density_for_luminance(x) for x in (l_lo, l_hi))
    n_j = red.model.degradation.acceleration_exponent
    expected = n_j * math.log(j_hi / j_lo) / math.log(l_hi / l_lo)
    assert red.luminance_scaling_exponent([l_lo, l_hi]) == pytest.approx(expected, rel=1e-6)
    # within the published range for PeLEDs (L0^n·T50 = const, n ≈ 1.5–2)
    assert 1.5 <= red.luminance_scaling_exponent([500, 1000, 2000]) <= 2.0
    with pytest.raises(ValueError, match="two"):
        red.luminance_scaling_exponent([1000])


# ------------------------------------------------------------------ shunt
def shunted(rsh_ohm_cm2: float) -> LEDDevice:
    model = DeviceConfig.model_validate(load_preset("red_cspbi3")).model
    return LEDDevice(model.model_copy(update={"rsh_ohm_cm2": rsh_ohm_cm2}), AREA)


def test_a_shunt_leaks_ohmically_below_turn_on_and_inverts_exactly(red: LEDDevice) -> None:
    leaky = shunted(1e4)
    for volts in (-2.0, -0.5, 0.3, 1.0, 2.5, 4.0):
        assert leaky.current_density_at(volts) == pytest.approx(
            red.current_density_at(volts) + volts / 1e4, rel=1e-12, abs=1e-30
        )
        j = leaky.current_density_at(volts)
        assert leaky.voltage_at_density(j) == pytest.approx(volts, abs=1e-9)
    assert leaky.current_density_at(0.5) == pytest.approx(0.5 / 1e4, rel=1e-9)  # ohmic
    assert red.current_density_at(0.5) < 1e-15  # the diode passes nothing there


def test_the_shunt_current_emits_nothing(red: LEDDevice) -> None:
    leaky = shunted(1e4)
    j = leaky.current_density_at(2.6)
    diode = j - 2.6 / 1e4
    assert leaky.diode_current_density(j) == pytest.approx(diode, rel=1e-9)
    # photons come from the diode's share: EQE of the terminal current scaled by J_d/J
    assert leaky.intrinsic_eqe(j) == pytest.approx(red.intrinsic_eqe(diode) * diode / j, rel=1e-9)
    assert leaky.photon_flux_per_s(j * AREA) == pytest.approx(
        red.intrinsic_eqe(diode) * diode * AREA / Q, rel=1e-6
    )
    assert leaky.intrinsic_eqe(1e-6) < 0.01 * red.intrinsic_eqe(1e-6)  # all leakage
    assert math.isinf(red.model.rsh_ohm_cm2)  # no shunt unless configured
