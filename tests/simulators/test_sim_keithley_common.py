"""The trigger-model, buffer and format plumbing both simulated Keithleys share
(labrig.simulators.keithley_common), checked on each with its own limits."""

from __future__ import annotations

import pytest

from labrig.clock import SimulatedClock
from labrig.config import load_config
from labrig.simulators.keithley2400 import SimulatedKeithley2400
from labrig.simulators.keithley6485 import SimulatedKeithley6485
from labrig.simulators.physics import CoupledPhysics
from labrig.simulators.scpi import SCPIInstrument


@pytest.fixture(params=["2400", "6485"])
def keithley(request: pytest.FixtureRequest) -> SCPIInstrument:
    bench = CoupledPhysics(load_config("sim"), clock=SimulatedClock(start=0.0))
    cls = SimulatedKeithley2400 if request.param == "2400" else SimulatedKeithley6485
    return cls(bench)


def _errors(inst: SCPIInstrument) -> list[str]:
    out = []
    while (e := inst.handle(":SYST:ERR?")) != '0,"No error"':
        out.append(e)
    return out


def test_counts_share_the_buffer(keithley: SCPIInstrument) -> None:
    assert keithley.handle(":TRIG:COUN?") == "1" and keithley.handle(":ARM:COUN?") == "1"
    keithley.handle(":TRIG:COUN 1250;:ARM:COUN 2")
    assert keithley.handle(":TRIG:COUN?;:ARM:COUN?") == "1250;2"
    keithley.handle(":ARM:COUN 3")  # 3750 readings > the 2500-reading buffer
    assert keithley.handle(":ARM:COUN?") == "2"
    assert _errors(keithley) == ['-221,"Settings conflict"']
    keithley.handle(":TRIG:COUN 2501")
    assert _errors(keithley) == ['-222,"Parameter data out of range"']


def test_trigger_delay_and_link_lines_follow_each_instruments_limits(
    keithley: SCPIInstrument,
) -> None:
    lines = keithley.LINK_LINES  # type: ignore[attr-defined]
    assert lines == (4 if isinstance(keithley, SimulatedKeithley2400) else 6)
    keithley.handle(f":TRIG:OLIN {lines};:TRIG:ILIN {lines}")
    assert keithley.handle(":TRIG:OLIN?;:TRIG:ILIN?") == f"{lines};{lines}"
    assert _errors(keithley) == []
    keithley.handle(f":TRIG:OLIN {lines + 1}")
    assert keithley.handle(":TRIG:OLIN?") == str(lines)
    assert _errors(keithley) == ['-222,"Parameter data out of range"']
    keithley.handle(":TRIG:DEL 0.25")
    assert float(keithley.handle(":TRIG:DEL?")) == 0.25
    keithley.handle(":TRIG:DEL 1000")
    assert _errors(keithley) == ['-222,"Parameter data out of range"']


def test_elements_keep_the_instruments_order(keithley: SCPIInstrument) -> None:
    if isinstance(keithley, SimulatedKeithley2400):
        keithley.handle(":FORM:ELEM STAT,VOLT")
        assert keithley.handle(":FORM:ELEM?") == "VOLT,STAT"
    else:
        keithley.handle(":FORM:ELEM TIME,READ")
        assert keithley.handle(":FORM:ELEM?") == "READ,TIME"
    keithley.handle(":FORM:ELEM")
    assert _errors(keithley) == ['-109,"Missing parameter"']


def test_buffer_fills_once_when_armed_and_fetch_needs_a_reading(
    keithley: SCPIInstrument,
) -> None:
    assert keithley.handle(":FETC?") is None
    assert _errors(keithley) == ['-230,"Data corrupt or stale"']
    if isinstance(keithley, SimulatedKeithley2400):
        keithley.handle(":SOUR:VOLT 1;:SENS:CURR:PROT 0.01;:OUTP ON")
    keithley.handle(":TRAC:POIN 3;:TRAC:FEED SENS;:TRAC:FEED:CONT NEXT;:TRIG:COUN 2")
    assert keithley.handle(":TRAC:FEED:CONT?") == "NEXT"
    keithley.handle(":INIT")
    assert keithley.handle(":TRAC:POIN:ACT?") == "2"
    keithley.handle(":INIT")  # fills the last place, then the buffer stops taking
    assert keithley.handle(":TRAC:POIN:ACT?") == "3"
    assert keithley.handle(":TRAC:FEED:CONT?") == "NEV"
    assert keithley.handle(":FETC?") is not None  # the last run's readings
    assert _errors(keithley) == []
