"""The simulated lifetime rig through its real transport (pyserial socket:// URL)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import serial

from labrig.analysis import optics
from labrig.clock import SimulatedClock
from labrig.config import FaultSpec, load_preset
from labrig.devices import DeviceConfig
from labrig.simulators.lifetime_rig import (
    DEFAULT_PHOTODIODE,
    LINK_DOWN_S,
    RigServer,
    SimulatedLifetimeRig,
)
from labrig.simulators.physics import PHOTODIODE_GRID_NM

DEVICE = DeviceConfig.model_validate(load_preset("red_cspbi3"))
AMPS = 2e-4  # 5 mA/cm² on 0.04 cm²


def _rig(**kwargs) -> SimulatedLifetimeRig:
    kwargs.setdefault("clock", SimulatedClock(start=1e9))
    return SimulatedLifetimeRig(DEVICE.model, DEVICE.active_area_cm2, **kwargs)


@pytest.fixture
def served():
    rig = _rig(channels=4, seed=2, noise=False)
    server = RigServer(rig).start()
    port = serial.serial_for_url(server.url, timeout=2)

    def q(command: str) -> str:
        port.write(command.encode() + b"\n")
        return port.readline().decode().strip()

    yield rig, server, q
    port.close()
    server.stop()


def test_url_and_identity(served):
    rig, server, q = served
    assert server.url == f"socket://127.0.0.1:{server.port}"
    assert q("*IDN?") == "LABRIG,LTR-4,SIM00001,1.0"
    assert q("syst:chan?") == "4"
    assert float(q("SYST:CURR:MAX?")) == 0.1
    assert float(q("SYST:VOLT:MAX?")) == 12.0


def test_a_second_host_is_refused_at_once_and_the_first_served_on(served):
    """The rig is served by the simulators' one line server: one client at a time, as a
    serial port; a second host's read fails at once instead of hanging in a backlog."""
    _, server, q = served
    assert q("CH1:OUTP?") == "OFF"
    with pytest.raises(serial.SerialException):  # at connect or at the first read
        second = serial.serial_for_url(server.url, timeout=2)
        try:
            second.write(b"*IDN?\n")
            for _ in range(50):  # until the server has turned it away
                second.readline()
        finally:
            second.close()
    assert q("*IDN?") == "LABRIG,LTR-4,SIM00001,1.0"


def test_errors_are_replied_and_queued(served):
    _, _, q = served
    assert q("CH5:OUTP ON") == 'ERR -241,"Hardware missing; channel 5 (rig has 1..4)"'
    assert q("CH1:CURR 0.5").startswith("ERR -222,")
    assert q("CH1:CURR").startswith("ERR -109,")
    assert q("CH1:OUTP MAYBE").startswith("ERR -102,")
    assert q("BOGUS").startswith("ERR -113,")
    assert q("SYST:ERR?").startswith("-241,")
    assert q("SYST:ERR?").startswith("-222,")
    for _ in range(3):
        q("SYST:ERR?")
    assert q("SYST:ERR?") == '0,"No error"'


def test_one_meas_query_reads_a_channel_set_in_the_order_asked(served):
    rig, _, q = served
    assert q(f"CH2:CURR {AMPS}") == "OK" and q("CH2:OUTP ON") == "OK"
    commands = rig.commands
    groups = q("MEAS? 3,2").split(";")
    assert rig.commands == commands + 1
    assert [g.split(",")[4] for g in groups] == ["OFF", "OK"]
    assert float(groups[1].split(",")[1]) == pytest.approx(AMPS)
    assert float(groups[1].split(",")[0]) == pytest.approx(rig.device(2).voltage_at(AMPS), rel=1e-4)
    assert q("CH2:MEAS?").split(",")[:2] == groups[1].split(",")[:2]  # what CH2:MEAS? says


def test_a_bad_channel_list_measures_nothing(served):
    rig, _, q = served
    readings = [rig._channels[n].readings for n in range(4)]
    assert q("MEAS? 1,5") == 'ERR -241,"Hardware missing; channel 5 (rig has 1..4)"'
    assert q("MEAS?").startswith("ERR -109,")
    assert q("MEAS? 1;2").startswith("ERR -102,")
    assert [rig._channels[n].readings for n in range(4)] == readings


def test_output_current_and_measurement(served):
    rig, _, q = served
    assert q("CH2:OUTP?") == "OFF"
    assert q("CH2:STAT?") == "OFF"
    assert q("CH2:CURR 2.0E-4") == "OK"
    assert float(q("CH2:CURR?")) == pytest.approx(AMPS)
    assert q("CH2:OUTP ON") == "OK"
    v, i, ipd, t, status = q("CH2:MEAS?").split(",")
    assert status == "OK"
    assert float(i) == pytest.approx(AMPS)
    device = rig.device(2)
    assert float(v) == pytest.approx(device.voltage_at(AMPS), rel=1e-4)
    # photodiode = P · F · ∫R(λ)s(λ)dλ + dark, computed here from the optics primitives
    shape = device.spectrum_shape(PHOTODIODE_GRID_NM, AMPS)
    table = DEFAULT_PHOTODIODE.responsivity
    r = optics.responsivity_at(table.wavelength_nm, table.a_per_w, PHOTODIODE_GRID_NM, shape)
    expected = (
        device.optical_power_w(AMPS)
        * optics.lambertian_collection_factor(5e-3, 20e-3)
        * float(optics.spectral_integral(PHOTODIODE_GRID_NM, r * shape))
        + 2e-12
    )
    assert float(ipd) == pytest.approx(expected, rel=1e-6)
    assert float(t) == pytest.approx(0.0)
    assert q("CH1:MEAS?").endswith(",OFF")


def test_channels_degrade_along_the_clock_to_their_own_truth(served):
    rig, _, q = served
    q(f"CH1:CURR {AMPS}")
    q("CH1:OUTP ON")
    rig.clock.advance(60)  # thermal transient (τ_th = 3 s) over
    ipd0 = float(q("CH1:MEAS?").split(",")[2])
    device = rig.device(1)
    j = AMPS / DEVICE.active_area_cm2
    t50 = device.t_fraction_s(0.5, j)
    rig.clock.advance(t50 - 60)
    ipd, t = (float(x) for x in q("CH1:MEAS?").split(",")[2:4])
    expected = device.relative_efficiency_after(t50, j) / device.relative_efficiency_after(60, j)
    assert (ipd - 2e-12) / (ipd0 - 2e-12) == pytest.approx(expected, rel=1e-3)
    assert t == pytest.approx(t50)
    # an undriven channel did not age
    assert rig.device(2).relative_efficiency == 1.0


def test_unit_to_unit_spread_is_seeded_and_a_few_percent():
    a, b, c = _rig(seed=5), _rig(seed=5), _rig(seed=6)
    eqe = np.array([a.device(n).model.eqe_max for n in range(1, 9)])
    tau2 = np.array([a.device(n).model.degradation.tau2_h for n in range(1, 9)])
    assert np.all(eqe == [b.device(n).model.eqe_max for n in range(1, 9)])
    assert not np.all(eqe == [c.device(n).model.eqe_max for n in range(1, 9)])
    for values, nominal in ((eqe, 0.268), (tau2, 36.0)):
        rel = values / nominal - 1
        assert 0.005 < np.std(rel) < 0.08
        assert np.all(np.abs(rel) < 0.15)


@pytest.mark.parametrize("kind, status", [("open", "OPEN"), ("short", "SHORT")])
def test_device_fault_ends_one_channel_only(kind, status):
    rig = _rig(channels=3, faults=[FaultSpec(kind=kind, after=2, channel=2)], noise=False)
    for n in (1, 2, 3):
        rig.handle(f"CH{n}:CURR {AMPS}")
        rig.handle(f"CH{n}:OUTP ON")
    for _ in range(2):
        assert rig.handle("CH2:MEAS?").endswith(",OK")
    v, i, ipd, _, st = rig.handle("CH2:MEAS?").split(",")
    assert st == status
    assert float(ipd) == pytest.approx(2e-12)
    if kind == "open":
        assert float(v) == pytest.approx(12.0) and abs(float(i)) < 1e-9
    else:
        assert abs(float(v)) < 0.1
    assert rig.handle("CH2:STAT?") == status  # latched
    assert rig.handle("CH1:MEAS?").endswith(",OK")
    assert rig.handle("CH3:STAT?") == "OK"
    assert rig.handle("CH2:OUTP OFF") == "OK"
    assert rig.handle("CH2:STAT?") == "OFF"


def test_link_drops_and_comes_back_with_outputs_held():
    rig = _rig(channels=2, faults=[FaultSpec(kind="disconnect", after=3)])
    with RigServer(rig) as server:
        port = serial.serial_for_url(server.url, timeout=1)
        for command in (f"CH1:CURR {AMPS}", "CH1:OUTP ON", "CH1:MEAS?"):
            port.write(command.encode() + b"\n")
            assert port.readline()
        port.write(b"CH1:MEAS?\n")
        with pytest.raises(serial.SerialException):
            port.readline()
        port.close()
        # still down: a new connection is closed at once
        port = serial.serial_for_url(server.url, timeout=1)
        port.write(b"*IDN?\n")
        with pytest.raises(serial.SerialException):
            port.readline()
        port.close()
        rig.clock.advance(LINK_DOWN_S + 1)
        port = serial.serial_for_url(server.url, timeout=1)
        port.write(b"CH1:OUTP?\n")
        assert port.readline() == b"ON\n"
        port.close()
    assert rig.device(1).relative_efficiency < 1.0  # it kept ageing while the link was down


def test_mute_link_then_recovers():
    rig = _rig(channels=1, faults=[FaultSpec(kind="timeout", after=1)])
    with RigServer(rig) as server:
        port = serial.serial_for_url(server.url, timeout=0.3)
        port.write(b"*IDN?\n")
        assert port.readline().startswith(b"LABRIG")
        port.write(b"CH1:OUTP ON\n")
        assert port.readline() == b""  # obeyed, but no reply
        rig.clock.advance(LINK_DOWN_S + 1)
        port.write(b"CH1:OUTP?\n")
        assert port.readline() == b"ON\n"
        port.close()


def test_garbled_reply_is_one_shot():
    rig = _rig(channels=1, faults=[FaultSpec(kind="garbled", after=1)])
    assert rig.handle("*IDN?").startswith("LABRIG")
    assert not rig.handle("*IDN?").startswith("LABRIG")
    assert rig.handle("*IDN?").startswith("LABRIG")


def test_watchdog_switches_outputs_off_when_the_host_goes_silent():
    rig = _rig(channels=2)
    rig.handle(f"CH1:CURR {AMPS}")
    rig.handle("CH1:OUTP ON")
    assert rig.handle("SYST:WDOG 30") == "OK"
    rig.clock.advance(10)
    rig.poll()
    assert rig.handle("CH1:OUTP?") == "ON"
    rig.clock.advance(31)
    rig.poll()
    assert rig.handle("CH1:STAT?") == "WDOG"
    assert rig.handle("CH1:OUTP?") == "OFF"
    assert rig.handle("CH2:STAT?") == "OFF"


def test_unsupported_fault_kind_is_refused():
    with pytest.raises(ValueError, match="overrange"):
        _rig(faults=[FaultSpec(kind="overrange")])


def test_rst_turns_everything_off():
    rig = _rig(channels=2)
    rig.handle(f"CH2:CURR {AMPS}")
    rig.handle("CH2:OUTP ON")
    assert rig.handle("*RST") == "OK"
    assert rig.handle("CH2:OUTP?") == "OFF"
    assert float(rig.handle("CH2:CURR?")) == 0.0
    assert math.isclose(float(rig.handle("SYST:WDOG?")), 0.0)
