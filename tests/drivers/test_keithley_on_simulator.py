"""The Keithley drivers against the simulated bench, through the real transport:
SCPIServer on a loopback port, pyvisa-py TCPIP SOCKET, the drivers' own SCPI.

Ground truth comes from the simulator side (``bench.operating_point``, the device model,
``bench.photodiode_current``), never from the driver under test."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from labrig.config import load_config
from labrig.drivers import keithley2400, keithley6485
from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentSettingError,
    InstrumentTimeoutError,
    OutputStateUnknownError,
    OverRangeError,
    WrongInstrumentError,
)
from labrig.simulators.keithley2400 import SimulatedKeithley2400
from labrig.simulators.physics import CoupledPhysics
from labrig.simulators.server import SCPIServer

COMPLIANCE_A = 0.05  # sim.yaml default_compliance_a


@pytest.fixture
def bench() -> CoupledPhysics:
    return CoupledPhysics(load_config("sim"))


@pytest.fixture
def smu_sim(bench) -> Iterator[tuple[SimulatedKeithley2400, SCPIServer]]:
    sim = SimulatedKeithley2400(bench)
    server = SCPIServer(sim).start()
    yield sim, server
    server.stop()


@pytest.fixture
def pico_server(bench) -> Iterator[SCPIServer]:
    from labrig.simulators.keithley6485 import SimulatedKeithley6485

    server = SCPIServer(SimulatedKeithley6485(bench)).start()
    yield server
    server.stop()


@pytest.fixture
def smu(smu_sim) -> Iterator[keithley2400.Keithley2400]:
    drv = keithley2400.connect(smu_sim[1].resource, timeout_s=2.0)
    yield drv
    drv.shutdown(ramp=False)
    drv.close()


@pytest.fixture
def pico(pico_server) -> Iterator[keithley6485.Keithley6485]:
    # sim.yaml's 5 s: the bench's first lit photodiode reading imports colour-science
    # (~2 s of wall time on a busy machine) inside the READ? transaction
    drv = keithley6485.connect(pico_server.resource, timeout_s=5.0)
    yield drv
    drv.shutdown()
    drv.close()


def test_identity(smu):
    ident = smu.identity()
    assert (ident.manufacturer, ident.model) == ("KEITHLEY INSTRUMENTS INC.", "2400")


def test_201_point_list_sweep_in_one_read(smu, bench):
    levels = np.linspace(0.0, 6.0, 201)
    smu.configure_source("voltage", COMPLIANCE_A, nplc=0.1)
    points = smu.sweep(levels)
    assert len(points) == 201
    volts = np.array([p.voltage for p in points])
    amps = np.array([p.current for p in points])
    limited = np.array([p.in_compliance for p in points])
    assert volts[~limited] == pytest.approx(levels[~limited], abs=1e-3)
    # an LED: nothing below ~1.5 V, then a steep rise over decades
    assert abs(amps[levels < 1.5]).max() < 1e-7
    assert amps[-1] > 1e3 * max(abs(amps[levels < 2.0]).max(), 1e-12)
    truth = bench.device.current_at(4.0)
    at4 = amps[np.argmin(abs(levels - 4.0))]
    assert at4 == pytest.approx(truth, rel=0.25)  # heating/noise move it, not by decades
    assert bench.operating_point.output_on  # a sweep leaves the output as it was set: on


def test_201_point_staircase_sweep_in_one_read(smu):
    smu.configure_source("voltage", COMPLIANCE_A, nplc=0.01, autozero=False)
    points = smu.staircase_sweep(-0.7, 0.1, 201)
    assert len(points) == 201
    assert points[0].voltage == pytest.approx(-0.7, abs=1e-3)
    assert points[-1].voltage == pytest.approx(0.1, abs=1e-3)
    stamps = [p.time for p in points]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))


def test_point_by_point_measure_and_output_state(smu, bench):
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.set_level(3.0)
    assert not bench.operating_point.output_on
    smu.enable_output()
    assert smu.output_enabled and bench.operating_point.output_on
    first = smu.measure()
    assert first.voltage == pytest.approx(3.0, abs=1e-3)
    assert first.current == pytest.approx(bench.operating_point.current, rel=0.05)
    assert not first.in_compliance
    second = smu.measure()
    assert second.time > first.time
    smu.disable_output()
    assert not smu.output_enabled and not bench.operating_point.output_on


def test_current_source_reads_the_device_voltage(smu, bench):
    smu.configure_source("current", 8.0)
    smu.set_level(1e-3)
    smu.enable_output()
    r = smu.measure()
    assert r.current == pytest.approx(1e-3, rel=1e-3)
    assert r.voltage == pytest.approx(bench.device.voltage_at(1e-3), rel=0.05)


def test_compliance_is_flagged_from_the_status_word(smu, bench):
    smu.configure_source("voltage", 1e-4)
    smu.set_level(6.0)
    smu.enable_output()
    r = smu.measure()
    assert r.in_compliance
    assert abs(r.current) == pytest.approx(1e-4, rel=0.02)
    assert r.voltage < 6.0  # the SMU limited current, so V fell below the programmed level
    assert bench.operating_point.in_compliance


def test_sweep_aborts_early_on_compliance(smu, bench):
    """:SOUR:SWE:CAB EARL aborts at the start of the first SDM cycle in compliance (2400
    manual §10), so that point is not measured: the sweep simply comes back short."""
    levels = np.linspace(0, 6, 61)
    smu.configure_source("voltage", 1e-3, nplc=0.01)
    points = smu.sweep(levels, abort_on_compliance=True)
    assert 1 <= len(points) < 61
    assert not any(p.in_compliance for p in points)
    assert points[-1].current < 1e-3 < bench.device.current_at(levels[len(points)])
    assert not bench.operating_point.in_compliance or not bench.operating_point.output_on


def test_sweep_aborted_at_its_first_point_returns_nothing(smu):
    smu.configure_source("voltage", 1e-6, nplc=0.01)
    assert smu.sweep([5.0, 6.0], abort_on_compliance=True) == []


def test_pulsed_cycles_leave_the_output_off(smu, bench):
    smu.configure_source("voltage", COMPLIANCE_A)
    pulses = smu.pulsed_cycles(4.0, 5, source_delay=1e-3, nplc=0.01, off_time=0.01)
    assert len(pulses) == 5
    assert all(p.current > 0 for p in pulses)
    assert all(b.time > a.time for a, b in zip(pulses, pulses[1:], strict=False))
    assert not bench.operating_point.output_on


def test_shutdown_ramps_to_zero_and_turns_off(smu, bench):
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.set_level(4.0)
    smu.enable_output()
    smu.shutdown()
    assert not bench.operating_point.output_on
    assert smu.query_floats(":SOUR:VOLT?")[0] == pytest.approx(0.0)


def test_shutdown_after_a_read_cut_short_by_ctrl_c(smu, bench, monkeypatch):
    """Ctrl-C inside a sweep's :READ? leaves 201 readings in flight; shutdown must still
    turn the output off, and the next measurement must get its own reply."""
    smu.configure_source("voltage", COMPLIANCE_A, nplc=0.01)

    def interrupted(**_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(smu.adapter, "read", interrupted)
    with pytest.raises(KeyboardInterrupt):
        smu.sweep(np.linspace(0, 4, 201))
    monkeypatch.undo()
    smu.shutdown()
    assert not bench.operating_point.output_on
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.set_level(2.0)
    smu.enable_output()
    assert smu.measure().voltage == pytest.approx(2.0, abs=1e-3)


def _counting_clears(drv, monkeypatch) -> list[int]:
    """Counts the device clears sent on ``drv``'s link (each still goes through)."""
    conn = drv.adapter.connection
    clears = []
    real = conn.clear

    def clear():
        clears.append(1)
        real()

    monkeypatch.setattr(conn, "clear", clear)
    return clears


def test_shutdown_of_a_link_in_step_sends_no_device_clear(smu, bench, monkeypatch):
    """A clear of a TCPIP SOCKET waits for 0.1 s of silence: only paid when a reply may
    be on the link."""
    clears = _counting_clears(smu, monkeypatch)
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.set_level(3.0)
    smu.enable_output()
    smu.measure()
    smu.shutdown()
    assert clears == [] and not bench.operating_point.output_on


def test_shutdown_after_a_query_never_read_clears_its_reply(smu, bench, monkeypatch):
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.set_level(3.0)
    smu.enable_output()
    clears = _counting_clears(smu, monkeypatch)
    smu.write(":READ?")  # Ctrl-C between the query and its read
    smu.shutdown()
    assert clears == [1] and not bench.operating_point.output_on
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.set_level(2.0)
    smu.enable_output()
    assert smu.measure().voltage == pytest.approx(2.0, abs=1e-3)


def test_out_of_range_level_reaches_no_instrument(smu, smu_sim):
    smu.configure_source("voltage", COMPLIANCE_A)
    with pytest.raises(InstrumentSettingError, match="±210 V"):
        smu.set_level(500.0)
    assert smu.query_floats(":SOUR:VOLT?")[0] == pytest.approx(0.0)
    assert smu.query(":SYST:ERR?").startswith("0")


@pytest.mark.parametrize("first", ["arm_count", "trigger_count"])
def test_count_product_above_2500_reaches_no_instrument(smu, first):
    """Unguarded, the simulated 2400 files -221 and keeps 1 (like the instrument); the
    driver refuses first, so the instrument's counts and error queue stay clean."""
    smu.write(":ARM:COUN 100;:TRIG:COUN 100")
    assert smu.query(":SYST:ERR?").startswith("-221")
    assert smu.query(":ARM:COUN?;:TRIG:COUN?").strip() == "100;1"
    smu.write(":ARM:COUN 1")
    second = "trigger_count" if first == "arm_count" else "arm_count"
    setattr(smu, first, 100)
    with pytest.raises(InstrumentSettingError, match="10000 readings"):
        setattr(smu, second, 100)
    assert (smu.arm_count, smu.trigger_count) == ((100, 1) if first == "arm_count" else (1, 100))
    assert smu.query(":SYST:ERR?").startswith("0")


def test_wrong_model_is_refused(smu_sim):
    with pytest.raises(WrongInstrumentError, match="6485.*2400"):
        keithley6485.connect(smu_sim[1].resource, timeout_s=2.0)


def test_2400_driver_refuses_the_6485(pico_server):
    with pytest.raises(WrongInstrumentError, match="2400.*6485"):
        keithley2400.connect(pico_server.resource, timeout_s=2.0)


# ----------------------------------------------------------------------- faults
def _drive(smu: keithley2400.Keithley2400) -> None:
    smu.configure_source("voltage", COMPLIANCE_A, nplc=0.01, autozero=False)
    smu.set_level(3.0)
    smu.enable_output()
    assert smu.output_enabled  # a query: the simulator has obeyed everything before it


@pytest.mark.parametrize(
    ("kind", "after", "error", "operation", "confirmed"),
    [
        ("timeout", 0, InstrumentTimeoutError, "measure", False),
        ("garbled", 0, GarbledReplyError, "measure", False),
        ("disconnect", 100, InstrumentDisconnectedError, "sweep", True),  # drops at point 100
    ],
)
def test_link_fault_raises_its_error_and_shutdown_leaves_output_off(
    smu_sim, bench, kind, after, error, operation, confirmed
):
    """The output goes off whatever the link does; shutdown says so only when it could
    read the off state back (a mute or garbling instrument obeyed, but nobody knows)."""
    sim, server = smu_sim
    smu = keithley2400.connect(server.resource, timeout_s=0.5)
    try:
        _drive(smu)
        assert bench.operating_point.output_on
        sim.inject_fault(kind, after=after)
        with pytest.raises(error):
            if operation == "sweep":
                smu.sweep(np.linspace(0.0, 4.0, 201))
            else:
                smu.measure()
        if confirmed:
            smu.shutdown()
        else:
            with pytest.raises(OutputStateUnknownError, match="output state unknown"):
                smu.shutdown()
        assert not bench.operating_point.output_on
    finally:
        smu.close()


def test_device_short_shows_as_compliance_and_shutdown_leaves_output_off(smu, smu_sim, bench):
    _drive(smu)
    smu_sim[0].inject_fault("short", after=0)
    points = smu.sweep(np.linspace(1.0, 3.0, 5))
    assert all(p.in_compliance for p in points)
    assert all(abs(p.current) == pytest.approx(COMPLIANCE_A, rel=0.02) for p in points)
    smu.shutdown()
    assert not bench.operating_point.output_on


def test_device_open_reads_no_current_and_shutdown_leaves_output_off(smu, smu_sim, bench):
    _drive(smu)
    smu_sim[0].inject_fault("open", after=0)
    points = smu.sweep(np.linspace(3.0, 5.0, 5))
    assert all(abs(p.current) < 1e-9 and not p.in_compliance for p in points)
    smu.shutdown()
    assert not bench.operating_point.output_on


# ----------------------------------------------------------------- photometer
def test_photocurrent_rises_with_drive(smu, pico, bench):
    pico.configure(nplc=1)
    pico.zero_correct()
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.enable_output()
    readings = []
    for volts in (2.4, 3.0, 3.6):
        smu.set_level(volts)
        smu.measure()
        r = pico.read()
        readings.append(r.current)
        assert r.current == pytest.approx(bench.photodiode_current(), rel=0.1)
    assert readings[0] < readings[1] < readings[2]
    burst = pico.read_burst(10)
    assert len(burst) == 10
    assert np.mean([b.current for b in burst]) == pytest.approx(readings[-1], rel=0.1)


def test_photometer_over_range_on_a_too_small_range(smu, pico):
    smu.configure_source("voltage", COMPLIANCE_A)
    smu.set_level(4.0)
    smu.enable_output()
    smu.measure()
    pico.configure(nplc=1, current_range=2e-9)
    with pytest.raises(OverRangeError, match="2e-09 A range"):
        pico.read()


def test_injected_photometer_over_range(pico, pico_server):
    pico.configure(nplc=1, current_range=2e-6)
    pico_server.instrument.inject_fault("overrange", after=0)
    with pytest.raises(OverRangeError, match="photometer over range at 2e-06 A range"):
        pico.read()


@pytest.mark.parametrize(
    ("kind", "after", "error"),
    [
        ("timeout", 0, InstrumentTimeoutError),
        ("garbled", 0, GarbledReplyError),
        ("disconnect", 10, InstrumentDisconnectedError),  # drops inside the 20-reading burst
    ],
)
def test_photometer_link_faults_raise_their_errors(pico_server, kind, after, error):
    pico = keithley6485.connect(pico_server.resource, timeout_s=0.5)
    try:
        pico.configure(nplc=0.01, current_range=2e-6)
        pico_server.instrument.inject_fault(kind, after=after)
        with pytest.raises(error):
            pico.read_burst(20)
        pico.shutdown()  # never raises, even on a dead or silent link
    finally:
        pico.close()


def test_photometer_nplc_limit_follows_the_line_frequency(pico, bench):
    assert bench.config.simulation.line_frequency_hz == 50
    with pytest.raises(InstrumentSettingError, match="50 Hz"):
        pico.configure(nplc=55)
    pico.configure(nplc=50)
    assert pico.query(":SYST:ERR?").startswith("0")


def test_ctrl_c_in_a_sweep_taking_real_time(monkeypatch):
    """On a bench with real instrument timing the interrupted sweep's reply arrives only
    after shutdown has cleared the link: the stale readings must not be taken for the
    answer to shutdown's own OUTPUT? check, nor for the next measurement's."""
    from labrig.clock import WallClock

    bench = CoupledPhysics(load_config("sim"), clock=WallClock())
    server = SCPIServer(SimulatedKeithley2400(bench)).start()
    smu = keithley2400.connect(server.resource, timeout_s=3.0)
    try:
        smu.configure_source("voltage", COMPLIANCE_A, nplc=0.5, autozero=False, source_delay=0)
        monkeypatch.setattr(
            smu.adapter, "read", lambda **_: (_ for _ in ()).throw(KeyboardInterrupt)
        )
        with pytest.raises(KeyboardInterrupt):
            smu.sweep(np.linspace(0, 3, 51))  # ~0.5 s of integration on the simulator
        monkeypatch.undo()
        smu.shutdown()
        assert not bench.operating_point.output_on
        assert smu.output_enabled is False
        smu.configure_source("voltage", COMPLIANCE_A, nplc=0.01, autozero=False)
        smu.set_level(2.0)
        smu.enable_output()
        assert smu.measure().voltage == pytest.approx(2.0, abs=1e-3)
    finally:
        smu.shutdown(ramp=False)
        smu.close()
        server.stop()
