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

import numpy as np

from labrig.clock import Clock, RunningClock, WallClock
from labrig.config import BenchConfig
from labrig.errors import ConfigError


@dataclass
class SimulatedLab:
    """The running simulated instruments of one physics, and the physics they share."""

    physics: Any  # labrig.simulators.physics.CoupledPhysics
    clock: Clock
    resources: dict[str, str] = field(default_factory=dict)
    instruments: dict[str, Any] = field(default_factory=dict)
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


def recorded_stress(resumed: Any, channel: int) -> list[tuple[float, float]]:
    """``(seconds, amps)`` a lifetime run file (``labrig.store.RunData``) records for
    ``channel``: the settle time before t = 0 at the first current, then each interval
    between rows at the current measured at its start.  (The short L0 search before it
    is left out: lower currents for seconds, against hours of ageing.)"""
    cols = resumed.columns.get(f"channel_{channel:02d}", {})
    if not cols or len(cols["time"][0]) == 0:
        return []
    times = np.asarray(cols["time"][0], float)
    amps = np.clip(np.nan_to_num(np.asarray(cols["current"][0], float)), 0.0, None)
    settle = float(resumed.parameters.get("settle_time", (0.0, "s"))[0])
    return [(settle, float(amps[0]))] + list(
        zip(np.diff(times).tolist(), amps[:-1].tolist(), strict=True)
    )


def _start_role(lab: SimulatedLab, role: str, config: BenchConfig, resumed: Any = None) -> None:
    inst = config.instruments[role]
    faults = config.simulation.faults.get(role, [])
    if inst.driver == "keithley2400":
        from labrig.simulators.keithley2400 import SimulatedKeithley2400
        from labrig.simulators.server import SCPIServer

        instrument: Any = SimulatedKeithley2400(lab.physics, faults=faults)
        server: Any = SCPIServer(instrument, clock=lab.clock)
    elif inst.driver == "keithley6485":
        from labrig.simulators.keithley6485 import SimulatedKeithley6485
        from labrig.simulators.server import SCPIServer

        instrument = SimulatedKeithley6485(lab.physics, faults=faults)
        server = SCPIServer(instrument, clock=lab.clock)
    elif inst.driver == "usb2000plus":
        from labrig.simulators.spectrometer import SimulatedSpectrometer

        serial = inst.resource or "SIM2K0001"
        lab.instruments[role] = SimulatedSpectrometer(
            lab.physics, serial_number=serial, faults=faults
        )
        lab.resources[role] = serial
        return
    elif inst.driver == "lifetime_rig":
        from labrig.devices import LEDModel
        from labrig.simulators.lifetime_rig import RigServer, SimulatedLifetimeRig

        model = config.device.model
        if not isinstance(model, LEDModel):
            raise ConfigError("device.model: the simulated lifetime rig needs an LED model")
        instrument = SimulatedLifetimeRig(
            model=model,
            area_cm2=config.device.active_area_cm2,
            channels=inst.channels or 8,
            clock=lab.clock,
            seed=config.simulation.seed,
            faults=faults,
            photodiode=config.calibration.photodiode,
            noise=config.simulation.noise,
            dark_current_a=config.simulation.photodiode_dark_current_a,
        )
        if resumed is not None and resumed.procedure == "lifetime":
            # a resumed run: each pixel carries on from the ageing the file records
            for channel in range(1, instrument.n_channels + 1):
                instrument.continue_channel(channel, recorded_stress(resumed, channel))
        server = RigServer(instrument)
    else:
        raise ConfigError(f"instruments.{role}.driver {inst.driver!r} has no simulator")
    server.start()
    lab.servers.append(server)
    lab.instruments[role] = instrument
    lab.resources[role] = server.url if hasattr(server, "url") else server.resource


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
            if config.instruments[role].driver == "smu_photometer":
                continue  # built from the smu and photometer roles by the bench
            _start_role(lab, role, config, resumed)
    except BaseException:
        lab.stop()
        raise
    return lab
