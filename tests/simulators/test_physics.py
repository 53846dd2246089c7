"""CoupledPhysics: compliance like a 2400, faults, the photodiode chain, clock coupling."""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import pytest
import yaml

from labrig.clock import SimulatedClock, WallClock
from labrig.config import BenchConfig, parse_config, shipped_config_dir
from labrig.errors import ConfigError
from labrig.simulators.led import LEDDevice
from labrig.simulators.physics import OPEN_OHM, SHORT_OHM, CoupledPhysics, OperatingPoint


def make_config(*, noise: bool = False, seed: int = 1, **device: object) -> BenchConfig:
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["simulation"].update({"noise": noise, "seed": seed})
    data["device"].update(device)
    return parse_config(data)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(start=1_000_000.0)


@pytest.fixture
def bench(clock: SimulatedClock) -> CoupledPhysics:
    return CoupledPhysics(make_config(), clock)


def test_defaults_from_config() -> None:
    b = CoupledPhysics(make_config())
    assert isinstance(b.clock, SimulatedClock) and b.clock.speed == math.inf
    assert isinstance(b.device, LEDDevice)
    assert b.noise is False
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["simulation"]["clock"] = "wall"
    assert isinstance(CoupledPhysics(parse_config(data)).clock, WallClock)
    assert b.operating_point == OperatingPoint(0.0, 0.0, False, False)


def test_source_voltage_sets_the_device_operating_point(bench: CoupledPhysics) -> None:
    op = bench.source_voltage(4.0, 0.05)
    assert op.output_on and not op.in_compliance
    assert op.voltage == 4.0
    assert op.current == pytest.approx(bench.device.current_at(4.0), rel=1e-12)
    truth = bench.truth()
    assert truth["current_density_a_cm2"] == pytest.approx(op.current / 0.04)
    assert truth["luminance_cd_m2"] == pytest.approx(1994, rel=0.01)  # red preset at 4 V


def test_voltage_compliance_limits_current_like_a_2400(bench: CoupledPhysics) -> None:
    op = bench.source_voltage(8.0, 1e-3)
    assert op.in_compliance and op.output_on
    assert op.current == 1e-3
    assert op.voltage == pytest.approx(bench.device.voltage_at(1e-3), rel=1e-12)
    assert op.voltage < 8.0
    assert bench.source_voltage(-8.0, 1e-3).current == pytest.approx(-1e-23 * 0.04, rel=1e-3)


def test_current_source_and_its_voltage_compliance(bench: CoupledPhysics) -> None:
    op = bench.source_current(1e-3, 21.0)
    assert not op.in_compliance
    assert op.voltage == pytest.approx(bench.device.voltage_at(1e-3), rel=1e-12)
    op = bench.source_current(1e-3, 3.0)  # needs ~5.4 V
    assert op.in_compliance and op.voltage == 3.0
    assert op.current == pytest.approx(bench.device.current_at(3.0), rel=1e-12)
    op = bench.source_current(-1e-3, 10.0)  # reverse current an LED cannot pass
    assert op.in_compliance and op.voltage == -10.0


def test_open_and_short_faults(bench: CoupledPhysics) -> None:
    bench.set_device_fault("open")
    op = bench.source_current(1e-3, 20.0)
    assert op.in_compliance and op.voltage == 20.0
    assert op.current == pytest.approx(20.0 / OPEN_OHM)
    assert bench.source_voltage(5.0, 0.1).current == pytest.approx(5.0 / OPEN_OHM)
    assert bench.truth()["optical_power_w"] == 0.0
    bench.set_device_fault("short")
    op = bench.source_voltage(5.0, 0.1)
    assert op.in_compliance and op.current == 0.1
    assert op.voltage == pytest.approx(0.1 * SHORT_OHM)
    assert bench.photodiode_current() == bench.dark_current_a
    bench.set_device_fault(None)
    assert bench.source_voltage(5.0, 0.1).voltage == 5.0
    with pytest.raises(ValueError, match="fault kind"):
        bench.set_device_fault("melted")  # type: ignore[arg-type]


def test_output_off_zero_current_and_device_cools(
    bench: CoupledPhysics, clock: SimulatedClock
) -> None:
    bench.source_voltage(6.0, 0.1)
    clock.advance(30.0)
    hot_truth = bench.truth()
    hot = hot_truth["temperature_k"]
    assert hot > 300.0
    bench.output_off()
    assert bench.operating_point == OperatingPoint(0.0, 0.0, False, False)
    assert bench.spectral_flux_w_per_nm(np.array([628.0]))[0] == 0.0
    clock.advance(3.0)  # one substrate time constant (a thousand of the film's)
    cooled = bench.truth()["temperature_k"]
    substrate = hot - 298.15 - hot_truth["junction_rise_k"]
    assert hot_truth["junction_rise_k"] > 0
    assert cooled - 298.15 == pytest.approx(substrate * math.exp(-1), rel=1e-6)


def test_large_clock_jump_is_stable_and_matches_small_steps(clock: SimulatedClock) -> None:
    coarse = CoupledPhysics(make_config(), clock)
    fine_clock = SimulatedClock(start=clock.time())
    fine = CoupledPhysics(make_config(), fine_clock)
    for b in (coarse, fine):
        b.source_voltage(5.0, 0.1)
    clock.advance(3600.0)  # a 3600x clock jumps an hour in one go
    for _ in range(36000):
        fine_clock.advance(0.1)
        fine.update()
    tc, tf = coarse.truth(), fine.truth()
    assert tc["temperature_k"] == pytest.approx(tf["temperature_k"], rel=1e-6)
    assert tc["relative_efficiency"] == pytest.approx(tf["relative_efficiency"], rel=1e-4)
    # ... and equals the closed form at the (steady) operating point
    dev = coarse.device
    assert isinstance(dev, LEDDevice)
    j = tc["current_density_a_cm2"]
    assert tc["relative_efficiency"] == pytest.approx(
        dev.relative_efficiency_after(3600.0, j), rel=1e-3
    )
    assert tc["temperature_k"] == pytest.approx(
        dev.steady_state_temperature_k(5.0, tc["current_a"]), rel=1e-9
    )


def test_dc_heating_lowers_eqe_below_pulsed(clock: SimulatedClock) -> None:
    dc = CoupledPhysics(make_config(), clock)
    dc.source_voltage(7.0, 0.1)
    clock.advance(20.0)
    dc_truth = dc.truth()
    pulsed_clock = SimulatedClock(start=0.0)
    pulsed = CoupledPhysics(make_config(), pulsed_clock)
    for _ in range(200):  # 1 ms pulses at 1 % duty
        pulsed.source_voltage(7.0, 0.1)
        pulsed_clock.advance(1e-3)
        p_truth = pulsed.truth()
        pulsed.output_off()
        pulsed_clock.advance(99e-3)
    assert p_truth["temperature_k"] - 298.15 < 0.03 * (dc_truth["temperature_k"] - 298.15)

    # at the same J the cool (pulsed) device is more efficient than the hot (DC) one
    def cool_fraction(t: dict[str, float]) -> float:
        return t["eqe"] / (t["intrinsic_eqe"] * t["relative_efficiency"])

    assert cool_fraction(p_truth) > 0.995  # 1 % duty: ~1 % of the DC temperature rise
    assert cool_fraction(dc_truth) < 0.9
    assert cool_fraction(dc_truth) == pytest.approx(dc_truth["thermal_factor"], rel=1e-9)


def test_photodiode_current_equals_hand_computed_chain(bench: CoupledPhysics) -> None:
    bench.source_voltage(4.0, 0.05)
    truth = bench.truth()
    # independent chain: P·F·∫R(λ)s(λ)dλ + dark, R linear between the table's points
    wl = np.arange(450.0, 800.0, 0.5)
    sigma = 33.0 / (2 * math.sqrt(2 * math.log(2)))
    s = np.exp(-0.5 * ((wl - 628.0) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    table_nm = [400, 450, 470, 500, 520, 550, 600, 628, 650, 700, 800]
    table_r = [0.19, 0.24, 0.26, 0.29, 0.31, 0.34, 0.40, 0.43, 0.46, 0.51, 0.60]
    r_eff = np.trapezoid(np.interp(wl, table_nm, table_r) * s, wl)
    f = 5.0**2 / (5.0**2 + 20.0**2)
    expected = truth["optical_power_w"] * f * r_eff + 2e-12
    assert bench.photodiode_current() == pytest.approx(expected, rel=1e-5)
    assert truth["photodiode_signal_a"] == pytest.approx(expected - 2e-12, rel=1e-5)
    # spectral flux integrates to the optical power
    flux = bench.spectral_flux_w_per_nm(wl)
    assert np.trapezoid(flux, wl) == pytest.approx(truth["optical_power_w"], rel=1e-4)
    # the meter's luminance correction does not change the truth
    data = make_config().model_dump()
    data["calibration"]["luminance_correction"] = 1.5
    other = CoupledPhysics(parse_config(data), SimulatedClock(start=0.0))
    other.source_voltage(4.0, 0.05)
    assert other.photodiode_current() == pytest.approx(expected, rel=1e-9)


def test_calibrated_collection_factor_is_used() -> None:
    data = make_config().model_dump()
    data["calibration"]["photodiode"]["collection_factor"] = 0.1
    b = CoupledPhysics(parse_config(data), SimulatedClock(start=0.0))
    b.source_voltage(4.0, 0.05)
    assert b.truth()["collection_factor"] == 0.1
    ratio = (b.photodiode_current() - 2e-12) / (b.truth()["photodiode_signal_a"])
    assert ratio == pytest.approx(1.0, rel=1e-9)


def test_seeded_noise_is_reproducible() -> None:
    def readings(seed: int) -> np.ndarray:
        b = CoupledPhysics(make_config(noise=True, seed=seed), SimulatedClock(start=0.0))
        b.source_voltage(4.0, 0.05)
        return np.array([b.photodiode_current() for _ in range(200)])

    a, b, c = readings(7), readings(7), readings(8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    mean = CoupledPhysics(make_config(), SimulatedClock(start=0.0))
    mean.source_voltage(4.0, 0.05)
    truth = mean.photodiode_current()
    assert np.mean(a) == pytest.approx(truth, rel=1e-4)
    assert 1e-5 < np.std(a) / truth < 1e-3  # small, but there


def test_dark_reading_with_noise_stays_near_dark_current() -> None:
    b = CoupledPhysics(make_config(noise=True), SimulatedClock(start=0.0))
    dark = np.array([b.photodiode_current() for _ in range(500)])
    assert np.mean(dark) == pytest.approx(2e-12, abs=2e-15)
    assert np.std(dark) < 1e-14


def test_thread_safety(bench: CoupledPhysics, clock: SimulatedClock) -> None:
    errors: list[BaseException] = []

    def smu() -> None:
        try:
            for k in range(300):
                bench.source_voltage(3.0 + (k % 30) * 0.1, 0.05)
                clock.advance(1e-3)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    def meter() -> None:
        try:
            for _ in range(300):
                assert bench.photodiode_current() >= 0
                bench.spectral_flux_w_per_nm(np.linspace(500, 700, 50))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (smu, meter, meter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_device_without_model_cannot_be_simulated() -> None:
    data = make_config().model_dump()
    data["device"]["model"] = None
    data["device"]["preset"] = None
    with pytest.raises(ConfigError, match="device.model"):
        CoupledPhysics(parse_config(data))


def test_missing_simulator_module_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "labrig.simulators.solar_cell", None)
    data = make_config().model_dump()
    data["device"] = {"kind": "solar", "active_area_cm2": 0.04, "model": {"kind": "solar"}}
    with pytest.raises(ConfigError, match="device.model"):
        CoupledPhysics(parse_config(data))


def test_illumination_and_compliance_arguments(bench: CoupledPhysics) -> None:
    bench.set_illumination(100.0)
    assert bench.truth()["illumination_mw_cm2"] == 100.0
    with pytest.raises(ValueError, match="illumination"):
        bench.set_illumination(-1.0)
    with pytest.raises(ValueError, match="compliance"):
        bench.source_voltage(1.0, 0.0)


@pytest.mark.parametrize(
    ("config", "device_class"),
    [("sim", "LEDDevice"), ("solar_sim", "SolarCell"), ("sclc_sim", "SingleCarrierDevice")],
)
def test_shipped_configs_build_their_device(config: str, device_class: str) -> None:
    from labrig.config import load_config

    b = CoupledPhysics(load_config(config), SimulatedClock(start=0.0))
    assert type(b.device).__name__ == device_class
    op = b.source_voltage(0.5, 0.1)
    assert op.output_on and math.isfinite(op.current)


def test_scheduled_photodiode_samples_see_the_light_at_their_own_times(
    bench: CoupledPhysics, clock: SimulatedClock
) -> None:
    """A sample due inside a pulse reads the pulse's light even when the next update comes
    after the pulse has ended; one due after it reads only the dark current."""
    got: dict[str, float] = {}
    t0 = clock.time()
    bench.schedule_photodiode_sample(t0 + 0.5e-3, lambda a: got.__setitem__("inside", a))
    bench.schedule_photodiode_sample(t0 + 2e-3, lambda a: got.__setitem__("after", a))
    bench.source_current(0.004, 12.0)
    clock.advance(1e-3)
    lit = bench.truth()["photodiode_signal_a"]  # end of the 1 ms pulse
    bench.output_off()
    assert got["inside"] > 0.99 * lit  # a little brighter: the film had heated less
    assert got["inside"] == pytest.approx(lit, rel=0.01)
    assert "after" not in got
    clock.advance(5e-3)
    bench.update()
    assert got["after"] == bench.dark_current_a


def test_trigger_link_calls_listeners_on_their_line(bench: CoupledPhysics) -> None:
    calls: list[str] = []
    bench.trigger_link.connect(2, lambda: calls.append("a"))
    bench.trigger_link.connect(3, lambda: calls.append("b"))
    bench.trigger_link.pulse(2)
    assert calls == ["a"]


def test_pulsed_film_heating_within_a_pulse_follows_the_two_node_truth(
    bench: CoupledPhysics, clock: SimulatedClock
) -> None:
    """The bench sub-steps fast enough after a change of drive to follow the ms film node."""
    dev = bench.device
    assert isinstance(dev, LEDDevice)
    op = bench.source_current(0.008, 12.0)
    clock.advance(5e-3)
    t = bench.truth()
    expected = dev.pulse_temperature_k(op.voltage, 0.008, 5e-3)
    assert t["temperature_k"] == pytest.approx(expected, abs=0.02 * (expected - 298.15))
