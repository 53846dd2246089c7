"""The lifetime-rig driver against the simulated rig over a real socket:// URL."""

from __future__ import annotations

import socket

import pytest

from labrig.clock import SimulatedClock
from labrig.config import FaultSpec, load_preset
from labrig.devices import DeviceConfig
from labrig.drivers.lifetime_rig import connect
from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentNotFoundError,
    InstrumentSettingError,
    InstrumentTimeoutError,
    WrongInstrumentError,
)
from labrig.interfaces import ChannelReading, LifetimeRig
from labrig.simulators.lifetime_rig import (
    LINK_DOWN_S,
    RigCommandError,
    RigServer,
    SimulatedLifetimeRig,
)

DEVICE = DeviceConfig.model_validate(load_preset("red_cspbi3"))
AMPS = 2e-4


def _serve(channels=8, faults=None):
    rig = SimulatedLifetimeRig(
        DEVICE.model,
        DEVICE.active_area_cm2,
        channels=channels,
        clock=SimulatedClock(start=1e9),
        seed=1,
        faults=faults,
    )
    return rig, RigServer(rig).start()


@pytest.fixture
def rig_and_driver():
    rig, server = _serve()
    driver = connect(server.url, timeout_s=10)
    yield rig, driver
    driver.close()
    server.stop()


def test_connect_reads_identity_channels_and_ranges(rig_and_driver):
    _, driver = rig_and_driver
    assert isinstance(driver, LifetimeRig)
    ident = driver.identity()
    assert (ident.manufacturer, ident.model, ident.serial, ident.firmware) == (
        "LABRIG",
        "LTR-8",
        "SIM00001",
        "1.0",
    )
    assert driver.channels == 8
    assert driver.max_current_a == 0.1
    assert driver.compliance_v == 12.0


def test_a_channel_set_is_read_in_one_exchange(rig_and_driver):
    rig, driver = rig_and_driver
    for n in (2, 5):
        driver.set_current(n, AMPS)
        driver.set_output(n, True)
    rig.clock.advance(100)
    commands = rig.commands
    readings = driver.measure_channels([5, 1, 2])
    assert rig.commands == commands + 1
    assert [(r.channel, r.status) for r in readings] == [(5, "OK"), (1, "OFF"), (2, "OK")]
    assert readings[0].current == pytest.approx(AMPS)
    assert readings[2].voltage == pytest.approx(rig.device(2).voltage_at(AMPS), rel=1e-3)
    assert readings[0].time == pytest.approx(100.0)
    with pytest.raises(InstrumentSettingError, match="channel 9 does not exist"):
        driver.measure_channels([1, 9])
    assert rig.commands == commands + 1  # refused before anything was sent


def test_long_channel_sets_are_cut_at_the_protocols_line_length():
    from labrig.drivers.lifetime_rig import MAX_LINE, _batches

    batches = list(_batches(list(range(1, 65))))
    assert [n for batch in batches for n in batch] == list(range(1, 65))
    assert all(len("MEAS? " + ",".join(map(str, b))) <= MAX_LINE for b in batches)
    assert len(batches) == 2


class _FirmwareWithoutSetRead(SimulatedLifetimeRig):
    """A rig from before ``MEAS?``: it answers -113 to it, like any unknown header."""

    def _dispatch(self, line: str) -> str:
        if line.upper().startswith("MEAS?"):
            raise RigCommandError(-113, "Undefined header; MEAS?")
        return super()._dispatch(line)


def test_a_rig_without_the_set_read_is_read_channel_by_channel():
    rig = _FirmwareWithoutSetRead(
        DEVICE.model, DEVICE.active_area_cm2, channels=3, clock=SimulatedClock(start=1e9)
    )
    with RigServer(rig) as server:
        driver = connect(server.url, timeout_s=10)
        try:
            commands = rig.commands
            assert [r.channel for r in driver.measure_channels([3, 1])] == [3, 1]
            assert rig.commands == commands + 3  # the refused MEAS?, then one per channel
            assert [r.status for r in driver.measure_channels([2])] == ["OFF"]
            assert rig.commands == commands + 4  # no second try of MEAS?
        finally:
            driver.close()


def test_drive_and_measure(rig_and_driver):
    rig, driver = rig_and_driver
    driver.set_current(3, AMPS)
    assert driver.current_setpoint(3) == pytest.approx(AMPS)
    driver.set_output(3, True)
    assert driver.output_enabled(3)
    rig.clock.advance(100)
    reading = driver.measure(3)
    assert isinstance(reading, ChannelReading)
    assert reading.channel == 3
    assert reading.current == pytest.approx(AMPS)
    assert reading.voltage == pytest.approx(rig.device(3).voltage_at(AMPS), rel=1e-3)
    assert reading.photodiode_current > 1e-8
    assert reading.time == pytest.approx(100.0)
    assert reading.status == "OK"
    assert driver.status(3) == "OK"
    assert driver.rig_time() == pytest.approx(100.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda d: d.set_current(0, AMPS), "channel 0 does not exist"),
        (lambda d: d.set_output(9, True), r"channel 9 does not exist \(allowed 1..8\)"),
        (lambda d: d.measure(True), "must be an integer"),
        (lambda d: d.set_current(1, 0.2), "0.2 A is outside the rig's range 0..0.1 A"),
        (lambda d: d.set_current(1, -1e-3), "outside the rig's range"),
        (lambda d: d.set_watchdog(-1), "watchdog"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_sent(rig_and_driver, call, match):
    rig, driver = rig_and_driver
    before = rig.commands
    with pytest.raises(InstrumentSettingError, match=match):
        call(driver)
    assert rig.commands == before


def test_error_replies_map_to_labrig_errors(rig_and_driver):
    _, driver = rig_and_driver
    with pytest.raises(InstrumentSettingError, match="-222") as setting:
        driver.write("CH1:CURR 5")
    assert setting.value.code == -222
    with pytest.raises(InstrumentError, match="Undefined header") as other:
        driver.query("NOPE?")
    assert other.value.code == -113
    assert not isinstance(other.value, InstrumentSettingError)


def test_shutdown_turns_every_channel_off(rig_and_driver):
    rig, driver = rig_and_driver
    for n in (1, 4, 8):
        driver.set_current(n, AMPS)
        driver.set_output(n, True)
    driver.shutdown()
    assert all(rig.handle(f"CH{n}:OUTP?") == "OFF" for n in range(1, 9))
    driver.shutdown()  # already safe: no error


def test_a_reply_cut_short_never_pairs_with_the_next_command(rig_and_driver, monkeypatch):
    """Ctrl-C inside a ``MEAS?`` read: its reply arrives after the next command's input
    reset (as on a slow link); shutdown's ``OUTP OFF`` must still get its own ``OK``."""
    rig, driver = rig_and_driver
    driver.set_current(1, AMPS)
    driver.set_output(1, True)

    def interrupted(port):
        raise KeyboardInterrupt

    read_line = driver._read_line
    monkeypatch.setattr(driver, "_read_line", interrupted)
    with pytest.raises(KeyboardInterrupt):
        driver.measure(1)
    monkeypatch.setattr(driver, "_read_line", read_line)
    monkeypatch.setattr(driver._port, "reset_input_buffer", lambda: None)
    driver.shutdown()  # no GarbledReplyError: "expected OK to 'CH1:OUTP OFF', got '6.1,...'"
    assert rig.handle("CH1:OUTP?") == "OFF"
    assert driver.measure(1).status == "OFF"


def test_silence_is_a_timeout():
    rig, server = _serve(faults=[FaultSpec(kind="timeout", after=4)])
    driver = connect(server.url, timeout_s=0.3)  # connect uses 4 commands
    try:
        with pytest.raises(InstrumentTimeoutError, match="no reply"):
            driver.measure(1)
    finally:
        driver.close()
        server.stop()


def test_garbled_reply():
    rig, server = _serve(faults=[FaultSpec(kind="garbled", after=4)])
    driver = connect(server.url, timeout_s=10)
    try:
        with pytest.raises(GarbledReplyError):
            driver.measure(1)
        assert driver.measure(1).status == "OFF"  # one-shot
    finally:
        driver.close()
        server.stop()


def test_lost_link_then_reconnect():
    rig, server = _serve(faults=[FaultSpec(kind="disconnect", after=6)])
    driver = connect(server.url, timeout_s=10)
    try:
        driver.set_current(2, AMPS)
        driver.set_output(2, True)
        with pytest.raises(InstrumentDisconnectedError, match="link lost"):
            driver.measure(2)
        with pytest.raises(InstrumentDisconnectedError):
            driver.reconnect()  # still down
        rig.clock.advance(LINK_DOWN_S + 1)
        driver.reconnect()
        assert driver.measure(2).status == "OK"  # the output held through the drop
    finally:
        driver.close()
        server.stop()


def test_nothing_listening_is_not_found():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InstrumentNotFoundError, match="no lifetime rig"):
        connect(f"socket://127.0.0.1:{port}", timeout_s=0.5)


def test_something_else_on_the_port_is_the_wrong_instrument():
    # loop:// echoes: "*IDN?" comes back, which is not a rig identity
    with pytest.raises(WrongInstrumentError, match="IDN"):
        connect("loop://", timeout_s=0.2)


def test_closed_driver_reports_disconnected(rig_and_driver):
    _, driver = rig_and_driver
    driver.close()
    driver.close()  # idempotent
    with pytest.raises(InstrumentDisconnectedError, match="not connected"):
        driver.measure(1)


def _scripted_rig(replies: dict[str, list[bytes | float]]):
    """A one-client TCP peer answering each command with its reply pieces (a number
    between pieces is a pause in seconds), so the driver's line reading meets replies
    split across TCP segments."""
    import contextlib
    import threading
    import time

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines, contextlib.suppress(OSError):
            for line in lines:
                for piece in replies[line.decode().strip()]:
                    if isinstance(piece, float):
                        time.sleep(piece)
                    else:
                        conn.sendall(piece)

    threading.Thread(target=serve, daemon=True).start()
    return f"socket://127.0.0.1:{listener.getsockname()[1]}", listener


RIG_SETUP = {
    "*IDN?": [b"LABRIG,LTR-8,", 0.02, b"SIM9,1.0\n"],
    "SYST:CHAN?": [b"8", 0.02, b"\n"],
    "SYST:CURR:MAX?": [b"1.0E-02\n"],
    "SYST:VOLT:MAX?": [b"1.0E+01\n"],
}


def test_a_reply_split_across_segments_is_read_whole():
    replies = {
        **RIG_SETUP,
        "CH1:MEAS?": [b"4.4731E+00,5.0000E-04,", 0.05, b"3.1275E-07,", 0.05, b"3600.125,OK\n"],
    }
    url, listener = _scripted_rig(replies)
    driver = connect(url, timeout_s=2)
    try:
        assert driver.identity().serial == "SIM9"
        assert driver.measure(1) == ChannelReading(1, 4.4731, 5e-4, 3.1275e-7, 3600.125, "OK")
    finally:
        driver.close()
        listener.close()


def test_a_line_beyond_the_reply_is_not_taken_as_part_of_it():
    replies = {**RIG_SETUP, "CH1:STAT?": [b"OK\nOFF\n"]}
    url, listener = _scripted_rig(replies)
    driver = connect(url, timeout_s=2)
    try:
        assert driver.status(1) == "OK"
    finally:
        driver.close()
        listener.close()


def test_a_reply_that_trickles_past_the_time_out_is_a_time_out():
    replies = {**RIG_SETUP, "CH1:STAT?": [b"O", 0.4, b"K", 0.4, b"\n"]}
    url, listener = _scripted_rig(replies)
    driver = connect(url, timeout_s=2)
    driver.timeout_s = 0.5  # the reply's three pieces take 0.8 s
    try:
        with pytest.raises(InstrumentTimeoutError, match="no reply"):
            driver.status(1)
    finally:
        driver.close()
        listener.close()
