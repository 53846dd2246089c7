"""The exact SCPI the 7001 driver sends (pymeasure's expected_protocol): a close waits for
``*OPC?`` and reads the error queue, the closed list is asked, not remembered, and a
channel the cards lack sends nothing."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from labrig.drivers.keithley7001 import Keithley7001
from labrig.errors import GarbledReplyError, InstrumentSettingError
from labrig.interfaces import Switch

NO_ERROR = ("SYST:ERR?", '0,"No error"')


def test_is_a_switch_with_two_cards_of_ten():
    with expected_protocol(Keithley7001, []) as sw:
        assert isinstance(sw, Switch)
        assert sw.channels[0] == "1!1" and sw.channels[-1] == "2!10"
        assert len(sw.channels) == 20


def test_close_waits_for_the_relay_and_checks_the_error_queue():
    pairs = [(":ROUT:CLOS (@1!3)", None), ("*OPC?", "1"), NO_ERROR]
    with expected_protocol(Keithley7001, pairs) as sw:
        sw.close("1!3")


def test_a_refused_close_is_an_error_with_the_instruments_words():
    pairs = [
        (":ROUT:CLOS (@1!3)", None),
        ("*OPC?", "1"),
        ("SYST:ERR?", '-222,"Parameter data out of range"'),
        NO_ERROR,
    ]
    with expected_protocol(Keithley7001, pairs) as sw:
        with pytest.raises(InstrumentSettingError, match="-222.*Parameter data out of range"):
            sw.close("1!3")


def test_a_channel_the_cards_lack_sends_nothing():
    with expected_protocol(Keithley7001, []) as sw:
        with pytest.raises(InstrumentSettingError, match="no channel '3!1'; allowed 1!1 .. 2!10"):
            sw.close("3!1")


def test_open_all_then_closed_list_from_the_instrument():
    pairs = [
        (":ROUT:OPEN:ALL", None),
        ("*OPC?", "1"),
        (":ROUT:CLOS:STAT?", "(@)"),
        (":ROUT:CLOS:STAT?", "(@1!1,1!3)"),
    ]
    with expected_protocol(Keithley7001, pairs) as sw:
        sw.open_all()
        assert sw.closed() == ()
        assert sw.closed() == ("1!1", "1!3")


def test_one_channel_state_and_a_garbled_list():
    pairs = [(":ROUT:CLOS? (@1!2)", "1"), (":ROUT:CLOS:STAT?", "1!2")]
    with expected_protocol(Keithley7001, pairs) as sw:
        assert sw.is_closed("1!2") is True
        with pytest.raises(GarbledReplyError, match="not a channel list"):
            sw.closed()
