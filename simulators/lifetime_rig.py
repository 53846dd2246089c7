"""A simulated multi-channel lifetime rig speaking docs/lifetime-rig-protocol.md.

Each channel is its own one-device simulated bench (``CoupledPhysics`` around a
``simulators.led.LEDDevice``): the same compliance-aware operating point, heating,
degradation, open/short faults and photodiode optics + noise the Keithley simulators use,
so a rig channel and the bench agree on physics by construction.  The devices are built
from one ``LEDModel`` with seeded unit-to-unit spread (a few % on EQE_max and on both
degradation time constants: real pixels on one substrate differ that much) and all age
along one shared clock, so an accelerated ``SimulatedClock`` turns a 10-hour T50 into
seconds.

``RigServer`` (the simulators' one line server) serves the protocol on loopback TCP;
pyserial opens it as ``socket://127.0.0.1:PORT`` exactly as it would open
``/dev/ttyACM0``.

Faults (``FaultSpec``):

* ``open`` / ``short`` with ``channel``: that channel's device fails after ``after``
  ``CH<n>:MEAS?`` readings of that channel (channel 1 when no channel is given).
* ``disconnect``: after ``after`` commands the link drops (the connection is closed) and
  stays down for ``LINK_DOWN_S`` seconds of rig time; connections made meanwhile are
  closed at once.  Then the rig answers again, its channels having held their outputs.
* ``timeout``: after ``after`` commands the rig stops answering for ``LINK_DOWN_S`` of rig
  time (it still obeys, like a rig whose transmit line broke).
* ``garbled``: the reply to the command after ``after`` commands is replaced by bytes that
  do not parse (one-shot).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labrig.clock import Clock, SimulatedClock
from labrig.config import (
    BenchConfig,
    Calibration,
    FaultSpec,
    Limits,
    PhotodiodeCalibration,
    ResponsivityTable,
    SimulationConfig,
)
from labrig.devices import DeviceConfig, LEDModel
from labrig.registry import driver
from labrig.simulators.faults import ConnectionDropped
from labrig.simulators.server import SerialLineServer

if TYPE_CHECKING:
    from labrig.simulators.lab import SimulatorRequest, Started

MANUFACTURER = "LABRIG"
MODEL = "LTR"
FIRMWARE = "1.0"
MAX_CURRENT_A = 0.1
COMPLIANCE_V = 12.0
#: terminal voltage below which a driven channel reads as shorted
SHORT_BELOW_V = 0.1
#: relative spread (1 σ) between channels of EQE_max and the degradation time constants
UNIT_SPREAD = 0.03
#: rig time a dropped or mute link stays down
LINK_DOWN_S = 60.0
MAX_LINE = 128
ERROR_QUEUE = 10
SUPPORTED_FAULTS = driver("lifetime_rig").faults

#: the rig's photodiodes when the caller gives no calibration: a typical Si photodiode
#: (typical Si responsivities) of 5 mm radius 20 mm in front of the pixel, as in sim.yaml
DEFAULT_PHOTODIODE = PhotodiodeCalibration(
    responsivity=ResponsivityTable(
        wavelength_nm=[400, 450, 470, 500, 520, 550, 600, 628, 650, 700, 800],
        a_per_w=[0.19, 0.24, 0.26, 0.29, 0.31, 0.34, 0.40, 0.43, 0.46, 0.51, 0.60],
    ),
    radius_mm=5.0,
    distance_mm=20.0,
)


class RigCommandError(Exception):
    """A protocol error: becomes ``ERR <code>,"<message>"`` on the wire."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _NoReply(Exception):
    """The command was obeyed but the rig does not answer (mute link)."""


def spread_model(model: LEDModel, rng: np.random.Generator, spread: float) -> LEDModel:
    """One unit of ``model`` with seeded relative spread on EQE_max and τ1, τ2."""
    f = np.exp(spread * rng.standard_normal(3))  # log-normal: stays positive
    deg = model.degradation.model_copy(
        update={
            "tau1_h": model.degradation.tau1_h * f[1],
            "tau2_h": model.degradation.tau2_h * f[2],
        }
    )
    return model.model_copy(update={"eqe_max": min(model.eqe_max * f[0], 1.0), "degradation": deg})


@dataclass
class _Channel:
    physics: Any  # labrig.simulators.physics.CoupledPhysics
    set_current_a: float = 0.0
    output_on: bool = False
    latched: str | None = None  # OPEN / SHORT / WDOG until OUTP OFF
    readings: int = 0
    fault: str | None = None
    fault_after: int = 0

    @property
    def device(self) -> Any:
        return self.physics.device


class SimulatedLifetimeRig:
    """N independent simulated LEDs, one constant-current source and photodiode each."""

    def __init__(
        self,
        model: LEDModel,
        area_cm2: float,
        channels: int = 8,
        clock: Clock | None = None,
        seed: int = 0,
        faults: list[FaultSpec] | None = None,
        *,
        photodiode: PhotodiodeCalibration | None = None,
        dark_current_a: float = 2e-12,
        noise: bool = True,
        spread: float = UNIT_SPREAD,
        serial_number: str = "SIM00001",
    ) -> None:
        from labrig.simulators.physics import CoupledPhysics

        if not 1 <= channels <= 64:
            raise ValueError(f"channels must lie in 1..64, got {channels}")
        self.clock = clock if clock is not None else SimulatedClock()
        self.n_channels = int(channels)
        self.serial_number = serial_number
        self.lock = threading.RLock()
        self._boot = self.clock.time()
        rng = np.random.default_rng(seed)
        cal = Calibration(photodiode=photodiode or DEFAULT_PHOTODIODE)
        limits = Limits(
            max_voltage_v=COMPLIANCE_V, max_current_a=MAX_CURRENT_A, default_compliance_a=0.1
        )
        self._channels: list[_Channel] = []
        for k in range(self.n_channels):
            unit = spread_model(model, rng, spread) if spread > 0 else model
            config = BenchConfig(
                name=f"rig channel {k + 1}",
                instruments={},
                device=DeviceConfig(kind="led", active_area_cm2=area_cm2, model=unit),
                calibration=cal,
                limits=limits,
                simulation=SimulationConfig(
                    seed=int(rng.integers(2**31)),
                    noise=noise,
                    photodiode_dark_current_a=dark_current_a,
                ),
            )
            self._channels.append(_Channel(CoupledPhysics(config, clock=self.clock)))
        # load the photometric tables now: a first reading must not stall a free-running
        # clock for the seconds colour-science takes to import
        self._channels[0].device.optical_power_w(1e-6)
        self.commands = 0
        self.errors: list[tuple[int, str]] = []
        self.watchdog_s = 0.0
        self._last_command = self.clock.time()
        self._link_faults: list[tuple[str, int]] = []
        self.link_down_until = -math.inf
        self._garble_next = False
        self.mute_until = -math.inf
        for spec in faults or []:
            self.inject_fault(spec.kind, spec.after, spec.channel)

    # ------------------------------------------------------------------ tests and faults
    def device(self, channel: int) -> Any:
        """The ``LEDDevice`` on ``channel``, aged to the present (ground truth for tests)."""
        ch = self._chan(channel)
        ch.physics.update()
        return ch.device

    def inject_fault(self, kind: str, after: int = 0, channel: int | None = None) -> None:
        if kind not in SUPPORTED_FAULTS:
            raise ValueError(
                f"lifetime rig fault {kind!r} not supported; allowed: {', '.join(SUPPORTED_FAULTS)}"
            )
        with self.lock:
            if kind in ("open", "short"):
                ch = self._chan(channel or 1)
                ch.fault, ch.fault_after = kind, ch.readings + int(after)
            else:
                self._link_faults.append((kind, self.commands + int(after)))

    def continue_channel(self, channel: int, stress: list[tuple[float, float]]) -> None:
        """Give ``channel``'s device the ageing a run recorded before this rig existed:
        ``stress`` is ``(seconds, amps)`` at a time.  A real pixel simply kept its ageing
        when the host crashed; a simulated one must be told (see ``simulators.lab``)."""
        with self.lock:
            device = self._chan(channel).device
            for seconds, amps in stress:
                device.age(seconds, amps)

    def rig_time(self) -> float:
        return self.clock.time() - self._boot

    def link_up(self) -> bool:
        return self.clock.time() >= self.link_down_until

    # ------------------------------------------------------------------ protocol
    def _chan(self, n: int) -> _Channel:
        if not 1 <= n <= self.n_channels:
            raise RigCommandError(
                -241, f"Hardware missing; channel {n} (rig has 1..{self.n_channels})"
            )
        return self._channels[n - 1]

    def _error(self, code: int, message: str) -> str:
        if len(self.errors) >= ERROR_QUEUE:
            self.errors[-1] = (-350, "Queue overflow")
        else:
            self.errors.append((code, message))
        return f'ERR {code},"{message}"'

    def poll(self) -> None:
        """The firmware's idle loop: the link watchdog switches every output off when no
        command has arrived for ``watchdog_s`` of rig time (the server calls this)."""
        with self.lock:
            now = self.clock.time()
            if self.watchdog_s > 0 and now - self._last_command > self.watchdog_s:
                for ch in self._channels:
                    if ch.output_on:
                        ch.physics.output_off()
                        ch.output_on = False
                        ch.latched = "WDOG"

    def _apply_link_faults(self) -> None:
        now = self.clock.time()
        fired = [f for f in self._link_faults if self.commands >= f[1]]
        self._link_faults = [f for f in self._link_faults if self.commands < f[1]]
        for kind, _ in fired:
            if kind == "disconnect":
                self.link_down_until = now + LINK_DOWN_S
                raise ConnectionDropped
            if kind == "timeout":
                self.mute_until = now + LINK_DOWN_S
            if kind == "garbled":
                self._garble_next = True

    def handle(self, line: str) -> str | None:
        """One command line in, one reply line out (None: no reply at all)."""
        line = line.strip()
        if not line:
            return None
        with self.lock:
            self._garble_next = False
            self._apply_link_faults()  # fires on the command after ``after`` commands
            self.commands += 1
            # No sweep over the channels here: each channel's device ages to the present
            # whenever it is touched (every CoupledPhysics access updates first), so one
            # command costs one device's integration, not eight.
            self.poll()
            self._last_command = self.clock.time()
            try:
                reply = self._dispatch(line)
            except RigCommandError as exc:
                reply = self._error(exc.code, exc.message)
            if self.clock.time() < self.mute_until:
                raise _NoReply
            if self._garble_next:
                return "\x15?#\x7f" + reply[::-1]
            return reply

    def process(self, line: str) -> bytes | None:
        """What the server calls for each received line: the terminated reply, or None
        (an empty line, a mute link).  Raises ``ConnectionDropped`` when the link drops."""
        try:
            reply = self.handle(line)
        except _NoReply:
            return None
        return None if reply is None else reply.encode("ascii", errors="replace") + b"\n"

    def _dispatch(self, line: str) -> str:
        if len(line) > MAX_LINE:
            raise RigCommandError(-112, "Program mnemonic too long")
        head, _, arg = line.partition(" ")
        head, arg = head.upper(), arg.strip()
        if head == "*IDN?":
            return f"{MANUFACTURER},{MODEL}-{self.n_channels},{self.serial_number},{FIRMWARE}"
        if head == "*RST":
            self.errors.clear()
            self.watchdog_s = 0.0
            for ch in self._channels:
                ch.physics.output_off()
                ch.output_on, ch.set_current_a, ch.latched = False, 0.0, None
            return "OK"
        if head == "SYST:CHAN?":
            return str(self.n_channels)
        if head == "SYST:CURR:MAX?":
            return f"{MAX_CURRENT_A:.6g}"
        if head == "SYST:VOLT:MAX?":
            return f"{COMPLIANCE_V:.6g}"
        if head == "SYST:TIME?":
            return f"{self.rig_time():.6f}"
        if head == "SYST:ERR?":
            code, msg = self.errors.pop(0) if self.errors else (0, "No error")
            return f'{code},"{msg}"'
        if head == "SYST:WDOG?":
            return f"{self.watchdog_s:.6g}"
        if head == "SYST:WDOG":
            value = self._number(arg)
            if value < 0:
                raise RigCommandError(-222, f"Data out of range; watchdog {value} s (allowed >= 0)")
            self.watchdog_s = value
            return "OK"
        if head == "MEAS?":
            return ";".join(self._measure(self._chan(n)) for n in self._channel_list(arg))
        if head.startswith("CH") and ":" in head:
            num, _, sub = head[2:].partition(":")
            if not num.isdigit():
                raise RigCommandError(-113, f"Undefined header; {head}")
            return self._channel_command(int(num), sub, arg)
        raise RigCommandError(-113, f"Undefined header; {head}")

    @staticmethod
    def _number(arg: str) -> float:
        if not arg:
            raise RigCommandError(-109, "Missing parameter")
        try:
            value = float(arg)
        except ValueError:
            raise RigCommandError(-102, f"Syntax error; {arg!r} is not a number") from None
        if not math.isfinite(value):
            raise RigCommandError(-222, f"Data out of range; {arg}")
        return value

    def _channel_list(self, arg: str) -> list[int]:
        """``MEAS?``'s channel list: comma-separated channel numbers, each one the rig has."""
        if not arg:
            raise RigCommandError(-109, "Missing parameter")
        numbers = [part.strip() for part in arg.split(",")]
        if not all(part.isdigit() for part in numbers):
            raise RigCommandError(-102, f"Syntax error; channel list {arg!r} (allowed n[,n...])")
        channels = [int(part) for part in numbers]
        for n in channels:
            self._chan(n)  # every channel is checked before any is measured
        return channels

    def _channel_command(self, n: int, sub: str, arg: str) -> str:
        if sub not in ("CURR", "CURR?", "OUTP", "OUTP?", "MEAS?", "STAT?"):
            raise RigCommandError(-113, f"Undefined header; CH{n}:{sub}")
        ch = self._chan(n)
        if sub == "CURR?":
            return f"{ch.set_current_a:.6E}"
        if sub == "CURR":
            value = self._number(arg)
            if not 0 <= value <= MAX_CURRENT_A:
                raise RigCommandError(
                    -222, f"Data out of range; current {value:g} A (allowed 0..{MAX_CURRENT_A:g} A)"
                )
            ch.set_current_a = value
            if ch.output_on:
                ch.physics.source_current(value, COMPLIANCE_V)
            return "OK"
        if sub == "OUTP?":
            return "ON" if ch.output_on else "OFF"
        if sub == "OUTP":
            state = arg.upper()
            if state in ("ON", "1"):
                ch.physics.source_current(ch.set_current_a, COMPLIANCE_V)
                ch.output_on, ch.latched = True, None
            elif state in ("OFF", "0"):
                ch.physics.output_off()
                ch.output_on, ch.latched = False, None
            elif not state:
                raise RigCommandError(-109, "Missing parameter")
            else:
                raise RigCommandError(-102, f"Syntax error; OUTP {arg!r} (allowed ON|OFF|1|0)")
            return "OK"
        if sub == "STAT?":
            return self._status(ch)
        return self._measure(ch)

    def _measure(self, ch: _Channel) -> str:
        """One reading of ``ch`` now: ``<V>,<A>,<photodiode A>,<rig time s>,<status>``."""
        ch.readings += 1
        if ch.fault and ch.readings > ch.fault_after:
            ch.physics.set_device_fault(ch.fault)
            ch.fault = None
        stamp = self.rig_time()  # the reading's time: when the state below is sampled
        op = ch.physics.operating_point
        ipd = ch.physics.photodiode_current()
        status = self._status(ch, op)
        return f"{op.voltage:.6E},{op.current:.6E},{ipd:.6E},{stamp:.6f},{status}"

    def _status(self, ch: _Channel, op: Any = None) -> str:
        """What the firmware concludes from the channel's terminals (OPEN/SHORT latch);
        ``op``: the operating point just read, if the caller has it."""
        if ch.latched:
            return ch.latched
        if not ch.output_on:
            return "OFF"
        if op is None:
            op = ch.physics.operating_point
        if op.in_compliance:
            if abs(op.current) < 1e-3 * max(ch.set_current_a, 1e-9):
                ch.latched = "OPEN"
                return "OPEN"
            return "COMPL"
        if ch.set_current_a > 0 and abs(op.voltage) < SHORT_BELOW_V:
            ch.latched = "SHORT"
            return "SHORT"
        return "OK"


class RigServer(SerialLineServer):
    """Serves one ``SimulatedLifetimeRig`` on 127.0.0.1 on the rig's own clock;
    ``.url`` (= ``.resource``) is the pyserial URL to open."""

    def __init__(self, rig: SimulatedLifetimeRig, port: int = 0, host: str = "127.0.0.1"):
        super().__init__(rig, host=host, port=port, clock=rig.clock)
        self.rig = rig


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


def serve(request: SimulatorRequest) -> Started:
    """The simulated rig of ``request``'s config on a loopback socket (the registry's
    ``lifetime_rig`` simulator); a resumed lifetime run's pixels carry on from the
    ageing its file records."""
    from labrig.errors import ConfigError
    from labrig.simulators.lab import Started

    config = request.config
    model = config.device.model
    if not isinstance(model, LEDModel):
        raise ConfigError("device.model: the simulated lifetime rig needs an LED model")
    rig = SimulatedLifetimeRig(
        model=model,
        area_cm2=config.device.active_area_cm2,
        channels=request.instrument.channels or 8,
        clock=request.clock,
        seed=config.simulation.seed,
        faults=request.faults,
        photodiode=config.calibration.photodiode,
        noise=config.simulation.noise,
        dark_current_a=config.simulation.photodiode_dark_current_a,
    )
    resumed = request.resumed
    if resumed is not None and resumed.procedure == "lifetime":
        for channel in range(1, rig.n_channels + 1):
            rig.continue_channel(channel, recorded_stress(resumed, channel))
    return Started(rig, server=RigServer(rig))
