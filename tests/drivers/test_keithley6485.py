"""The exact SCPI the 6485 driver sends (pymeasure's expected_protocol), over-range
handling, and that rejected settings send nothing."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from labrig.drivers.keithley6485 import Keithley6485
from labrig.errors import GarbledReplyError, InstrumentSettingError, OverRangeError
from labrig.interfaces import Picoammeter

INIT = [(":FORM:ELEM READ,TIME", None)]
FIXED_2UA = [
    (":SENS:CURR:NPLC 1", None),
    (":SENS:CURR:RANG 2e-06", None),
    (":SENS:AVER 0", None),
    ("SYST:ZCH 0", None),
]


def test_is_a_picoammeter():
    with expected_protocol(Keithley6485, INIT) as pico:
        assert isinstance(pico, Picoammeter)


def test_configure_fixed_range_with_repeat_filter():
    pairs = INIT + [
        (":SENS:CURR:NPLC 1", None),
        (":SENS:CURR:RANG 2e-06", None),
        (":SENS:AVER:TCON REP", None),
        (":SENS:AVER:COUN 10", None),
        (":SENS:AVER 1", None),
        ("SYST:ZCH 0", None),
    ]
    with expected_protocol(Keithley6485, pairs) as pico:
        pico.configure(nplc=1, current_range=2e-6, filter_count=10)


def test_configure_auto_range_within_limits():
    pairs = INIT + [
        (":SENS:CURR:NPLC 0.1", None),
        (":SENS:CURR:RANG:AUTO 1", None),
        (":SENS:CURR:RANG:AUTO:LLIM 2e-09", None),
        (":SENS:CURR:RANG:AUTO:ULIM 0.002", None),
        (":SENS:AVER 0", None),
        ("SYST:ZCH 0", None),
    ]
    with expected_protocol(Keithley6485, pairs) as pico:
        pico.configure(nplc=0.1, autorange_limits=(2e-9, 2e-3))


def test_zero_correct_follows_the_manual_and_restores_the_range():
    pairs = (
        INIT
        + FIXED_2UA
        + [
            ("SYST:ZCH 1", None),
            (":SENS:CURR:RANG 2e-09", None),
            (":TRIG:COUN 1", None),
            (":INIT", None),
            ("*OPC?", "1"),
            ("SYST:ZCOR:ACQ", None),
            ("SYST:ZCOR 1", None),
            (":SENS:CURR:RANG 2e-06", None),
            ("SYST:ZCH 0", None),
        ]
    )
    with expected_protocol(Keithley6485, pairs) as pico:
        pico.configure(nplc=1, current_range=2e-6)
        pico.zero_correct()


def test_single_reading():
    pairs = INIT + [(":TRIG:COUN 1", None), ("READ?", "+1.234500E-07,+2.500000E+01")]
    with expected_protocol(Keithley6485, pairs) as pico:
        r = pico.read()
        assert (r.current, r.time) == (1.2345e-7, 25.0)


def test_reading_with_units_suffix_is_understood():
    pairs = INIT + [(":TRIG:COUN 1", None), ("READ?", "+1.040564E-06A,+2.236299E+02")]
    with expected_protocol(Keithley6485, pairs) as pico:
        assert pico.read().current == pytest.approx(1.040564e-6)


def test_over_range_on_a_fixed_range_is_raised_with_the_range_named():
    pairs = INIT + FIXED_2UA + [(":TRIG:COUN 1", None), ("READ?", "+9.900000E+37,+1.0E+00")]
    with expected_protocol(Keithley6485, pairs) as pico:
        pico.configure(nplc=1, current_range=2e-6)
        with pytest.raises(OverRangeError) as info:
            pico.read()
    assert str(info.value) == (
        "photometer over range at 2e-06 A range; increase the range or enable auto range"
    )


def test_over_range_on_auto_range_names_the_upper_limit():
    pairs = INIT + [(":TRIG:COUN 1", None), ("READ?", "+9.9E37,1.0")]
    with expected_protocol(Keithley6485, pairs) as pico:
        with pytest.raises(OverRangeError, match="auto range.*0.02 A"):
            pico.read()


def test_burst_through_the_buffer_then_single_reading_restores_trigger_count():
    data = ",".join(f"{k * 1e-9:+.6E},{k * 0.1:+.6E}" for k in range(1, 6))
    pairs = INIT + [
        (":TRAC:CLE", None),
        (":TRAC:POIN 5", None),
        (":TRAC:FEED SENS", None),
        (":TRAC:FEED:CONT NEXT", None),
        (":TRIG:COUN 5", None),
        (":INIT", None),
        ("*OPC?", "1"),
        (":TRAC:DATA?", data),
        (":TRIG:COUN 1", None),
        ("READ?", "1e-9,1.0"),
    ]
    with expected_protocol(Keithley6485, pairs) as pico:
        burst = pico.read_burst(5)
        assert [r.current for r in burst] == pytest.approx([1e-9, 2e-9, 3e-9, 4e-9, 5e-9])
        assert [r.time for r in burst] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
        pico.read()


def test_over_range_inside_a_burst_is_raised():
    pairs = INIT + [
        (":TRAC:CLE", None),
        (":TRAC:POIN 2", None),
        (":TRAC:FEED SENS", None),
        (":TRAC:FEED:CONT NEXT", None),
        (":TRIG:COUN 2", None),
        (":INIT", None),
        ("*OPC?", "1"),
        (":TRAC:DATA?", "1e-9,0.0,+9.9E37,0.1"),
    ]
    with expected_protocol(Keithley6485, pairs) as pico:
        with pytest.raises(OverRangeError):
            pico.read_burst(2)


@pytest.mark.parametrize(
    ("kwargs", "limit"),
    [
        ({"current_range": 3e-6}, "not a 6485 range"),
        ({"current_range": 2e-1}, "not a 6485 range"),
        ({"nplc": 61}, "0.01–60"),
        ({"nplc": 0.001}, "0.01–60"),
        ({"filter_count": 1}, "2–100"),
        ({"filter_count": 101}, "2–100"),
        ({"autorange_limits": (2e-3, 2e-9)}, "lower, upper"),
        ({"current_range": 2e-6, "autorange_limits": (2e-9, 2e-3)}, "auto range"),
    ],
)
def test_rejected_configuration_sends_nothing(kwargs, limit):
    with expected_protocol(Keithley6485, INIT) as pico:
        with pytest.raises(InstrumentSettingError, match=limit):
            pico.configure(**kwargs)


def test_nplc_above_50_needs_60_hz_mains():
    pairs = INIT + [
        ("SYST:LFR?", "+50"),
        (":SENS:CURR:NPLC 45", None),
        (":SENS:CURR:RANG:AUTO 1", None),
        (":SENS:AVER 0", None),
        ("SYST:ZCH 0", None),
    ]
    with expected_protocol(Keithley6485, pairs) as pico:
        with pytest.raises(InstrumentSettingError, match="0.01–50 cycles on 50 Hz"):
            pico.configure(nplc=55)
        pico.configure(nplc=45)  # no second SYST:LFR? (cached), nothing sent for the refusal


def test_nplc_60_on_60_hz_mains():
    pairs = INIT + [
        ("SYST:LFR?", "+60"),
        (":SENS:CURR:NPLC 60", None),
        (":SENS:CURR:RANG:AUTO 1", None),
        (":SENS:AVER 0", None),
        ("SYST:ZCH 0", None),
    ]
    with expected_protocol(Keithley6485, pairs) as pico:
        pico.configure(nplc=60)


@pytest.mark.parametrize("count", [0, 2501])
def test_rejected_burst_sends_nothing(count):
    with expected_protocol(Keithley6485, INIT) as pico:
        with pytest.raises(InstrumentSettingError, match="1–2500"):
            pico.read_burst(count)


def test_garbled_reading():
    pairs = INIT + [(":TRIG:COUN 1", None), ("READ?", "ERR?!")]
    with expected_protocol(Keithley6485, pairs) as pico:
        with pytest.raises(GarbledReplyError):
            pico.read()


def test_shutdown_aborts():
    with expected_protocol(Keithley6485, INIT + [(":ABOR", None)]) as pico:
        pico.shutdown()


def test_check_range_names_the_parameter_and_sends_nothing():
    with expected_protocol(Keithley6485, INIT) as pico:  # nothing after the driver's init
        assert pico.check_range("photometer_range", 2.0000001e-4) == 2e-4
        with pytest.raises(
            InstrumentSettingError,
            match=r"^Keithley 6485: photometer_range 0.0003 A is not a 6485 range; allowed "
            r"2e-09, 2e-08, 2e-07, 2e-06, 2e-05, 0.0002, 0.002, 0.02 A$",
        ):
            pico.check_range("photometer_range", 3e-4)
