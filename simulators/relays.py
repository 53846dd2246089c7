"""The relays of a simulated switch, coupled to the simulated physics.

Both simulated switches (the Keithley 7001 and the relay board) keep their relays here:
closing a channel takes the relay's settling time on the shared clock and connects that
pixel's device to the SMU and the photodiode (``CoupledPhysics.connect_channels``);
opening every channel leaves the SMU on an open circuit.  Faults (``FaultInjector``,
counted per relay closure): ``no_confirm`` (the coil is driven but the contact never
makes: the channel stays open), ``stuck`` (a welded contact: every channel closed when it
fires stays closed through any open), ``disconnect`` (the link drops at a closure).
"""

from __future__ import annotations

from typing import Any

from labrig.config import FaultSpec
from labrig.simulators.faults import FaultInjector


class RelayBank:
    """Which relays are closed, and what that does to the physics."""

    def __init__(
        self,
        physics: Any,
        channels: tuple[str, ...],
        settle_s: float,
        faults: list[FaultSpec] | None,
        supported: tuple[str, ...],
    ) -> None:
        self.physics = physics
        self.channels = channels
        self.settle_s = settle_s
        self.faults = FaultInjector(faults, physics, supported)
        self._closed: set[str] = set()
        self._welded: set[str] = set()
        #: every relay move as (action, channels closed before it, SMU output on): the
        #: ground truth tests check break-before-make and "never with the source on" on
        self.moves: list[tuple[str, tuple[str, ...], bool]] = []
        self._connect()

    def _record(self, action: str) -> None:
        op = getattr(self.physics, "operating_point", None)
        self.moves.append((action, self.closed(), bool(op is not None and op.output_on)))

    def _connect(self) -> None:
        if getattr(self.physics, "pixels", None):
            self.physics.connect_channels(self.closed())

    def closed(self) -> tuple[str, ...]:
        """The closed channels, in the instrument's channel order."""
        return tuple(c for c in self.channels if c in self._closed)

    def close(self, channel: str) -> None:
        """Drive ``channel``'s relay closed and wait its settling time (faults apply)."""
        self.faults.on_reading()  # may drop the link (ConnectionDropped)
        self._record(f"close {channel}")
        if self.faults.is_active("stuck") and not self._welded:
            self._welded = set(self._closed) or {channel}
        if not self.faults.is_active("no_confirm"):
            self._closed.add(channel)
        self.physics.clock.sleep(self.settle_s)
        self._connect()

    def open(self, channels: tuple[str, ...] | None = None) -> None:
        """Open ``channels`` (default every one); a welded contact stays closed."""
        wanted = set(self.channels if channels is None else channels)
        if self.faults.is_active("stuck") and not self._welded:
            self._welded = set(self._closed)  # the contact that was closed stays closed
        self._record("open " + ("all" if channels is None else ",".join(channels)))
        self._closed -= wanted - self._welded
        self.physics.clock.sleep(self.settle_s if wanted else 0.0)
        self._connect()
