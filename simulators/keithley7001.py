"""A simulated Keithley 7001 switch system (two card slots, channels ``slot!channel``).

The subset of the Model 7001 SCPI a pixel switcher uses: ``:ROUTe:CLOSe <list>`` closes
channels (``(@1!1)``, ``(@1!1,1!3)``, ``(@1!1:1!4)``), ``:ROUTe:OPEN <list>`` and
``:ROUTe:OPEN:ALL`` open them, ``:ROUTe:CLOSe? <list>`` answers ``1``/``0`` per listed
channel, ``:ROUTe:CLOSe:STATe?`` lists the closed channels (``(@1!1)``, ``(@)`` when none),
``*RST`` opens every channel, and a channel the cards lack is error -222 "Parameter data
out of range" in the error queue (``:SYST:ERR?``).  A relay closure takes
``RELAY_SETTLE_S`` on the shared clock before the next command runs, so ``*OPC?`` after
a close answers once the contact has settled.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from labrig.config import FaultSpec
from labrig.registry import driver
from labrig.simulators.relays import RelayBank
from labrig.simulators.server import SCPIServer

if TYPE_CHECKING:
    from labrig.simulators.lab import SimulatorRequest, Started
from labrig.simulators.scpi import SCPIError, SCPIInstrument

#: relay actuation + settling of a 7011-class card, s (the simulator's assumption)
RELAY_SETTLE_S = 3e-3
IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 7001,0000001,B06  /A02"
_RANGE = re.compile(r"^(\d+)!(\d+):(\d+)!(\d+)$")


class SimulatedKeithley7001(SCPIInstrument):
    """The switch mainframe; ``relays`` is its RelayBank (ground truth for tests)."""

    def __init__(
        self, physics: Any, channels: tuple[str, ...], faults: list[FaultSpec] | None = None
    ) -> None:
        self.relays = RelayBank(
            physics, channels, RELAY_SETTLE_S, faults, driver("keithley7001").faults
        )
        super().__init__()
        self.faults = self.relays.faults

    def idn(self) -> str:
        return IDN

    def reset(self) -> None:
        self.relays.open()

    def _build_tree(self) -> None:
        t = self.tree
        t.add(":ROUTe:CLOSe", set=self._close, query=self._close_query)
        t.add(":ROUTe:CLOSe:STATe", query=self._state)
        t.add(":ROUTe:OPEN", set=lambda args: self.relays.open(self._channel_list(args)))
        t.add(":ROUTe:OPEN:ALL", set=lambda args: self.relays.open())

    def _channel_list(self, args: list[str]) -> tuple[str, ...]:
        """``(@1!1,1!3:1!5)`` (split at its commas by the engine) -> channel names."""
        text = ",".join(args).replace(" ", "")
        if not (text.startswith("(@") and text.endswith(")")):
            raise SCPIError(-104)  # Data type error: not a channel list
        names: list[str] = []
        for item in filter(None, text[2:-1].split(",")):
            match = _RANGE.match(item)
            if match:
                slot, first, slot2, last = map(int, match.groups())
                if slot != slot2:
                    raise SCPIError(-222)
                names += [f"{slot}!{ch}" for ch in range(first, last + 1)]
            else:
                names.append(item)
        for name in names:
            if name not in self.relays.channels:
                raise SCPIError(-222)
        return tuple(names)

    def _close(self, args: list[str]) -> None:
        for channel in self._channel_list(args):
            self.relays.close(channel)

    def _close_query(self, args: list[str]) -> str:
        closed = set(self.relays.closed())
        return ",".join("1" if c in closed else "0" for c in self._channel_list(args))

    def _state(self, args: list[str]) -> str:
        return "(@" + ",".join(self.relays.closed()) + ")"


def serve(request: SimulatorRequest) -> Started:
    """The simulated switch of ``request`` on the lab's physics, served over loopback (the
    registry's ``keithley7001`` simulator); its channels are the driver's for the config."""
    from labrig.simulators.lab import Started
    from labrig.switching import switch_channels

    channels = switch_channels("keithley7001", request.instrument.channels)
    instrument = SimulatedKeithley7001(request.physics, channels, faults=request.faults)
    return Started(instrument, server=SCPIServer(instrument, clock=request.clock))
