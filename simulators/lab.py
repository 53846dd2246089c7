"""Start the simulated instruments a config asks for, behind their real transports.

The Keithley simulators are served as SCPI over loopback TCP (reached by the drivers as
``TCPIP::127.0.0.1::PORT::SOCKET`` through pyvisa-py), the lifetime rig over a pyserial
``socket://`` URL; only the spectrometer, whose USB protocol lives inside seabreeze, is
handed over as an object with seabreeze's API.  ``labrig sim serve`` and the ``Bench``
both start a lab here, so a run in another process sees exactly what a run in this one
would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from labrig.clock import Clock, RunningClock, WallClock
from labrig.config import BenchConfig, FaultSpec, InstrumentConfig
from labrig.errors import ConfigError


@dataclass
class SimulatedLab:
    """The running simulated instruments of one physics, and the physics they share."""

    physics: Any  # labrig.simulators.physics.CoupledPhysics
    clock: Clock
    resources: dict[str, str] = field(default_factory=dict)
    instruments: dict[str, Any] = field(default_factory=dict)
    #: in-process simulators: what the driver attaches to, by role
    handles: dict[str, Any] = field(default_factory=dict)
    servers: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every server; idempotent."""
        while self.servers:
            server = self.servers.pop()
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - stopping must go on for the others
                pass

    def __enter__(self) -> SimulatedLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SimulatorRequest:
    """What a simulator is started from (``labrig.registry.Driver.simulator``): its role
    and config entry, the lab's shared physics and clock, the faults to inject, and the
    run file (``labrig.store.RunData``) a resumed run continues, if any."""

    role: str
    instrument: InstrumentConfig
    config: BenchConfig
    physics: Any
    clock: Clock
    faults: list[FaultSpec]
    resumed: Any = None


@dataclass(frozen=True)
class Started:
    """A simulator as its ``serve`` function built it: the simulated instrument, and the
    server the driver reaches it through (started by the lab; its ``resource`` or ``url``
    is what the driver connects to) or, for an in-process simulator, the ``resource``
    and the ``handle`` the driver attaches to."""

    instrument: Any
    server: Any = None
    resource: str = ""
    handle: Any = None


def _start_role(lab: SimulatedLab, role: str, config: BenchConfig, resumed: Any = None) -> None:
    from labrig import registry

    inst = config.instruments[role]
    entry = registry.driver(inst.driver)
    if entry.simulator is None:
        raise ConfigError(f"instruments.{role}.driver {inst.driver!r} has no simulator")
    request = SimulatorRequest(
        role=role,
        instrument=inst,
        config=config,
        physics=lab.physics,
        clock=lab.clock,
        faults=config.simulation.faults.get(role, []),
        resumed=resumed,
    )
    started: Started = registry.resolve_ref(entry.simulator)(request)
    resource = started.resource
    if started.server is not None:
        started.server.start()
        lab.servers.append(started.server)
        resource = started.server.resource
    lab.instruments[role] = started.instrument
    lab.resources[role] = resource
    if started.handle is not None:
        lab.handles[role] = started.handle


def _warm_up(physics: Any) -> None:
    """Load the optics tables (colour-science takes ~2 s to import) before any server
    answers, so the first lit reading does not outlast an instrument time-out."""
    import numpy as np

    from labrig.analysis.optics import photopic_v

    photopic_v(np.array([555.0]))
    physics.photodiode_current()


def served_clock(config: BenchConfig) -> Clock:
    """The clock of instruments served to other processes: it runs by itself, real time x
    ``simulation.clock_speed``, since no client in another process sleeps on it -- a
    rig's clock, a device ageing under drive, a link that comes back after a while all go
    on between commands.  ``.inf`` keeps the instruments' own waits instant; between
    commands time then runs at real time."""
    sim = config.simulation
    if sim.clock == "wall":
        return WallClock()
    if not math.isfinite(sim.clock_speed):
        return RunningClock(speed=1.0, instant_sleeps=True)
    return RunningClock(speed=sim.clock_speed)


def start_lab(
    config: BenchConfig,
    roles: Iterable[str] | None = None,
    *,
    served: bool = False,
    resumed: Any = None,
) -> SimulatedLab:
    """Start the simulated instruments for ``roles`` (default: every simulated role);
    ``served``: for other processes, on a ``served_clock``; ``resumed``: the run file
    (``labrig.store.RunData``) being continued, whose recorded stress the simulated
    devices take up (a real device kept its ageing)."""
    from labrig import registry
    from labrig.simulators.physics import CoupledPhysics

    wanted = [
        r
        for r in (roles if roles is not None else config.instruments)
        if r in config.instruments and config.instruments[r].simulated
    ]
    physics = CoupledPhysics(config, clock=served_clock(config) if served else None)
    _warm_up(physics)
    lab = SimulatedLab(physics=physics, clock=physics.clock)
    try:
        for role in wanted:
            if registry.driver(config.instruments[role].driver).built_from:
                continue  # made by the bench of the roles it is built from
            _start_role(lab, role, config, resumed)
    except BaseException:
        lab.stop()
        raise
    return lab
