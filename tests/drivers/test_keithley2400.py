"""The exact SCPI the 2400 driver sends (pymeasure's expected_protocol), its parsing of
readings and status words, and that a rejected setting sends nothing at all."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from labrig.drivers import keithley2400
from labrig.drivers.keithley2400 import Keithley2400
from labrig.errors import GarbledReplyError, InstrumentSettingError, OverRangeError
from labrig.interfaces import SourceMeter

INIT = [(":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None)]
COMPLIANCE = 1 << 3
RANGE_COMPLIANCE = 1 << 16
V_SOURCE_I_MEAS = (1 << 14) | (1 << 12) | (1 << 11)  # status bits of a normal V-source reading


def configured(compliance: str = "0.01") -> list[tuple[str, str | None]]:
    """What configure_source('voltage', compliance) sends with every default."""
    return [
        (":SOURCE:FUNCTION VOLT", None),
        (":SOUR:VOLT:MODE FIX", None),
        (":SENS:FUNC:CONC 1", None),
        (':SENS:FUNC "VOLT","CURR"', None),
        (f":SENSE:CURRENT:PROTECTION {compliance}", None),
        (":SOURCE:VOLTAGE:RANGE:AUTO 1", None),
        (":SENSE:CURRENT:RANGE:AUTO 1", None),
        (":SENSE:CURRENT:NPLCYCLES 1", None),
        (":SOURCE:DELAY:AUTO 1", None),
        (":SYSTEM:AZERO:STATE 1", None),
        (":ARM:COUN 1", None),
        (":TRIG:COUN 1", None),
    ]


def reading(v: float, i: float, t: float, status: int) -> str:
    return f"{v:+.6E},{i:+.6E},+9.910000E+37,{t:+.6E},{status:+.6E}"


def test_is_a_source_meter():
    with expected_protocol(Keithley2400, INIT) as smu:
        assert isinstance(smu, SourceMeter)


def test_configure_voltage_source_with_defaults():
    with expected_protocol(Keithley2400, INIT + configured()) as smu:
        smu.configure_source("voltage", 0.01)


def test_configure_current_source_fixed_ranges_delay_no_autozero():
    pairs = INIT + [
        (":SOURCE:FUNCTION CURR", None),
        (":SOUR:CURR:MODE FIX", None),
        (":SENS:FUNC:CONC 1", None),
        (':SENS:FUNC "VOLT","CURR"', None),
        (":SENSE:VOLTAGE:PROTECTION 8", None),
        (":SOURCE:CURRENT:RANGE 0.01", None),
        (":SENSE:VOLTAGE:RANGE 21", None),
        (":SENSE:VOLTAGE:NPLCYCLES 0.1", None),
        (":SOURCE:DELAY 0.002", None),
        (":SYSTEM:AZERO:STATE 0", None),
        (":ARM:COUN 1", None),
        (":TRIG:COUN 1", None),
    ]
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source(
            "current",
            8.0,
            nplc=0.1,
            source_delay=0.002,
            autozero=False,
            source_range=0.01,
            measure_range=21.0,
        )


def test_level_output_and_one_measurement_with_compliance_from_status_bit_3():
    pairs = (
        INIT
        + configured()
        + [
            (":SOURCE:VOLTAGE 2.5", None),
            ("*OPC?", "1"),
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":READ?", reading(2.5, 1.2e-3, 10.0, V_SOURCE_I_MEAS)),
            (":READ?", reading(1.9, 1e-2, 10.5, V_SOURCE_I_MEAS | COMPLIANCE)),
            (":READ?", reading(1.9, 1e-2, 11.0, V_SOURCE_I_MEAS | RANGE_COMPLIANCE)),
            ("OUTPUT?", "1"),
            ("OUTPUT 0", None),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        smu.set_level(2.5)
        smu.enable_output()
        first = smu.measure()
        assert (first.voltage, first.current, first.time) == (2.5, 1.2e-3, 10.0)
        assert first.in_compliance is False  # V/I-measure and V-source bits are not compliance
        assert smu.measure().in_compliance is True
        assert smu.measure().in_compliance is True
        assert smu.output_enabled is True
        smu.disable_output()


def switched_on() -> list[tuple[str, str | None]]:
    """What ``switch_on`` sends: set-up, then level 0 and output on, each confirmed."""
    return (
        INIT
        + configured()
        + [(":SOURCE:VOLTAGE 0", None), ("*OPC?", "1"), ("OUTPUT 1", None), ("*OPC?", "1")]
    )


def switch_on(smu: Keithley2400) -> None:
    smu.configure_source("voltage", 0.01)
    smu.set_level(0.0)
    smu.enable_output()


def test_measure_at_lets_the_reading_confirm_the_level_without_opc():
    """The :READ? right behind the level command runs at the new level (the 2400 executes
    commands in order), so a J-V-L point pays no *OPC? round trip; both go in one write;
    a bad level, or the output off, is still refused before anything is sent."""
    pairs = switched_on() + [
        (":SOURCE:VOLTAGE 2.5\n:READ?", reading(2.5, 1.2e-3, 10.0, V_SOURCE_I_MEAS)),
        ("OUTPUT 0", None),
    ]
    with expected_protocol(Keithley2400, pairs) as smu:
        switch_on(smu)
        first = smu.measure_at(2.5)
        assert (first.voltage, first.current) == (2.5, 1.2e-3)
        assert smu._level == 2.5  # what the shutdown ramp starts from
        with pytest.raises(InstrumentSettingError, match="210 V"):
            smu.measure_at(250.0)
        smu.disable_output()
        with pytest.raises(InstrumentSettingError, match="output on"):
            smu.measure_at(1.0)


def test_measure_at_runs_meanwhile_while_the_reading_is_on_its_way():
    """``meanwhile`` (J-V-L stores the previous point there) runs once the level and its
    :READ? are sent and before the reading is read; when it raises, the reading is read
    all the same, so the shutdown's commands that follow are in step, and its exception
    goes on."""
    pairs = switched_on() + [
        (":SOURCE:VOLTAGE 1\n:READ?", reading(1.0, 1e-3, 10.0, V_SOURCE_I_MEAS)),
        (":SOURCE:VOLTAGE 2\n:READ?", reading(2.0, 2e-3, 10.1, V_SOURCE_I_MEAS)),
        ("OUTPUT 0", None),
        ("OUTPUT?", "0"),
    ]
    with expected_protocol(Keithley2400, pairs) as smu:
        switch_on(smu)
        waiting: list[bytes | None] = []
        # the protocol adapter holds a query's reply from its write until it is read
        first = smu.measure_at(1.0, meanwhile=lambda: waiting.append(smu.adapter._read_buffer))
        assert waiting and waiting[0] is not None
        assert (first.voltage, first.current) == (1.0, 1e-3)
        assert smu.adapter._read_buffer is None

        def store_fails() -> None:
            raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            smu.measure_at(2.0, meanwhile=store_fails)
        assert smu.adapter._read_buffer is None and not smu._unanswered
        smu.disable_output()
        assert smu.output_enabled is False  # read back in step: not the stale reading


def test_201_point_list_sweep_is_sent_in_100_value_commands_and_read_once(monkeypatch):
    monkeypatch.setattr(keithley2400, "SWEEP_CHUNK_S", 60.0)  # the whole sweep in one chunk
    levels = [round(0.02 * k, 2) for k in range(201)]
    text = [f"{v:g}" for v in levels]
    reply = ",".join(reading(v, 1e-6 * k, 0.01 * k, V_SOURCE_I_MEAS) for k, v in enumerate(levels))
    pairs = (
        INIT
        + configured()
        + [
            (":SOUR:LIST:VOLT " + ",".join(text[:100]), None),
            (":SOUR:LIST:VOLT:APP " + ",".join(text[100:200]), None),
            (":SOUR:LIST:VOLT:APP " + text[200], None),
            (":SOUR:VOLT:MODE LIST", None),
            (":SOUR:SWE:CAB NEV", None),
            (":TRIG:COUN 201", None),
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":READ?", reply),
            # a following single measurement puts the fixed mode and one trigger back
            (":SOUR:VOLT:MODE FIX", None),
            (":TRIG:COUN 1", None),
            (":READ?", reading(1.0, 1e-3, 9.0, V_SOURCE_I_MEAS)),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        points = smu.sweep(levels)
        assert len(points) == 201
        assert [p.voltage for p in points] == pytest.approx(levels)
        assert points[-1].current == pytest.approx(200e-6)
        smu.measure()


def test_a_long_sweep_goes_in_chunks_of_half_a_second_with_the_bias_following_it():
    """At NPLC 1 with autozero a cycle takes up to ~67 ms (50 Hz): 7 points a chunk, so a
    stop waits at most ~0.5 s for the 2400.  Between chunks the output sits at the bias,
    each chunk's first level; afterwards the bias is back at 0."""
    levels = [0.5 * k for k in range(10)]
    first = ",".join(
        reading(v, 1e-4 * v, 0.07 * k, V_SOURCE_I_MEAS) for k, v in enumerate(levels[:7])
    )
    rest = ",".join(
        reading(v, 1e-4 * v, 0.07 * k, V_SOURCE_I_MEAS) for k, v in enumerate(levels[7:], 7)
    )
    pairs = (
        INIT
        + configured()
        + [
            (":SOURCE:VOLTAGE 0", None),
            ("*OPC?", "1"),
            (":SOUR:LIST:VOLT 0,0.5,1,1.5,2,2.5,3", None),
            (":SOUR:VOLT:MODE LIST", None),
            (":SOUR:SWE:CAB NEV", None),
            (":TRIG:COUN 7", None),
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":READ?", first),
            (":SOURCE:VOLTAGE 3.5", None),
            ("*OPC?", "1"),
            (":SOUR:LIST:VOLT 3.5,4,4.5", None),
            (":SOUR:SWE:CAB NEV", None),
            (":TRIG:COUN 3", None),
            (":READ?", rest),
            (":SOURCE:VOLTAGE 0", None),
            ("*OPC?", "1"),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        chunks = list(smu.sweep_chunks(levels))
        assert [len(c) for c in chunks] == [7, 3]
        assert [p.voltage for c in chunks for p in c] == pytest.approx(levels)


def test_sweep_aborting_on_compliance_returns_the_points_taken():
    reply = ",".join(
        [
            reading(1.0, 1e-3, 0.0, V_SOURCE_I_MEAS),
            reading(1.8, 9e-3, 0.1, V_SOURCE_I_MEAS),
        ]
    )
    pairs = (
        INIT
        + configured()
        + [
            (":SOUR:LIST:VOLT 1,2,3", None),
            (":SOUR:VOLT:MODE LIST", None),
            (":SOUR:SWE:CAB EARL", None),
            (":TRIG:COUN 3", None),
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":READ?", reply),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        points = smu.sweep([1.0, 2.0, 3.0], abort_on_compliance=True)
        assert [p.voltage for p in points] == [1.0, 1.8]


def test_sweep_aborted_before_its_first_point_returns_no_readings():
    pairs = (
        INIT
        + configured()
        + [
            (":SOUR:LIST:VOLT 5,6", None),
            (":SOUR:VOLT:MODE LIST", None),
            (":SOUR:SWE:CAB EARL", None),
            (":TRIG:COUN 2", None),
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":READ?", ""),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        assert smu.sweep([5.0, 6.0], abort_on_compliance=True) == []


def test_staircase_sweep():
    reply = ",".join(reading(v, 0.0, 0.0, V_SOURCE_I_MEAS) for v in (-0.7, -0.3, 0.1))
    pairs = (
        INIT
        + configured()
        + [
            (":SOUR:VOLT:STAR -0.7", None),
            (":SOUR:VOLT:STOP 0.1", None),
            (":SOUR:SWE:POIN 3", None),
            (":SOUR:SWE:SPAC LIN", None),
            (":SOUR:SWE:RANG BEST", None),
            (":SOUR:VOLT:MODE SWE", None),
            (":SOUR:SWE:CAB NEV", None),
            (":TRIG:COUN 3", None),
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":READ?", reply),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        assert [p.voltage for p in smu.staircase_sweep(-0.7, 0.1, 3)] == [-0.7, -0.3, 0.1]


def test_pulsed_cycles_use_auto_output_off_and_leave_level_at_zero():
    reply = ",".join(reading(5.0, 2e-3, 0.1 * k, V_SOURCE_I_MEAS) for k in range(3))
    pairs = (
        INIT
        + configured("0.05")
        + [
            ("OUTPUT 0", None),
            (":OUTPUT:SMODE NORM", None),
            (":SOURCE:VOLTAGE 5", None),
            ("*OPC?", "1"),
            (":SOURCE:DELAY 0.001", None),
            (":SENSE:CURRENT:NPLCYCLES 0.01", None),
            (":TRIGGER:DELAY 0.1", None),
            (":TRIG:COUN 3", None),
            (":SOURCE:CLEAR:AUTO 1", None),
            (":READ?", reply),
            (":SOURCE:CLEAR:AUTO 0", None),
            (":TRIGGER:DELAY 0", None),
            (":SOURCE:VOLTAGE 0", None),
            ("*OPC?", "1"),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.05)
        pulses = smu.pulsed_cycles(5.0, 3, source_delay=1e-3, nplc=0.01, off_time=0.1)
        assert [p.time for p in pulses] == pytest.approx([0.0, 0.1, 0.2])


def test_shutdown_aborts_ramps_in_steps_and_turns_output_off():
    pairs = (
        INIT
        + configured()
        + [
            (":SOURCE:VOLTAGE 5", None),
            ("*OPC?", "1"),
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":ABOR", None),
            (":SOUR:VOLT:MODE FIX", None),
            (":SOURCE:VOLTAGE 4", None),
            (":SOURCE:VOLTAGE 3", None),
            (":SOURCE:VOLTAGE 2", None),
            (":SOURCE:VOLTAGE 1", None),
            (":SOURCE:VOLTAGE 0", None),
            (":SOURCE:CLEAR:AUTO 0", None),
            ("OUTPUT 0", None),
            ("OUTPUT?", "0"),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        smu.set_level(5.0)
        smu.enable_output()
        smu.shutdown()


def test_shutdown_without_ramp():
    pairs = (
        INIT
        + configured()
        + [
            (":SOURCE:VOLTAGE 5", None),
            ("*OPC?", "1"),
            (":ABOR", None),
            (":SOUR:VOLT:MODE FIX", None),
            (":SOURCE:CLEAR:AUTO 0", None),
            ("OUTPUT 0", None),
            ("OUTPUT?", "0"),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        smu.set_level(5.0)
        smu.shutdown(ramp=False)


@pytest.mark.parametrize(
    ("action", "limit"),
    [
        (lambda smu: smu.set_level(250.0), "±210 V"),
        (lambda smu: smu.set_level(-30.0), "105 mA"),  # 0.5 A compliance needs ≤ 21 V
        (lambda smu: smu.sweep([0.0] * 2501), "1–2500 points"),
        (lambda smu: smu.sweep([0.0, 1.0, 300.0]), "±210 V"),
        (lambda smu: smu.staircase_sweep(0.0, 1.0, 3000), "2–2500 points"),
        (lambda smu: smu.staircase_sweep(0.0, 1.0, 10, spacing="log"), "zero"),
        (lambda smu: smu.configure_source("voltage", 0.01, nplc=20), "0.01–10"),
        (lambda smu: smu.configure_source("voltage", 0.01, nplc=0.001), "0.01–10"),
        (lambda smu: smu.configure_source("voltage", 2.0), "1.05"),
        (lambda smu: smu.configure_source("current", 300.0), "210"),
        (lambda smu: smu.configure_source("voltage", 0.01, source_range=400), "210"),
        (lambda smu: smu.configure_source("resistance", 0.01), "'voltage', 'current'"),
        (
            lambda smu: smu.pulsed_cycles(
                2.0, 5, source_delay=1e-3, nplc=0.01, output_off_mode="HIMP"
            ),
            "HIMP",
        ),
        (lambda smu: smu.pulsed_cycles(2.0, 5, source_delay=1e-3, nplc=11), "0.01–10"),
    ],
)
def test_rejected_settings_send_no_scpi(action, limit):
    with expected_protocol(Keithley2400, INIT + configured("0.5")) as smu:
        smu.configure_source("voltage", 0.5)
        with pytest.raises(InstrumentSettingError, match=limit):
            action(smu)


def test_current_above_105_ma_with_high_voltage_compliance_is_refused():
    pairs = INIT + [
        (":SOURCE:FUNCTION CURR", None),
        (":SOUR:CURR:MODE FIX", None),
        (":SENS:FUNC:CONC 1", None),
        (':SENS:FUNC "VOLT","CURR"', None),
        (":SENSE:VOLTAGE:PROTECTION 50", None),
        (":SOURCE:CURRENT:RANGE:AUTO 1", None),
        (":SENSE:VOLTAGE:RANGE:AUTO 1", None),
        (":SENSE:VOLTAGE:NPLCYCLES 1", None),
        (":SOURCE:DELAY:AUTO 1", None),
        (":SYSTEM:AZERO:STATE 1", None),
        (":ARM:COUN 1", None),
        (":TRIG:COUN 1", None),
    ]
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("current", 50.0)
        with pytest.raises(InstrumentSettingError, match="1.2 A is beyond"):
            smu.set_level(1.2)
        with pytest.raises(InstrumentSettingError, match="21 V"):
            smu.set_level(0.5)


def test_level_before_configure_and_measure_with_output_off_send_nothing():
    with expected_protocol(Keithley2400, INIT + configured() + [("OUTPUT 0", None)]) as smu:
        with pytest.raises(InstrumentSettingError, match="configure_source"):
            smu.set_level(1.0)
        smu.configure_source("voltage", 0.01)
        smu.disable_output()
        with pytest.raises(InstrumentSettingError, match="enable_output"):
            smu.measure()


def test_over_range_reading_is_an_error_not_a_number():
    pairs = (
        INIT
        + configured()
        + [
            ("OUTPUT 1", None),
            ("*OPC?", "1"),
            (":READ?", "+1.0E+00,+9.9E+37,+9.91E+37,+1.0E+00,+1.0E+00"),
        ]
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        smu.enable_output()
        with pytest.raises(OverRangeError, match="over range"):
            smu.measure()


@pytest.mark.parametrize("reply", ["#$%garbage", "1.0,2.0,3.0", "1,2,3,4,5,6,7,8,9,10"])
def test_unparsable_or_wrong_sized_reading_is_garbled(reply):
    pairs = INIT + configured() + [("OUTPUT 1", None), ("*OPC?", "1"), (":READ?", reply)]
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        smu.enable_output()
        with pytest.raises(GarbledReplyError):
            smu.measure()


def test_output_off_mode():
    with expected_protocol(Keithley2400, INIT + [(":OUTPUT:SMODE ZERO", None)]) as smu:
        smu.set_output_off_mode("zero")
        with pytest.raises(InstrumentSettingError, match="'normal', 'zero', 'himp', 'guard'"):
            smu.set_output_off_mode("off")


def test_identity_is_parsed_from_idn():
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4105123,C30   Mar 17 2006 09:29:29/A02  /K/J"
    with expected_protocol(Keithley2400, INIT + [("*IDN?", idn)]) as smu:
        ident = smu.identity()
        assert (ident.manufacturer, ident.model, ident.serial) == (
            "KEITHLEY INSTRUMENTS INC.",
            "2400",
            "4105123",
        )
        assert ident.firmware.startswith("C30")
        assert smu.identity() is ident  # cached: no second query


@pytest.mark.parametrize("first", ["arm_count", "trigger_count"])
def test_arm_times_trigger_count_above_2500_is_refused_in_either_order(first):
    """pymeasure's guard on the product: the second count is refused before any SCPI
    (the 2400 itself would file -221 and silently keep its old count)."""
    second = "trigger_count" if first == "arm_count" else "arm_count"
    scpi = {"arm_count": ":ARM:COUN", "trigger_count": ":TRIG:COUN"}
    pairs = INIT + [(f"{scpi[second]}?", "1"), (f"{scpi[first]} 100", None)]
    with expected_protocol(Keithley2400, pairs) as smu:
        setattr(smu, first, 100)  # the other count is unknown: asked once
        with pytest.raises(InstrumentSettingError, match="100 × .* = 10000 readings.*2500"):
            setattr(smu, second, 100)
        with pytest.raises(InstrumentSettingError, match="= 2600 readings"):
            setattr(smu, second, 26)


def test_counts_known_from_configure_are_checked_without_a_query():
    pairs = INIT + configured() + [(":TRIG:COUN 2500", None), (":TRIG:COUN 1250", None)]
    pairs += [(":ARM:COUN 2", None)]
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        smu.trigger_count = 2500
        with pytest.raises(InstrumentSettingError, match="arm_count 2 × trigger_count 2500"):
            smu.arm_count = 2
        smu.trigger_count = 1250
        smu.arm_count = 2  # exactly 2500


def test_count_the_instrument_already_holds_limits_the_other():
    pairs = INIT + [(":ARM:COUN?", "100")]
    with expected_protocol(Keithley2400, pairs) as smu:
        with pytest.raises(InstrumentSettingError, match="trigger_count 26 × arm_count 100"):
            smu.trigger_count = 26


@pytest.mark.parametrize("count", [0, 2501, True, 2.5, "10"])
def test_count_outside_1_to_2500_or_not_whole_sends_nothing(count):
    with expected_protocol(Keithley2400, INIT) as smu:
        with pytest.raises(InstrumentSettingError, match="allowed 1–2500"):
            smu.arm_count = count


def test_a_level_change_returns_only_once_the_instrument_confirms_it():
    """Every level (and output-on) is followed by *OPC?: a dwell that follows starts at the
    new level; anything but "1" is not a confirmation."""
    pairs = INIT + configured() + [(":SOURCE:VOLTAGE 1.5", None), ("*OPC?", "0")]
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.configure_source("voltage", 0.01)
        with pytest.raises(GarbledReplyError, match=r"\*OPC\? after source voltage 1.5"):
            smu.set_level(1.5)


@pytest.mark.parametrize(
    ("function", "level", "compliance", "message"),
    [
        ("voltage", 250.0, 0.01, "source voltage 250 V is beyond the ±210 V range"),
        ("current", -1.2, 5.0, "source current -1.2 A is beyond the ±1.05 A range"),
        ("voltage", 5.0, 1.5, r"compliance 1.5 A is outside the allowed \(0, 1.05\] A"),
        ("current", 0.01, 0.0, r"compliance 0 V is outside the allowed \(0, 210\] V"),
        ("voltage", 30.0, 0.5, "source voltage 30 V needs the ±210 V range"),
        ("current", 0.5, 50.0, "0.5 A is above 105 mA, allowed only up to ±21 V"),
        ("voltage", float("nan"), 0.01, "source voltage level nan is not a number"),
        ("resistance", 1.0, 0.01, "'resistance' is not one of 'voltage', 'current'"),
    ],
)
def test_check_drive_refuses_before_any_scpi(function, level, compliance, message):
    """The 2400's own ranges and envelope, asked of the driver before anything is set
    (procedures ask the class before the instrument is even opened)."""
    with expected_protocol(Keithley2400, INIT) as smu:  # nothing after the driver's init
        with pytest.raises(InstrumentSettingError, match=f"^Keithley 2400: .*{message}"):
            smu.check_drive(function, level, compliance)
    with pytest.raises(InstrumentSettingError, match=message):
        Keithley2400.check_drive(function, level, compliance)


def test_check_drive_passes_the_envelope_corners():
    for function, level, compliance in [
        ("voltage", 210.0, 0.105),
        ("voltage", -21.0, 1.05),
        ("current", 1.05, 21.0),
        ("current", -0.105, 210.0),
        ("voltage", 5.0, None),
    ]:
        Keithley2400.check_drive(function, level, compliance)
