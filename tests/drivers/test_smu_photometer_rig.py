"""The one-channel SMU+photometer lifetime backend on the simulated Keithleys (real
drivers, pyvisa-py, loopback TCP) sharing one simulated bench."""

from __future__ import annotations

import importlib.util

import pytest

from labrig.errors import InstrumentSettingError
from labrig.interfaces import LifetimeRig

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("labrig.simulators.keithley6485") is None
    or importlib.util.find_spec("labrig.simulators.keithley2400") is None,
    reason="needs labrig.simulators.keithley2400 and labrig.simulators.keithley6485 (H3)",
)

AMPS = 2e-4


@pytest.fixture
def rig(sim_config):
    from labrig.drivers import keithley2400, keithley6485
    from labrig.drivers.smu_photometer_rig import SMUPhotometerRig
    from labrig.simulators.keithley2400 import SimulatedKeithley2400
    from labrig.simulators.keithley6485 import SimulatedKeithley6485
    from labrig.simulators.physics import CoupledPhysics
    from labrig.simulators.server import SCPIServer

    bench = CoupledPhysics(sim_config)
    servers = [
        SCPIServer(SimulatedKeithley2400(bench)).start(),
        SCPIServer(SimulatedKeithley6485(bench)).start(),
    ]
    smu = keithley2400.connect(servers[0].resource, timeout_s=10)
    pa = keithley6485.connect(servers[1].resource, timeout_s=10)
    backend = SMUPhotometerRig(smu, pa, compliance_v=10.0)
    yield backend, bench
    backend.shutdown()
    smu.close()
    pa.close()
    for s in servers:
        s.stop()


def test_one_channel_constant_current_with_photodiode(rig):
    backend, bench = rig
    assert isinstance(backend, LifetimeRig)
    assert backend.channels == 1
    assert "2400" in backend.identity().model
    assert backend.status(1) == "OFF"
    backend.set_current(1, AMPS)
    backend.set_output(1, True)
    bench.clock.sleep(60)
    reading = backend.measure(1)
    truth = bench.truth()
    assert reading.status == "OK"
    assert reading.current == pytest.approx(AMPS, rel=1e-3)
    assert reading.voltage == pytest.approx(truth["voltage_v"], rel=1e-3)
    signal = truth["photodiode_signal_a"] + truth["photodiode_dark_current_a"]
    assert reading.photodiode_current == pytest.approx(signal, rel=0.01)
    backend.set_output(1, False)
    assert backend.measure(1).status == "OFF"
    assert bench.operating_point.output_on is False


@pytest.mark.parametrize("kind, status", [("open", "OPEN"), ("short", "SHORT")])
def test_device_faults_are_classified_and_latched(rig, kind, status):
    backend, bench = rig
    backend.set_current(1, AMPS)
    backend.set_output(1, True)
    assert backend.measure(1).status == "OK"
    bench.set_device_fault(kind)
    assert backend.measure(1).status == status
    bench.set_device_fault(None)
    assert backend.status(1) == status  # latched until the output goes off
    backend.set_output(1, False)
    assert backend.status(1) == "OFF"


def test_channel_and_range_checks(rig):
    backend, _ = rig
    with pytest.raises(InstrumentSettingError, match="channel 2 does not exist"):
        backend.measure(2)
    with pytest.raises(InstrumentSettingError, match="outside 0..1.05 A"):
        backend.set_current(1, 2.0)
