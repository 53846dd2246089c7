"""The simulated Keithley 6485 on the real CoupledPhysics, driven by the simulated 2400:
reading format, zero check/correct, ranges and over-range, filters, bursts, timing,
faults — in process and through pyvisa-py over loopback TCP."""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa

from labrig.clock import SimulatedClock
from labrig.config import load_config
from labrig.simulators.keithley2400 import SimulatedKeithley2400
from labrig.simulators.keithley6485 import (
    INPUT_OFFSET_A,
    RANGE_OFFSET_FRACTION,
    SimulatedKeithley6485,
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
def pico(bench: CoupledPhysics) -> SimulatedKeithley6485:
    return SimulatedKeithley6485(bench)


def light_on(smu: SimulatedKeithley2400, volts: float = 4.0) -> None:
    smu.handle(f":SOUR:VOLT {volts};:SENS:CURR:PROT 0.05;:OUTP ON")


def errors(inst) -> list[str]:
    out = []
    while (e := inst.handle(":SYST:ERR?")) != '0,"No error"':
        out.append(e)
    return out


def current(reply: str) -> float:
    """The first element of a default-format reading: ``+1.0E-06A`` -> 1e-6."""
    return float(reply.split(",")[0].rstrip("A"))


def test_idn_and_reset_state(pico: SimulatedKeithley6485) -> None:
    maker, model, _, firmware = pico.handle("*IDN?").split(",")
    assert (maker, model) == ("KEITHLEY INSTRUMENTS INC.", "MODEL 6485")
    assert firmware.startswith("B03")
    pico.handle("SYST:ZCH OFF;:CURR:RANG 2e-6;:FORM:ELEM READ;:TRIG:COUN 9")
    pico.handle("*RST")
    assert pico.handle(
        "SYST:ZCH?;:SYST:ZCOR?;:CURR:RANG:AUTO?;:CURR:NPLC?;:FORM:ELEM?;:TRIG:COUN?;"
        ":TRAC:FEED:CONT?;:AVER?"
    ).split(";") == ["1", "0", "1", "+5.000000E+00", "READ,UNIT,TIME,STAT", "1", "NEV", "0"]


def test_default_reading_format_has_the_unit_suffix(pico: SimulatedKeithley6485) -> None:
    reply = pico.handle("READ?")
    reading, stamp, status = reply.split(",")
    assert reading.endswith("A") and reading[0] in "+-" and "E" in reading
    assert float(stamp) > 0 and float(status) == 0.0
    pico.handle("FORM:ELEM READ,TIME")
    assert not pico.handle("READ?").split(",")[0].endswith("A")


def test_zero_check_reads_the_offset_and_zero_correct_removes_it(
    pico: SimulatedKeithley6485,
) -> None:
    """In the dark (a steady few-pA signal) on the 2 nA range."""
    pico.handle("FORM:ELEM READ;:CURR:RANG 2e-9")
    offset = INPUT_OFFSET_A + RANGE_OFFSET_FRACTION * 2e-9
    zc = np.mean([float(pico.handle("READ?")) for _ in range(20)])  # zero check on after *RST
    assert zc == pytest.approx(offset, rel=0.05)
    pico.handle("SYST:ZCH OFF")
    dark = pico.physics.config.simulation.photodiode_dark_current_a
    raw = np.mean([float(pico.handle("READ?")) for _ in range(20)])
    assert raw == pytest.approx(dark + offset, rel=0.05)
    pico.handle("SYST:ZCH ON;:INIT;:SYST:ZCOR:ACQ;:SYST:ZCOR ON;:SYST:ZCH OFF")
    corrected = np.mean([float(pico.handle("READ?")) for _ in range(20)])
    assert corrected == pytest.approx(dark, rel=0.05)
    assert abs(corrected - dark) < 0.2 * offset
    assert errors(pico) == []


def test_zero_correct_acquire_needs_zero_check(pico: SimulatedKeithley6485) -> None:
    pico.handle("SYST:ZCH OFF;:SYST:ZCOR:ACQ")
    assert errors(pico) == ['-221,"Settings conflict"']


def test_reading_follows_the_photodiode_and_auto_range(
    pico: SimulatedKeithley6485, smu: SimulatedKeithley2400
) -> None:
    pico.handle("SYST:ZCH OFF;:FORM:ELEM READ")
    dark = float(pico.handle("READ?"))
    assert 0 < dark < 1e-11  # dark current of a few pA
    light_on(smu, 4.0)
    lit = float(pico.handle("READ?"))
    truth = smu.physics.photodiode_current(0.1)
    assert lit == pytest.approx(truth, rel=1e-3)
    assert pico.handle("CURR:RANG?") == "+2.000000E-02"  # RANG? is the fixed setting
    pico.handle("CURR:RANG:AUTO:ULIM 2e-7")
    assert pico.handle("READ?").startswith("+9.900000E+37")  # above the upper limit


def test_fixed_range_over_range_reads_9_9e37_with_the_oflo_bit(
    pico: SimulatedKeithley6485, smu: SimulatedKeithley2400
) -> None:
    light_on(smu, 4.0)
    pico.handle("SYST:ZCH OFF;:CURR:RANG 2e-9")
    reading, _, status = pico.handle("READ?").split(",")
    assert reading == "+9.900000E+37A"
    assert int(float(status)) & 1
    pico.handle("CURR:RANG 2e-5")
    assert current(pico.handle("READ?")) < 2e-5


def test_range_and_nplc_limits(pico: SimulatedKeithley6485) -> None:
    pico.handle("CURR:RANG 1e-3")
    assert pico.handle("CURR:RANG?;:CURR:RANG:AUTO?") == "+2.000000E-03;0"
    pico.handle("CURR:RANG 0.5")
    pico.handle("CURR:NPLC 55")  # 50 Hz bench: at most 50 PLC
    pico.handle("CURR:NPLC 0.001")
    assert pico.handle("CURR:RANG?;:CURR:NPLC?") == "+2.000000E-03;+5.000000E+00"
    assert errors(pico) == ['-222,"Parameter data out of range"'] * 3
    pico.handle("CURR:NPLC 50")
    assert pico.handle("CURR:NPLC?") == "+5.000000E+01"


def test_reading_resolution_is_5_half_digits_of_the_range(
    pico: SimulatedKeithley6485, smu: SimulatedKeithley2400
) -> None:
    light_on(smu, 3.0)
    pico.handle("SYST:ZCH OFF;:FORM:ELEM READ;:CURR:RANG 2e-6")
    values = [float(pico.handle("READ?")) for _ in range(5)]
    steps = np.array(values) / (2e-6 / 200_000)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)


@pytest.mark.parametrize("nplc, autozero", [(1.0, "ON"), (0.01, "OFF"), (10.0, "OFF")])
def test_timing_follows_nplc(pico: SimulatedKeithley6485, nplc: float, autozero: str) -> None:
    n = 10
    pico.handle(f"CURR:NPLC {nplc};:SYST:AZER {autozero};:TRIG:COUN {n};:FORM:ELEM READ,TIME")
    clock = pico.physics.clock
    t0 = clock.time()
    data = np.array([float(x) for x in pico.handle("READ?").split(",")]).reshape(n, 2)
    per = nplc / 50 * (3 if autozero == "ON" else 1) + 5e-4
    assert clock.time() - t0 == pytest.approx(n * per, rel=1e-6)
    np.testing.assert_allclose(np.diff(data[:, 1]), per, rtol=1e-6)


def test_repeat_filter_takes_count_conversions_and_reduces_noise(
    pico: SimulatedKeithley6485,
) -> None:
    """On a steady (dark) input, where the 6485's own noise dominates on the 2 µA range."""
    pico.handle("SYST:ZCH OFF;:FORM:ELEM READ;:CURR:RANG 2e-6;:CURR:NPLC 0.01;:SYST:AZER OFF")
    plain = [float(pico.handle("READ?")) for _ in range(60)]
    pico.handle("AVER:TCON REP;:AVER:COUN 20;:AVER ON")
    clock = pico.physics.clock
    t0 = clock.time()
    filtered = [float(pico.handle("READ?")) for _ in range(60)]
    assert clock.time() - t0 == pytest.approx(60 * 20 * (0.01 / 50 + 5e-4), rel=1e-6)
    assert np.std(filtered) < 0.5 * np.std(plain)
    assert np.mean(filtered) == pytest.approx(np.mean(plain), abs=3 * np.std(plain) / 7)
    pico.handle("FORM:ELEM STAT")
    assert int(float(pico.handle("READ?"))) & 2  # filter bit


def test_moving_filter_fills_its_stack_once(pico: SimulatedKeithley6485) -> None:
    pico.handle("SYST:ZCH OFF;:CURR:NPLC 0.01;:SYST:AZER OFF;:AVER:TCON MOV;:AVER:COUN 10")
    pico.handle("AVER ON")
    clock = pico.physics.clock
    conversion = 0.01 / 50 + 5e-4
    t0 = clock.time()
    pico.handle("READ?")
    assert clock.time() - t0 == pytest.approx(10 * conversion, rel=1e-6)
    t0 = clock.time()
    pico.handle("READ?")
    assert clock.time() - t0 == pytest.approx(conversion, rel=1e-6)


def test_buffered_burst(pico: SimulatedKeithley6485, smu: SimulatedKeithley2400) -> None:
    light_on(smu, 3.5)
    pico.handle("SYST:ZCH OFF;:CURR:NPLC 0.01;:SYST:AZER OFF;:FORM:ELEM READ,TIME")
    pico.handle("TRAC:CLE;POIN 50;FEED SENS;FEED:CONT NEXT;:TRIG:COUN 50;:INIT")
    assert pico.handle("TRAC:POIN:ACT?;:TRAC:FEED:CONT?") == "50;NEV"
    data = np.array([float(x) for x in pico.handle("TRAC:DATA?").split(",")]).reshape(50, 2)
    truth = smu.physics.photodiode_current(0.01 / 50)
    assert np.median(data[:, 0]) == pytest.approx(truth, rel=0.01)
    assert data[0, 1] == 0.0 and np.all(np.diff(data[:, 1]) > 0)  # absolute: from first
    pico.handle("TRAC:TST:FORM DELT")
    deltas = np.array([float(x) for x in pico.handle("TRAC:DATA?").split(",")])[1::2]
    np.testing.assert_allclose(deltas[1:], 0.01 / 50 + 5e-4, rtol=1e-6)
    assert errors(pico) == []


def test_empty_buffer_and_fetch_without_reading_file_230(pico: SimulatedKeithley6485) -> None:
    assert pico.handle("TRAC:DATA?") is None
    assert pico.handle("FETC?") is None
    assert errors(pico) == ['-230,"Data corrupt or stale"'] * 2
    pico.handle("INIT")
    assert pico.handle("FETC?").endswith(",+0.000000E+00")


def test_2500_readings_is_the_most(pico: SimulatedKeithley6485) -> None:
    pico.handle("TRIG:COUN 2501")
    pico.handle("TRAC:POIN 2501")
    assert errors(pico) == ['-222,"Parameter data out of range"'] * 2


def test_burst_through_pyvisa(pico: SimulatedKeithley6485, smu: SimulatedKeithley2400) -> None:
    light_on(smu, 3.0)
    with SCPIServer(pico) as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
        inst.write("*RST;:SYST:ZCH OFF;:CURR:NPLC 0.01;:FORM:ELEM READ")
        inst.write(":TRAC:CLE;:TRAC:POIN 200;:TRAC:FEED:CONT NEXT;:TRIG:COUN 200;:INIT")
        values = inst.query_ascii_values(":TRAC:DATA?")
        assert len(values) == 200 and all(0 < v < 1e-3 for v in values)
        assert inst.query(":SYST:ERR?") == '0,"No error"'
        inst.close()
        rm.close()


# ----------------------------------------------------------------------- faults
def test_overrange_fault(pico: SimulatedKeithley6485) -> None:
    pico.handle("SYST:ZCH OFF")
    pico.inject_fault("overrange", after=2)
    replies = [pico.handle("READ?").split(",")[0] for _ in range(4)]
    assert replies[:2] != ["+9.900000E+37A"] * 2
    assert replies[2:] == ["+9.900000E+37A"] * 2
    pico.clear_faults()
    assert pico.handle("READ?").split(",")[0] != "+9.900000E+37A"


def test_timeout_and_garbled_faults_through_pyvisa(pico: SimulatedKeithley6485) -> None:
    with SCPIServer(pico) as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(
            server.resource, read_termination="\n", write_termination="\n", timeout=300
        )
        assert inst.query("*IDN?").startswith("KEITHLEY")
        pico.inject_fault("timeout")
        with pytest.raises(pyvisa.errors.VisaIOError) as info:
            inst.query("READ?")
        assert info.value.error_code == pyvisa.constants.StatusCode.error_timeout
        pico.clear_faults()
        pico.inject_fault("garbled")
        inst.write("READ?")
        raw = inst.read_raw()
        with pytest.raises((UnicodeDecodeError, ValueError)):
            float(raw.decode("ascii").split(",")[0].rstrip("A"))
        inst.close()
        rm.close()


def test_short_and_open_are_not_6485_faults(pico: SimulatedKeithley6485) -> None:
    with pytest.raises(ValueError, match="short"):
        pico.inject_fault("short")


def test_disconnect_fault_drops_the_link_mid_burst(pico: SimulatedKeithley6485) -> None:
    with SCPIServer(pico) as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
        inst.write("SYST:ZCH OFF;:CURR:NPLC 0.01;:TRIG:COUN 100")
        assert inst.query("TRIG:COUN?") == "100"
        pico.inject_fault("disconnect", after=30)
        with pytest.raises(ConnectionError):
            inst.query("READ?")
        inst.close()
        inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
        assert inst.query("*IDN?").startswith("KEITHLEY")  # one-shot: reconnect works
        inst.close()
        rm.close()


def test_median_filter_window_fills_once(pico: SimulatedKeithley6485) -> None:
    pico.handle("SYST:ZCH OFF;:CURR:NPLC 0.01;:SYST:AZER OFF;:MED:RANK 2;:MED ON")
    conversion = 0.01 / 50 + 5e-4
    clock = pico.physics.clock
    t0 = clock.time()
    pico.handle("READ?")
    assert clock.time() - t0 == pytest.approx(5 * conversion, rel=1e-6)
    pico.handle("FORM:ELEM STAT")
    assert int(float(pico.handle("READ?"))) & 2


def test_faults_from_config(bench: CoupledPhysics) -> None:
    from labrig.config import FaultSpec

    pico = SimulatedKeithley6485(bench, faults=[FaultSpec(kind="overrange", after=1)])
    pico.handle("SYST:ZCH OFF;:FORM:ELEM READ")
    assert pico.handle("READ?") != "+9.900000E+37"
    assert pico.handle("READ?") == "+9.900000E+37"


# ------------------------------------------------------------------ trigger link
def _arm_on_link(pico: SimulatedKeithley6485, count: int, delay_s: float) -> None:
    pico.handle("SYST:ZCH 0;:SYST:AZER 0;:CURR:NPLC 0.01;:CURR:RANG 2e-4;:FORM:ELEM READ,TIME")
    pico.handle(f":TRAC:CLE;:TRAC:POIN {count};:TRAC:FEED:CONT NEXT")
    pico.handle(f":TRIG:SOUR TLIN;:TRIG:ILIN 2;:TRIG:COUN {count};:TRIG:DEL {delay_s:g}")
    pico.handle(":INIT")


def _pulse_train(smu: SimulatedKeithley2400, count: int, on_s: float, integration_s: float):
    delay = on_s - integration_s
    smu.handle(":SOUR:FUNC CURR;:SENS:VOLT:PROT 12;:SOUR:CURR 0.004;:SYST:AZER 0")
    smu.handle(f":SOUR:DEL {delay:g};:SENS:CURR:NPLC {integration_s * 50:g};:SOUR:CLE:AUTO 1")
    smu.handle(f":TRIG:COUN {count};:TRIG:DEL 0.05;:TRIG:OUTP SOUR;:TRIG:OLIN 2")
    return smu.handle(":READ?")


def test_trigger_link_reads_the_light_inside_each_pulse(bench, smu, pico) -> None:
    """Each 2400 cycle triggers one 6485 conversion over its aperture inside the pulse:
    the light of the pulse (not the dark between pulses), one reading per pulse, with the
    6485's timestamps spaced like the pulses."""
    _arm_on_link(pico, 5, delay_s=0.7e-3)  # aperture 0.7–0.9 ms of a 1 ms pulse
    _pulse_train(smu, 5, on_s=1e-3, integration_s=0.2e-3)
    assert bench.operating_point.output_on is False  # auto-clear: off between pulses
    values = [float(v.rstrip("A")) for v in pico.handle(":TRAC:DATA?").split(",")[::2]]
    assert len(values) == 5
    # the light of a 4 mA pulse (a cool device: a 1 ms pulse at 1 mA/cm²·100 barely heats)
    bench.source_current(0.004, 12.0)
    steady = bench.photodiode_current()
    bench.output_off()
    assert np.allclose(values, steady, rtol=0.01)
    assert not errors(pico)


def test_trigger_link_window_past_the_pulse_reads_dark(bench, smu, pico) -> None:
    _arm_on_link(pico, 3, delay_s=2e-3)  # starts after the 1 ms pulse has ended
    _pulse_train(smu, 3, on_s=1e-3, integration_s=0.2e-3)
    values = [float(v.rstrip("A")) for v in pico.handle(":TRAC:DATA?").split(",")[::2]]
    assert len(values) == 3
    assert max(values) < 2e-8  # the 2e-4 A range offset (1e-8 A) and noise only


def test_trigger_link_missing_triggers_leave_the_buffer_short(bench, smu, pico) -> None:
    _arm_on_link(pico, 4, delay_s=0.7e-3)
    _pulse_train(smu, 2, on_s=1e-3, integration_s=0.2e-3)
    assert len(pico.handle(":TRAC:DATA?").split(",")) == 4  # two readings, two numbers each
    pico.handle(":ABOR")  # disarmed: later 2400 cycles do not reach it
    _pulse_train(smu, 2, on_s=1e-3, integration_s=0.2e-3)
    assert len(pico.handle(":TRAC:DATA?").split(",")) == 4


# ------------------------------------------------ what third-party clients rely on (#20)
def test_buffer_statistics_calc3(smu: SimulatedKeithley2400, pico: SimulatedKeithley6485) -> None:
    light_on(smu)
    pico.handle("SYST:ZCH OFF;:TRAC:POIN 1;:TRAC:FEED:CONT NEXT;:INIT")
    pico.handle(":CALC3:DATA?")  # one reading: no statistic (6485/6487 manual: -230)
    assert errors(pico) == ['-230,"Data corrupt or stale"']
    pico.handle(":TRAC:CLE;:TRAC:POIN 6;:TRIG:COUN 6;:TRAC:FEED:CONT NEXT;:INIT")
    pico.handle(":FORM:ELEM READ")
    data = np.array([float(x.rstrip("A")) for x in pico.handle(":TRAC:DATA?").split(",")])
    assert len(data) == 6 and data.std() > 0  # noisy photocurrent: a real spread
    expected = {
        "MEAN": data.mean(),
        "SDEV": data.std(ddof=1),
        "MAX": data.max(),
        "MIN": data.min(),
        "PKPK": np.ptp(data),
    }
    for statistic, value in expected.items():
        pico.handle(f":CALC3:FORM {statistic}")
        assert float(pico.handle(":CALC3:DATA?")) == pytest.approx(value, rel=1e-9), statistic
    assert pico.handle(":CALC3:FORM?") == "PKPK"
    assert errors(pico) == []


def test_overflowed_reading_spoils_the_statistic(
    smu: SimulatedKeithley2400, pico: SimulatedKeithley6485
) -> None:
    light_on(smu)
    pico.handle("SYST:ZCH OFF;:CURR:RANG 2e-9;:TRAC:POIN 3;:TRIG:COUN 3")
    pico.handle(":TRAC:FEED:CONT NEXT;:INIT")
    assert pico.handle(":CALC3:DATA?") == "+9.910000E+37"
    assert int(pico.handle(":STAT:MEAS?")) & 128  # reading overflow


def test_full_buffer_and_bus_trigger_in_the_status_byte(pico: SimulatedKeithley6485) -> None:
    pico.handle(":STAT:PRES;*CLS;*SRE 1;:STAT:MEAS:ENAB 512")
    pico.handle(":ARM:SOUR BUS;:ARM:COUN 2;:TRIG:COUN 2;:TRAC:POIN 4;:TRAC:FEED:CONT NEXT")
    assert pico.handle(":ARM:SOUR?") == "BUS"
    pico.handle(":INIT")
    pico.handle("*TRG")
    assert pico.handle(":TRAC:POIN:ACT?") == "2"
    assert int(pico.handle("*STB?")) & 65 == 0  # half full
    pico.handle("*TRG")
    assert pico.handle(":TRAC:POIN:ACT?") == "4"
    assert int(pico.handle("*STB?")) & 65 == 65  # buffer full: MSB, and MSS through *SRE 1
    pico.handle("*TRG")
    assert errors(pico) == ['-211,"Trigger ignored"']


def test_opt_is_not_a_6485_command(pico: SimulatedKeithley6485) -> None:
    """The 6485's common commands have no ``*OPT?``: -113, and no reply."""
    assert pico.handle("*OPT?") is None
    assert errors(pico) == ['-113,"Undefined header"']
    assert pico.handle(":TRIG:SEQ:COUN 4;:TRIG:COUN?") == "4"
