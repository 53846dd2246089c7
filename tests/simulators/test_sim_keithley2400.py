"""The simulated Keithley 2400 on the real CoupledPhysics: SCPI, state, physics, timing,
faults — in process and through pyvisa-py over loopback TCP."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
import pyvisa

from labrig.clock import SimulatedClock
from labrig.config import load_config
from labrig.simulators.keithley2400 import (
    ST_COMPLIANCE,
    ST_RANGE_COMPLIANCE,
    SimulatedKeithley2400,
)
from labrig.simulators.physics import CoupledPhysics
from labrig.simulators.server import SCPIServer


@pytest.fixture
def bench() -> CoupledPhysics:
    return CoupledPhysics(load_config("sim"), clock=SimulatedClock(start=0.0))


@pytest.fixture
def smu(bench: CoupledPhysics) -> SimulatedKeithley2400:
    return SimulatedKeithley2400(bench)


@pytest.fixture
def server(smu: SimulatedKeithley2400):
    with SCPIServer(smu) as srv:
        yield srv


@pytest.fixture
def visa(server: SCPIServer):
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(
        server.resource, read_termination="\n", write_termination="\n", timeout=2000
    )
    yield inst
    inst.close()
    rm.close()


def errors(smu: SimulatedKeithley2400) -> list[str]:
    out = []
    while (e := smu.handle(":SYST:ERR?")) != '0,"No error"':
        out.append(e)
    return out


def readings(reply: str, n_elements: int = 5) -> np.ndarray:
    return np.array([float(x) for x in reply.split(",")]).reshape(-1, n_elements)


def test_idn_is_the_real_format(smu: SimulatedKeithley2400) -> None:
    idn = smu.handle("*IDN?")
    maker, model, serial, firmware = idn.split(",")
    assert (maker, model) == ("KEITHLEY INSTRUMENTS INC.", "MODEL 2400")
    assert serial.isdigit() and firmware.startswith("C30")


def test_reset_state(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:FUNC CURR;:SOUR:CURR 1e-3;:OUTP ON;:SENS:CURR:NPLC 5;:TRIG:COUN 7")
    smu.handle("*RST")
    q = smu.handle(
        ":SOUR:FUNC?;:SOUR:VOLT?;:SOUR:VOLT:MODE?;:OUTP?;:SENS:CURR:PROT?;:SENS:VOLT:PROT?;"
        ":SENS:CURR:NPLC?;:TRIG:COUN?;:ARM:COUN?;:FORM:ELEM?;:SYST:AZER?;:SOUR:CLE:AUTO?;"
        ":SOUR:DEL:AUTO?;:OUTP:SMOD?;:SOUR:SWE:CAB?;:SOUR:SWE:POIN?;:SENS:FUNC?"
    )
    assert q.split(";") == [
        "VOLT", "+0.000000E+00", "FIX", "0", "+1.050000E-04", "+2.100000E+01",
        "+1.000000E+00", "1", "1", "VOLT,CURR,RES,TIME,STAT", "1", "0", "1", "NORM",
        "NEV", "2500", '"CURR:DC"',
    ]  # fmt: skip
    assert not smu.physics.operating_point.output_on


def test_out_of_range_is_222_and_leaves_the_setting(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:VOLT 5")
    smu.handle(":SOUR:VOLT 250")
    smu.handle(":SENS:CURR:NPLC 20")
    smu.handle(":SENS:CURR:NPLC 0.001")
    smu.handle(":TRIG:COUN 2501")
    smu.handle(":SENS:CURR:PROT 2")
    assert smu.handle(":SOUR:VOLT?;:SENS:CURR:NPLC?;:TRIG:COUN?") == "+5.000000E+00;+1.000000E+00;1"
    assert errors(smu) == ['-222,"Parameter data out of range"'] * 5


def test_settings_conflicts_are_221(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SENS:CURR:PROT 0.5;:SOUR:VOLT 100")  # > 21 V only up to 105 mA
    smu.handle(":ARM:COUN 10;:TRIG:COUN 300")  # 3000 readings > 2500
    assert smu.handle(":SOUR:VOLT?;:TRIG:COUN?") == "+0.000000E+00;1"
    assert errors(smu) == ['-221,"Settings conflict"'] * 2


def test_raising_the_current_limit_at_high_voltage_is_221(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SENS:CURR:PROT 0.01;:SOUR:VOLT 100;:SENS:CURR:PROT 0.5")
    assert smu.handle(":SOUR:VOLT?;:SENS:CURR:PROT?") == "+1.000000E+02;+1.000000E-02"
    assert errors(smu) == ['-221,"Settings conflict"']


def test_min_max_queries(smu: SimulatedKeithley2400) -> None:
    assert smu.handle(":SOUR:VOLT? MAX;:SOUR:CURR? MIN") == "+2.100000E+02;-1.050000E+00"
    assert smu.handle(":SENS:CURR:PROT? MAX;:SOUR:VOLT:RANG? MIN") == "+1.050000E+00;+2.100000E-01"


def test_unknown_header_is_113(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:SWE:STAR 1")  # start lives under :SOUR:VOLT, not :SOUR:SWE
    assert errors(smu) == ['-113,"Undefined header"']


def test_fixed_source_range_limits_the_level(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:VOLT:RANG 2")
    assert smu.handle(":SOUR:VOLT:RANG?;:SOUR:VOLT:RANG:AUTO?") == "+2.100000E+00;0"
    smu.handle(":SOUR:VOLT 5")
    assert errors(smu) == ['-222,"Parameter data out of range"']


def test_list_takes_100_values_per_command_and_appends_to_2500(smu: SimulatedKeithley2400) -> None:
    values = ",".join(["1"] * 101)
    smu.handle(f":SOUR:LIST:VOLT {values}")
    assert errors(smu) == ['-223,"Too much data"']
    smu.handle(":SOUR:LIST:VOLT " + ",".join(["1"] * 100))
    smu.handle(":SOUR:LIST:VOLT:APP " + ",".join(["2"] * 100))
    assert smu.handle(":SOUR:LIST:VOLT:POIN?") == "200"


def test_read_with_output_off_files_803_and_sends_nothing(smu: SimulatedKeithley2400) -> None:
    assert smu.handle(":READ?") is None
    assert errors(smu) == ['803,"Not permitted with OUTPUT off"']


def test_single_reading_matches_the_device(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:VOLT 3;:SENS:CURR:PROT 0.05;:OUTP ON")
    v, i, r, t, stat = readings(smu.handle(":READ?"))[0]
    truth = smu.physics.device.current_at(3.0)
    assert v == 3.0
    assert i == pytest.approx(truth, rel=1e-3)
    assert r == 9.91e37
    assert int(stat) & ST_COMPLIANCE == 0
    assert smu.physics.operating_point.output_on


def test_201_point_list_sweep_in_one_read_through_pyvisa(
    visa: pyvisa.resources.MessageBasedResource, smu: SimulatedKeithley2400
) -> None:
    levels = np.round(np.linspace(0.0, 6.0, 201), 4)
    visa.write(":SOUR:FUNC VOLT;:SENS:CURR:PROT 0.05;:FORM:ELEM VOLT,CURR,STAT")
    for start in range(0, 201, 100):
        verb = ":SOUR:LIST:VOLT" if start == 0 else ":SOUR:LIST:VOLT:APP"
        visa.write(f"{verb} " + ",".join(f"{v:g}" for v in levels[start : start + 100]))
    visa.write(":SOUR:VOLT:MODE LIST;:TRIG:COUN 201;:OUTP ON")
    data = readings(visa.query(":READ?"), 3)
    assert data.shape == (201, 3)
    np.testing.assert_allclose(data[:, 0], levels, atol=1e-9)
    assert np.all(np.diff(data[-150:, 1]) > 0)  # the LED conducts more at every step
    assert visa.query(":SYST:ERR?") == '0,"No error"'


def test_linear_sweep_points_and_step(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:VOLT:STAR -1;STOP 1;:SOUR:SWE:POIN 5")
    assert smu.handle(":SOUR:VOLT:STEP?") == "+5.000000E-01"
    smu.handle(":SOUR:VOLT:STEP 0.25")
    assert smu.handle(":SOUR:SWE:POIN?") == "9"
    smu.handle(":SOUR:VOLT:MODE SWE;:TRIG:COUN 9;:SENS:CURR:PROT 0.01;:OUTP ON")
    data = readings(smu.handle(":READ?"))
    np.testing.assert_allclose(data[:, 0], np.linspace(-1, 1, 9))
    smu.handle(":SOUR:SWE:DIR DOWN")
    data = readings(smu.handle(":READ?"))
    np.testing.assert_allclose(data[:, 0], np.linspace(1, -1, 9))


def test_compliance_sets_bit_3_and_the_current_sits_at_the_limit(
    smu: SimulatedKeithley2400,
) -> None:
    smu.handle(":SOUR:VOLT:STAR 2;STOP 8;:SOUR:SWE:POIN 7;:SOUR:VOLT:MODE SWE;:TRIG:COUN 7")
    smu.handle(":SENS:CURR:PROT 1e-3;:OUTP ON")
    data = readings(smu.handle(":READ?"))
    limited = data[:, 4].astype(int) & ST_COMPLIANCE != 0
    assert not limited[0] and limited[-1]
    np.testing.assert_allclose(data[limited, 1], 1e-3)
    assert np.all(data[limited, 0] < np.linspace(2, 8, 7)[limited])  # V fell to hold 1 mA


def test_fixed_measure_range_below_compliance_is_range_compliance(
    smu: SimulatedKeithley2400,
) -> None:
    smu.handle(":SENS:CURR:PROT 0.05;:SENS:CURR:RANG 1e-4;:SOUR:VOLT 6;:OUTP ON")
    v, i, _, _, stat = readings(smu.handle(":READ?"))[0]
    assert i == pytest.approx(1.05e-4)
    assert int(stat) & ST_RANGE_COMPLIANCE and not int(stat) & ST_COMPLIANCE


@pytest.mark.parametrize("mode, expected", [("NEV", 7), ("LATE", 5), ("EARL", 4)])
def test_sweep_abort_on_compliance(smu: SimulatedKeithley2400, mode: str, expected: int) -> None:
    # 2..8 V at 1 mA compliance: the fifth point (6 V) is the first in compliance
    smu.handle(":SOUR:VOLT:STAR 2;STOP 8;:SOUR:SWE:POIN 7;:SOUR:VOLT:MODE SWE;:TRIG:COUN 7")
    smu.handle(f":SENS:CURR:PROT 1e-3;:SOUR:SWE:CAB {mode};:OUTP ON")
    data = readings(smu.handle(":READ?"))
    assert len(data) == expected
    if mode != "NEV":
        assert smu.handle(":OUTP?") == "0"
        assert not smu.physics.operating_point.output_on


@pytest.mark.parametrize(
    "nplc, autozero, delay",
    [(1.0, "ON", 0.0), (1.0, "OFF", 0.0), (10.0, "ON", 0.005), (0.01, "OFF", 0.0)],
)
def test_timing_follows_nplc_autozero_delay_and_line_frequency(
    smu: SimulatedKeithley2400, nplc: float, autozero: str, delay: float
) -> None:
    n = 20
    smu.handle(f":SENS:CURR:NPLC {nplc};:SYST:AZER {autozero};:SOUR:DEL {delay}")
    smu.handle(f":TRIG:COUN {n};:SOUR:VOLT 2;:SENS:CURR:PROT 0.01;:OUTP ON")
    clock = smu.physics.clock
    t0 = clock.time()
    data = readings(smu.handle(":READ?"))
    elapsed = clock.time() - t0
    f_line = smu.physics.config.simulation.line_frequency_hz
    cls = SimulatedKeithley2400
    cycle = delay + 1e-4 + nplc / f_line * (3 if autozero == "ON" else 1)
    firmware = cls.ARM_OVERHEAD_S + n * (cls.READING_OVERHEAD_S + cls.BUS_PER_READING_S)
    assert elapsed == pytest.approx(n * cycle + firmware, rel=1e-6)
    # TIME is clock time minus power-up time: resolution ~0.2 µs at a Unix-epoch clock;
    # stamps are exactly one cycle apart, the first one cycle after the :READ? (the
    # firmware's time is spent after the last measurement)
    np.testing.assert_allclose(np.diff(data[:, 3]), cycle, rtol=1e-3, atol=1e-6)
    assert data[0, 3] == pytest.approx(t0 - smu._t0 + cycle, abs=1e-6)


def test_point_by_point_pays_the_firmware_cost_a_sweep_pays_once(
    smu: SimulatedKeithley2400,
) -> None:
    """Datasheet system speeds at NPLC 0.01, autozero off, source delay 0: ~1100
    readings/s in a sweep to memory, ~80/s as single source + :READ? over the bus."""
    cls = SimulatedKeithley2400
    smu.handle(":SENS:CURR:NPLC 0.01;:SYST:AZER OFF;:SOUR:DEL 0;:SENS:CURR:PROT 0.01")
    smu.handle(":SOUR:VOLT 1;:OUTP ON")
    clock = smu.physics.clock
    t0 = clock.time()
    for v in np.linspace(0.0, 2.0, 10):
        smu.handle(f":SOUR:VOLT {v}")
        smu.handle(":READ?")
    single = (clock.time() - t0) / 10
    f_line = smu.physics.config.simulation.line_frequency_hz
    cycle = 1e-4 + 0.01 / f_line
    expected = cls.ARM_OVERHEAD_S + cycle + cls.READING_OVERHEAD_S + cls.BUS_PER_READING_S
    assert single == pytest.approx(expected, rel=1e-6)
    assert 75 <= 1 / single <= 85
    smu.handle(":SOUR:VOLT:MODE LIST;:SOUR:LIST:VOLT 0,0.5,1,1.5,2;:TRIG:COUN 5")
    t0 = clock.time()
    smu.handle(":INIT")
    in_sweep = (clock.time() - t0 - cls.ARM_OVERHEAD_S) / 5
    assert in_sweep == pytest.approx(cycle + cls.READING_OVERHEAD_S, rel=1e-6)
    assert 1080 <= 1 / in_sweep <= 1170


def test_line_frequency_is_the_benchs(smu: SimulatedKeithley2400) -> None:
    assert smu.handle(":SYST:LFR?") == str(smu.physics.config.simulation.line_frequency_hz)


def test_auto_clear_turns_the_output_on_only_for_each_cycle(smu: SimulatedKeithley2400) -> None:
    """The pulse building block: on-time per cycle = source delay + integration time."""
    bench = smu.physics
    events: list[tuple[str, float]] = []
    for name in ("source_voltage", "output_off"):
        original = getattr(bench, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            events.append((_name, bench.clock.time()))
            return _original(*args, **kwargs)

        setattr(bench, name, spy)
    smu.handle(":SOUR:CLE:AUTO ON;:SOUR:DEL 0.0005;:SENS:CURR:NPLC 0.05;:SYST:AZER OFF")
    smu.handle(":SOUR:VOLT 4;:SENS:CURR:PROT 0.05;:TRIG:COUN 5;:ARM:SOUR TIM;:ARM:TIM 0.1")
    events.clear()
    data = readings(smu.handle(":READ?"))
    assert len(data) == 5 and np.all(data[:, 1] > 1e-4)
    ons = [t for name, t in events if name == "source_voltage"]
    offs = [t for name, t in events if name == "output_off"]
    assert len(ons) == 5
    on_times = [min(t for t in offs if t >= on) - on for on in ons]
    expected = 0.0005 + 0.05 / bench.config.simulation.line_frequency_hz
    np.testing.assert_allclose(on_times, expected, rtol=1e-6)
    assert smu.handle(":OUTP?") == "0" and not bench.operating_point.output_on


def test_timed_arm_spaces_the_bursts(smu: SimulatedKeithley2400) -> None:
    smu.handle(":ARM:SOUR TIM;:ARM:TIM 0.5;:ARM:COUN 3;:TRIG:COUN 2;:SOUR:VOLT 2;:OUTP ON")
    t = readings(smu.handle(":READ?"))[:, 3]
    assert len(t) == 6
    np.testing.assert_allclose(t[2] - t[0], 0.5, rtol=1e-6)
    np.testing.assert_allclose(t[4] - t[2], 0.5, rtol=1e-6)


def test_sweep_returns_to_the_bias_level(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:VOLT 1;:SOUR:LIST:VOLT 3,4;:SOUR:VOLT:MODE LIST;:TRIG:COUN 2;")
    smu.handle(":SENS:CURR:PROT 0.05;:OUTP ON")
    smu.handle(":READ?")
    assert smu.physics.operating_point.voltage == pytest.approx(1.0)


def test_fetch_returns_the_last_readings(smu: SimulatedKeithley2400) -> None:
    assert smu.handle(":FETC?") is None
    assert errors(smu) == ['-230,"Data corrupt or stale"']
    smu.handle(":SOUR:VOLT 2;:OUTP ON;:TRIG:COUN 3;:INIT")
    assert len(readings(smu.handle(":FETC?"))) == 3


def test_current_source_mode(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:FUNC CURR;:SOUR:CURR 1e-3;:SENS:VOLT:PROT 10;:OUTP ON")
    v, i, _, _, stat = readings(smu.handle(":READ?"))[0]
    assert i == 1e-3
    assert v == pytest.approx(smu.physics.device.voltage_at(1e-3), rel=1e-3)
    assert int(stat) & (1 << 15)  # I-source


def test_pymeasure_keithley2400_works_against_it(server: SCPIServer, smu) -> None:
    from pymeasure.instruments.keithley import Keithley2400

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = Keithley2400(server.resource, read_termination="\n", write_termination="\n")
        k.apply_voltage(compliance_current=0.01)
        k.source_voltage = 3.0
        k.enable_source()
        assert k.current == pytest.approx(smu.physics.device.current_at(3.0), rel=1e-3)
        k.shutdown()
        assert k.check_errors() == []
        k.adapter.close()
    server.stop()  # runs what the client sent last
    assert not smu.output and not smu.physics.operating_point.output_on


# ----------------------------------------------------------------------- faults
def test_short_fault_puts_the_current_at_compliance(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:VOLT 2;:SENS:CURR:PROT 0.01;:OUTP ON;:TRIG:COUN 4")
    smu.inject_fault("short", after=2)
    data = readings(smu.handle(":READ?"))
    assert np.all(data[:2, 1] < 1e-6)
    np.testing.assert_allclose(data[2:, 1], 0.01)
    assert np.all(data[2:, 4].astype(int) & ST_COMPLIANCE)
    smu.clear_faults()
    assert readings(smu.handle(":READ?"))[0, 1] < 1e-6


def test_open_fault_reads_no_current(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SOUR:VOLT 5;:SENS:CURR:PROT 0.05;:OUTP ON")
    assert readings(smu.handle(":READ?"))[0, 1] > 1e-4
    smu.inject_fault("open")
    assert abs(readings(smu.handle(":READ?"))[0, 1]) < 1e-9


def test_timeout_fault_times_out_but_still_obeys(visa, smu: SimulatedKeithley2400) -> None:
    visa.write(":SOUR:VOLT 3;:SENS:CURR:PROT 0.01;:OUTP ON")
    assert visa.query(":OUTP?") == "1"  # the server has run everything sent so far
    smu.inject_fault("timeout", after=1)
    assert visa.query("*IDN?").startswith("KEITHLEY")
    visa.timeout = 300
    with pytest.raises(pyvisa.errors.VisaIOError) as info:
        visa.query(":READ?")
    assert info.value.error_code == pyvisa.constants.StatusCode.error_timeout
    visa.write(":OUTP OFF")  # obeyed although the instrument no longer answers
    deadline = time.monotonic() + 2
    while smu.output and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not smu.output and not smu.physics.operating_point.output_on
    smu.clear_faults()
    visa.timeout = 2000
    assert visa.query(":OUTP?") == "0"
    assert not smu.physics.operating_point.output_on


def test_garbled_fault_gives_an_unparsable_reply(visa, smu: SimulatedKeithley2400) -> None:
    visa.write(":SOUR:VOLT 3;:SENS:CURR:PROT 0.01;:OUTP ON")
    assert visa.query(":OUTP?") == "1"
    smu.inject_fault("garbled")
    visa.write(":READ?")
    data = visa.read_raw()
    with pytest.raises((UnicodeDecodeError, ValueError)):
        [float(x) for x in data.decode("ascii").strip().split(",")]


def test_disconnect_fault_drops_the_connection_mid_sweep(
    server: SCPIServer, smu: SimulatedKeithley2400
) -> None:
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
    inst.timeout = 2000
    inst.write(":SOUR:LIST:VOLT " + ",".join(["2"] * 100) + ";:SOUR:VOLT:MODE LIST")
    inst.write(":TRIG:COUN 100;:SENS:CURR:PROT 0.01;:OUTP ON")
    smu.inject_fault("disconnect", after=40)
    with pytest.raises(ConnectionError):  # the link is reset: not a mere time-out
        inst.query(":READ?")
    assert len(smu.last) == 40  # the sweep stopped where the link dropped
    inst.close()
    # one-shot: a reconnect works, so the bench can still switch the output off
    inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
    inst.write(":OUTP OFF")
    assert inst.query(":OUTP?") == "0"
    inst.close()
    rm.close()
    assert not smu.physics.operating_point.output_on


def test_faults_from_config(bench: CoupledPhysics) -> None:
    from labrig.config import FaultSpec

    smu = SimulatedKeithley2400(bench, faults=[FaultSpec(kind="short", after=0)])
    smu.handle(":SOUR:VOLT 1;:SENS:CURR:PROT 0.02;:OUTP ON")
    assert readings(smu.handle(":READ?"))[0, 1] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="overrange"):
        smu.inject_fault("overrange")
    assert math.isfinite(bench.clock.time())


def test_a_finite_clock_speed_makes_the_sweep_take_real_time() -> None:
    """clock_speed 20: a 0.63 s (simulated) burst takes ~32 ms of wall time."""
    bench = CoupledPhysics(load_config("sim"), clock=SimulatedClock(start=0.0, speed=20.0))
    smu = SimulatedKeithley2400(bench)
    smu.handle(":TRIG:COUN 10;:SOUR:VOLT 2;:OUTP ON")
    start = time.perf_counter()
    smu.handle(":READ?")
    wall = time.perf_counter() - start
    cls = SimulatedKeithley2400
    cycle = 1e-4 + 1e-3 + 3 / bench.config.simulation.line_frequency_hz
    simulated = (  # the :READ?: armed, 10 cycles stored and sent
        cls.ARM_OVERHEAD_S + 10 * (cycle + cls.READING_OVERHEAD_S + cls.BUS_PER_READING_S)
    )
    assert wall >= simulated / 20 * 0.95
    assert bench.clock.time() == pytest.approx(simulated, rel=1e-6)


def test_trigger_link_output_at_source_delay_and_sense(
    smu: SimulatedKeithley2400, bench: CoupledPhysics
) -> None:
    """:TRIG:OUTP chooses after which parts of each cycle a trigger goes out on :TRIG:OLIN;
    with SOUR the trigger comes when the output has just turned on."""
    seen: list[tuple[float, bool]] = []
    bench.trigger_link.connect(
        3, lambda: seen.append((bench.clock.time(), bench.truth()["output_on"] > 0))
    )
    assert smu.handle(":TRIG:OUTP?") == "NONE" and smu.handle(":TRIG:OLIN?") == "2"
    smu.handle(":SOUR:VOLT 3;:SENS:CURR:PROT 0.01;:SOUR:DEL 0.002;:SYST:AZER 0;:SOUR:CLE:AUTO 1")
    smu.handle(":TRIG:OLIN 3;:TRIG:OUTP SOUR,SENS;:TRIG:COUN 2")
    assert smu.handle(":TRIG:OUTP?") == "SOUR,SENS"
    smu.handle(":READ?")
    assert len(seen) == 4 and all(on for _, on in seen)  # both before the auto-off
    cycle_on = 0.002 + 1 / 50  # source delay + 1 PLC at 50 Hz, autozero off
    assert seen[1][0] - seen[0][0] == pytest.approx(cycle_on, abs=1e-6)
    smu.handle(":TRIG:OUTP NONE")
    smu.handle(":READ?")
    assert len(seen) == 4
    smu.handle(":TRIG:OUTP NONE,SOUR")
    assert errors(smu) == ['-224,"Illegal parameter value"']


# ------------------------------------------------ what third-party clients rely on (#20)
def test_opt_query_reports_no_options(smu: SimulatedKeithley2400) -> None:
    assert smu.handle("*OPT?") == "0"
    assert errors(smu) == []


def test_reset_states_match_the_instrument(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SENS:RES:MODE MAN;:SOUR:DEL 0.25;:ARM:ILIN 3;:ARM:OUTP TENT")
    smu.handle("*RST")
    assert smu.handle(":SENS:RES:MODE?") == "AUTO"  # auto ohms (manual, section 4)
    assert smu.handle(":SENS:RES:RANG:AUTO?") == "1"
    # auto delay on: the delay it reads back is the auto-selected 1 ms
    assert smu.handle(":SOUR:DEL:AUTO?") == "1"
    assert float(smu.handle(":SOUR:DEL?")) == pytest.approx(1e-3)
    assert smu.handle(":ARM:ILIN?;:ARM:OLIN?;:TRIG:ILIN?;:TRIG:OLIN?") == "1;2;1;2"
    assert smu.handle(":ARM:OUTP?") == "NONE"
    smu.handle(":SOUR:DEL 0.25")
    assert smu.handle(":SOUR:DEL:AUTO?") == "0"
    assert float(smu.handle(":SOUR:DEL?")) == 0.25


def test_arm_trigger_link_settings_keep_what_was_set(smu: SimulatedKeithley2400) -> None:
    smu.handle(":ARM:OUTP TENT,TEX;:ARM:ILIN 3;:ARM:OLIN 4")
    assert smu.handle(":ARM:OUTP?;:ARM:ILIN?;:ARM:OLIN?") == "TENT,TEX;3;4"
    smu.handle(":ARM:OUTP TEX")
    assert smu.handle(":ARM:OUTP?") == "TEX"
    smu.handle(":ARM:ILIN 5")  # lines 1-4 only
    assert errors(smu) == ['-222,"Parameter data out of range"']
    assert smu.handle(":ARM:ILIN?") == "3"


def test_optional_sequence_layer_and_tconfigure_nodes(smu: SimulatedKeithley2400) -> None:
    smu.handle(":TRIG:SEQ:DEL 0.5;:ARM:SEQ:LAY:COUN 3;:TRIG:SEQ1:TCON:OLIN 3")
    assert smu.handle(":TRIG:DEL?") == "+5.000000E-01"
    assert smu.handle(":TRIGger:SEQuence:DELay?") == "+5.000000E-01"
    assert smu.handle(":ARM:COUN?;:TRIG:OLIN?") == "3;3"
    assert errors(smu) == []


def test_line_frequency_auto_keeps_its_state(smu: SimulatedKeithley2400) -> None:
    assert smu.handle(":SYST:LFR:AUTO?") == "0"
    assert smu.handle(":SYST:LFR?") == "50"  # the bench's mains
    smu.handle(":SYST:LFR 60;:SYST:LFR:AUTO ON")
    assert smu.handle(":SYST:LFR:AUTO?") == "1"
    assert smu.handle(":SYST:LFR?") == "50"  # measured from the mains again
    smu.handle("*RST")  # a SYSTem setting: *RST leaves it
    assert smu.handle(":SYST:LFR:AUTO?") == "1"


def test_status_queue_clear_and_colon_before_a_common_command(
    smu: SimulatedKeithley2400,
) -> None:
    smu.handle(":BOGUS")
    smu.handle("status:queue:clear;*RST;:stat:pres;:*CLS;")  # pymeasure's legacy reset()
    assert errors(smu) == []


def test_full_buffer_raises_msb_and_mss_in_the_status_byte(smu: SimulatedKeithley2400) -> None:
    """pymeasure's config_buffer/start_buffer/wait_for_buffer: *STB? & 65 == 65."""
    smu.handle(":STAT:PRES;*CLS;*SRE 1;:STAT:MEAS:ENAB 512;")
    smu.handle(":TRAC:CLEAR;")
    smu.handle(":TRAC:POIN 5;:TRIG:COUN 5;:TRIG:DEL 0")
    smu.handle(":TRAC:FEED SENSE;:TRAC:FEED:CONT NEXT;")
    smu.handle(":SOUR:VOLT 1;:OUTP ON")
    assert int(smu.handle("*STB?")) & 65 == 0
    smu.handle(":INIT")
    assert int(smu.handle("*STB?")) & 65 == 65
    event = int(smu.handle(":STAT:MEAS?"))  # reading available, buffer available, full
    assert event & (64 | 256 | 512) == 64 | 256 | 512
    assert int(smu.handle(":STAT:MEAS?")) == 0  # reading the event register clears it
    assert int(smu.handle(":STAT:MEAS:COND?")) & 512 == 512  # the buffer is still full
    assert int(smu.handle("*STB?")) & 65 == 0
    smu.handle(":TRAC:CLE")
    assert int(smu.handle(":STAT:MEAS:COND?")) & 768 == 0


def test_compliance_sets_the_measurement_event_bit(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SENS:CURR:PROT 1e-6;:SOUR:VOLT 4;:OUTP ON")
    status = readings(smu.handle(":READ?"))[0, 4]
    assert int(status) & ST_COMPLIANCE
    assert int(smu.handle(":STAT:MEAS?")) & (1 << 14)


def test_calc3_statistics_of_the_buffer(smu: SimulatedKeithley2400) -> None:
    smu.handle(":SENS:FUNC:ALL;:FORM:ELEM VOLT,CURR,RES,TIME,STAT")
    smu.handle(":SOUR:VOLT:MODE LIST;:SOUR:LIST:VOLT 2.0,2.2,2.4,2.6;:TRIG:COUN 4")
    smu.handle(":TRAC:POIN 4;:TRAC:FEED SENS;:TRAC:FEED:CONT NEXT;:OUTP ON;:INIT")
    data = readings(smu.handle(":TRAC:DATA?"))
    assert len(data) == 4 and data[:, 1].max() > 0  # the LED conducts: a real spread
    expected = {
        "MEAN": data[:, :3].mean(axis=0),
        "SDEV": data[:, :3].std(axis=0, ddof=1),
        "MAX": data[:, :3].max(axis=0),
        "MIN": data[:, :3].min(axis=0),
        "PKPK": np.ptp(data[:, :3], axis=0),
    }
    for statistic, values in expected.items():
        got = [float(x) for x in smu.handle(f":CALC3:FORM {statistic};:CALC3:DATA?").split(",")]
        assert got == pytest.approx(values, rel=1e-6), statistic  # voltage, current, resistance
    smu.handle(":SENS:FUNC:OFF 'RES'")
    assert len(smu.handle(":CALC3:FORM MEAN;:CALC3:DATA?").split(",")) == 2
    smu.handle(":TRAC:CLE")
    assert smu.handle(":CALC3:DATA?") == "+9.910000E+37,+9.910000E+37"  # no data: NAN
    assert errors(smu) == []


def test_bus_trigger_runs_one_arm_layer_per_trg(smu: SimulatedKeithley2400) -> None:
    smu.handle("*TRG")  # nothing waits for it
    assert errors(smu) == ['-211,"Trigger ignored"']
    smu.handle(":ARM:SOUR BUS;:ARM:COUN 2;:TRIG:COUN 3;:SOUR:VOLT 1;:OUTP ON")
    smu.handle(":TRAC:POIN 6;:TRAC:FEED:CONT NEXT;:INIT")
    assert smu.handle(":TRAC:POIN:ACT?") == "0"  # armed, waiting
    smu.handle("*TRG")
    assert smu.handle(":TRAC:POIN:ACT?") == "3"
    smu.handle("*TRG")
    assert smu.handle(":TRAC:POIN:ACT?") == "6"
    assert len(readings(smu.handle(":FETC?"))) == 6
    smu.handle("*TRG")  # both arm events taken
    assert errors(smu) == ['-211,"Trigger ignored"']
    smu.handle(":INIT;:ABOR;*TRG")  # an abort returns to idle
    assert errors(smu) == ['-211,"Trigger ignored"']


def test_unknown_command_files_113_and_a_query_gets_no_reply(
    visa: pyvisa.resources.MessageBasedResource,
) -> None:
    visa.timeout = 300
    visa.write(":SOUR:VOLT:FANCy?")
    with pytest.raises(pyvisa.errors.VisaIOError):
        visa.read()  # nothing was sent: the client times out, the server goes on
    assert visa.query(":SYST:ERR?") == '-113,"Undefined header"'
    assert visa.query("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400")
