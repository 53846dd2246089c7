"""The simulated switches: the 7001's SCPI (channel lists, ranges, the closed-channel
queries, the error queue, *RST) and the relay board's line protocol, each relay closure
taking its settling time on the shared clock and moving the physics' connection."""

from __future__ import annotations

import pytest

from labrig.simulators.keithley7001 import RELAY_SETTLE_S, SimulatedKeithley7001
from labrig.simulators.physics import CoupledPhysics
from labrig.simulators.relay_board import SimulatedRelayBoard
from labrig.switching import switch_channels


@pytest.fixture
def k7001(switch_configs):
    physics = CoupledPhysics(switch_configs.switch_config("keithley7001"))
    return SimulatedKeithley7001(physics, switch_channels("keithley7001", 8))


def ask(sim, line: str) -> str:
    sim.write(line)
    return sim.read()


def test_7001_close_list_range_and_queries(k7001):
    t0 = k7001.relays.physics.clock.time()
    k7001.write(":ROUT:CLOS (@1!1:1!3)")
    assert k7001.relays.physics.clock.time() - t0 == pytest.approx(3 * RELAY_SETTLE_S, abs=1e-4)
    assert ask(k7001, ":rout:clos? (@1!1,1!4,1!3)") == "1,0,1"
    assert ask(k7001, ":ROUTe:CLOSe:STATe?") == "(@1!1,1!2,1!3)"
    assert k7001.relays.physics.closed_channels == ("1!1", "1!2", "1!3")
    k7001.write(":ROUT:OPEN (@1!2)")
    assert ask(k7001, ":ROUT:CLOS:STAT?") == "(@1!1,1!3)"
    k7001.write(":ROUT:OPEN:ALL")
    assert ask(k7001, ":ROUT:CLOS:STAT?") == "(@)"
    assert k7001.relays.physics.closed_channels == ()


def test_7001_refuses_a_missing_channel_into_the_error_queue_and_rst_opens(k7001):
    k7001.write(":ROUT:CLOS (@1!2)")
    k7001.write(":ROUT:CLOS (@3!1)")
    assert ask(k7001, ":SYST:ERR?") == '-222,"Parameter data out of range"'
    k7001.write(":ROUT:CLOS 1!1")
    assert ask(k7001, ":SYST:ERR?") == '-104,"Data type error"'
    assert ask(k7001, ":SYST:ERR?") == '0,"No error"'
    assert ask(k7001, ":ROUT:CLOS:STAT?") == "(@1!2)"
    k7001.write("*RST")
    assert ask(k7001, ":ROUT:CLOS:STAT?") == "(@)"


def test_relay_board_protocol_replies_and_errors(switch_configs):
    physics = CoupledPhysics(switch_configs.switch_config("relay_board"))
    board = SimulatedRelayBoard(physics, switch_channels("relay_board", 8))
    assert board.handle("*IDN?") == "LABRIG,RB-8,SIM00001,1.0"
    assert board.handle("CHAN?") == "8"
    assert board.handle("CLOSED?") == "NONE"
    assert board.handle("close 2") == "OK"
    assert board.handle("CLOSE 4") == "OK"  # the board does not break before make
    assert board.handle("CLOSED?") == "2,4"
    assert physics.closed_channels == ("2", "4")
    assert board.handle("CLOSE 9") == 'ERR -222,"Data out of range; channel 9 (board has 1..8)"'
    assert board.handle("CLOSE") == 'ERR -109,"Missing parameter; a channel number"'
    assert board.handle("FLIP 1") == "ERR -113,\"Undefined header; 'FLIP'\""
    assert board.handle("SYST:ERR?") == '-222,"Data out of range; channel 9 (board has 1..8)"'
    assert board.handle("OPEN ALL") == "OK"
    assert board.handle("CLOSED?") == "NONE"
    assert board.handle("") is None
