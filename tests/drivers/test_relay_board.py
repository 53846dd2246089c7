"""The relay-board driver over pyserial ``socket://`` against the simulated board: what it
reads at connect, closing and asking, and a channel the board lacks refused unsent."""

from __future__ import annotations

import pytest

from labrig.drivers.relay_board import connect
from labrig.errors import InstrumentSettingError, WrongInstrumentError
from labrig.simulators.physics import CoupledPhysics
from labrig.simulators.relay_board import RELAY_SETTLE_S, SimulatedRelayBoard
from labrig.simulators.server import SerialLineServer
from labrig.switching import switch_channels


@pytest.fixture
def served(switch_configs):
    physics = CoupledPhysics(switch_configs.switch_config("relay_board"))
    board = SimulatedRelayBoard(physics, switch_channels("relay_board", 6))
    with SerialLineServer(board, clock=physics.clock) as server:
        yield board, server


def test_connect_close_and_ask(served):
    board, server = served
    driver = connect(server.url, timeout_s=2)
    try:
        assert driver.identity().model == "RB-6"
        assert driver.channels == ("1", "2", "3", "4", "5", "6")
        assert driver.settle_s == RELAY_SETTLE_S
        driver.close("3")
        assert driver.closed() == ("3",) == board.relays.closed()
        driver.open_all()
        assert driver.closed() == ()
        with pytest.raises(InstrumentSettingError, match="no channel '7'; it has 1..6"):
            driver.close("7")
        assert [m[0] for m in board.relays.moves] == ["close 3", "open all"]
    finally:
        driver.close()


def test_an_instrument_that_is_not_a_board_is_refused(switch_configs):
    from labrig.simulators.keithley7001 import SimulatedKeithley7001

    physics = CoupledPhysics(switch_configs.switch_config("keithley7001"))
    k7001 = SimulatedKeithley7001(physics, switch_channels("keithley7001", 4))
    with SerialLineServer(k7001, clock=physics.clock) as server:
        with pytest.raises(WrongInstrumentError, match="does not speak the relay-board protocol"):
            connect(server.url, timeout_s=1)
