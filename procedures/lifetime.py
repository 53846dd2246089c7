"""Operational lifetime: constant current per channel until L falls to the chosen T.

Each selected rig channel is held at a constant current — a given current or current
density, or the current that gives a target initial luminance L0, found by a short
logarithmic ramp on that channel and a few secant refinements — and sampled on a
log-spaced schedule (dense at the start so T95 is resolved, never sparser than the
configured maximum interval).  The photodiode current becomes luminance through the
bench's photometric calibration (``labrig.analysis.photometry``, reference spectrum).

**Time zero and L0.**  All channels are switched on, left ``settle_time`` for their
self-heating to settle (seconds; the thermal drop of EQE is not degradation), then t = 0
and L0 is each channel's first reading.  The time axis is the *rig's* clock, so a run
resumed after a host crash continues each channel's axis exactly; the schedule runs on
``self.bench.clock``.  How long each channel had been driven at its current by t = 0, in
rig seconds (a reading at switch-on gives the start), is stored with the first point
(``age_at_t0``): a stretched-exponential fit continues from that age, and so does a resumed
run's.

**Predictions and scaling.**  T50 bands are model-averaged (``labrig.analysis.lifetime``);
a band the data cannot close is open above and the log says why; a prediction asked for
before the data support a fit, and a scaling fit on channels that share one L0, each say
so in one log line and one stored figure (``T50_best_note``, ``acceleration_exponent_note``).

**Channels are independent.**  A channel ends on its own when it reaches the chosen T
(T50 by default, T95/T90/T80 selectable; relative to L0 or to the peak), exceeds the
maximum duration, its voltage rises by more than the limit, it goes open or short, the
rig switches it off, or — optionally — its early T50 prediction band is narrower than the
configured relative width.  Its output goes off, the reason is logged (kind
``channel_end``) and its analysis is emitted in its own group; the others go on.

**Data.**  One data group per channel (``channel_NN``), appended as the run goes (the
store's crash safety applies); memory holds at most ``MAX_POINTS_IN_MEMORY`` points per
channel for the fits (older points thinned), so runs of weeks stay bounded.

**Resume.**  When the run context holds a previous run (``labrig run lifetime --resume
FILE``: the runner reads it), each channel's rows, set current, L0, V0 and dark current are
taken from it,
channels that had ended stay ended, and the others are switched back on, left
``settle_time``, and continue where the file stops.  An L/L0 higher than the file's last
(by more than ``RESUME_JUMP``) is logged as a warning (``resume_jump``): a device does not
un-age, so another device or a rig that lost its state is on that channel.

**Link loss.**  A lost rig link is logged and retried for ``reconnect_timeout``; the
outputs meanwhile do what ``link_loss`` says (``hold``: keep ageing; ``off``: the rig's
watchdog switches them off ``link_watchdog`` seconds after the host went silent — the
procedure then talks to the rig at least every third of that period, even between sparse
samples).  If the link does not come back the run fails, resumable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pymeasure.experiment.parameters import (
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
)

from labrig import registry
from labrig.analysis import lifetime as lt
from labrig.errors import InstrumentDisconnectedError, ParameterError
from labrig.interfaces import CHANNEL_STATUSES
from labrig.limits import Drive, Requested
from labrig.procedure import Column, LabrigProcedure

if TYPE_CHECKING:
    from labrig.config import BenchConfig
    from labrig.interfaces import ChannelReading, LifetimeRig
    from labrig.store import RunData

T = TypeVar("T")

DRIVES = ("current density", "current", "luminance")
DRIVE_UNITS = {"current density": "mA/cm^2", "current": "mA", "luminance": "cd/m^2"}
STOP_AT = ("T50", "T80", "T90", "T95")
REFERENCES = ("initial", "peak")
LINK_LOSS = ("hold", "off")
#: points per channel kept in memory for fits and predictions (older ones thinned)
MAX_POINTS_IN_MEMORY = 4000
#: a channel's early prediction is only trusted once L has fallen at least this much
PREDICTION_MIN_DROP = 0.1
#: predictions are made at log-spaced times: each one this factor later than the last
PREDICTION_TIME_GROWTH = 1.25
#: the L0 search: ramp start current, steps per decade, secant refinements, tolerance
RAMP_START_A = 1e-6
RAMP_STEPS_PER_DECADE = 4
RAMP_REFINEMENTS = 3
RAMP_TOLERANCE = 0.01
#: rise of L/L0 at the resume point beyond which it is logged as a warning
RESUME_JUMP = 0.02
#: wait between reconnection attempts after a lost link (clock seconds)
RECONNECT_INTERVAL_S = 5.0
#: rig statuses that end a channel, and the reason logged
FAULT_STATUSES = {
    "OPEN": "open circuit (no current at the compliance voltage)",
    "SHORT": "short circuit (terminal voltage below 0.1 V)",
    "COMPL": "compliance voltage reached (current below the set value)",
    "WDOG": "output switched off by the rig's link watchdog",
    "OFF": "output found off",
}


def _fault(status: str) -> str:
    """The kind of a fault ending: its description without the explanation."""
    return FAULT_STATUSES[status].split(" (")[0]


def parse_channels(text: str, available: int | None = None) -> list[int]:
    """``"all"``, ``"1-4,7"`` -> sorted channel numbers; ParameterError on bad text."""
    text = str(text).strip().lower()
    if text == "all":
        if available is None:
            raise ParameterError("channels: 'all' needs the rig's channel count")
        return list(range(1, available + 1))
    chans: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi or lo)
            if a < 1 or b < a:
                raise ValueError
            chans.update(range(a, b + 1))
    except ValueError:
        raise ParameterError(
            f"channels: {text!r} is not a channel list (allowed: 'all', or e.g. '1-4,7')"
        ) from None
    if available is not None and max(chans) > available:
        raise ParameterError(
            f"channels: channel {max(chans)} does not exist (the rig has 1..{available})"
        )
    return sorted(chans)


def parse_levels(text: str, count: int, name: str = "levels") -> list[float]:
    """One value for every channel, or one per channel, comma-separated."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ParameterError(f"{name}: {text!r} is not a comma-separated list of numbers") from None
    if len(values) == 1:
        values *= count
    if len(values) != count or not all(math.isfinite(v) and v > 0 for v in values):
        raise ParameterError(
            f"{name}: {text!r} must be one positive value or {count} (one per channel)"
        )
    return values


@dataclass
class _Channel:
    """One channel's state while the run goes on."""

    number: int
    group: str
    level: float  # what the user asked for, in the drive's units
    current_a: float = 0.0
    dark_a: float = 0.0
    rig_t0: float = math.nan
    l0: float = math.nan
    v0: float = math.nan
    last_time: float = -math.inf  # channel time axis (rig clock) of the last sample
    clock_at_last: float = -math.inf  # bench clock at the last sample
    next_time: float = 0.0
    ended: str | None = None
    #: what the headline counts channels by ("T50 reached", "open circuit", ...)
    end_kind: str | None = None
    times: list[float] = field(default_factory=list)
    lums: list[float] = field(default_factory=list)
    last_prediction_n: int = 0
    last_prediction_t: float = 0.0
    prediction: lt.LifetimePrediction | None = None
    prediction_note: str = ""  # why the last prediction could not be made (logged once)
    on_since: float = math.nan  # rig time when the channel reached its drive current
    age_s: float = 0.0  # rig seconds it had been driven at t = 0 (what the fits start from)

    def keep(self, t: float, lum: float) -> None:
        self.times.append(t)
        self.lums.append(lum)
        if len(self.times) > MAX_POINTS_IN_MEMORY:
            head = MAX_POINTS_IN_MEMORY // 4  # the dense start stays whole
            self.times = self.times[:head] + self.times[head::2]
            self.lums = self.lums[:head] + self.lums[head::2]


class LifetimeProcedure(LabrigProcedure):
    """Constant-current operational lifetime on many channels (see module docstring)."""

    NAME = "lifetime"
    SUMMARY = "operational lifetime: constant current per channel until T50 (or T95/T90/T80)"
    REQUIRED_ROLES = ("lifetime",)
    COLUMNS = (
        # times in float64: a 1000-hour run needs ms at 3.6e6 s (float32 resolves 0.25 s)
        Column("time", "s", "time since t = 0 (rig clock)"),
        Column("rig_time", "s", "rig clock"),
        # float32 (7 significant digits) for the readings: the rig and the 6485 resolve
        # 5-6 digits, so no measured digit is lost, and L, L/L0 and J derive from them
        Column("voltage", "V", "terminal voltage", "f4"),
        Column("current", "A", "measured current", "f4"),
        Column("current_set", "A", "set current", "f4", constant=True),
        Column("current_density", "mA/cm^2", "current density J", "f4"),
        Column("photodiode_current", "A", "photodiode current (raw)", "f4"),
        Column(
            "photodiode_dark",
            "A",
            "photodiode dark current (before switch-on)",
            "f4",
            constant=True,
        ),
        Column("luminance", "cd/m^2", "luminance L", "f4"),
        Column("relative_luminance", "1", "L/L0", "f4"),
        Column("status", "", "rig channel status", "enum", CHANNEL_STATUSES),
    )
    SIGNAL = "relative_luminance"
    AXIS = "time"

    channels = Parameter("Channels", default="all")
    drive = ListParameter("Drive", choices=DRIVES, default="luminance")
    levels = Parameter(
        "Levels (mA/cm^2, mA or cd/m^2 per drive; one or one per channel)", default="1000"
    )
    stop_at = ListParameter("Stop at", choices=STOP_AT, default="T50")
    reference = ListParameter("T relative to", choices=REFERENCES, default="initial")
    max_duration = FloatParameter(
        "Maximum duration", units="h", default=1000.0, minimum=1e-6, maximum=1e5
    )
    voltage_rise_limit = FloatParameter(
        "Voltage rise limit (0 = off)", units="V", default=3.0, minimum=0, maximum=100
    )
    settle_time = FloatParameter(
        "Settle time before t = 0", units="s", default=30.0, minimum=0, maximum=3600
    )
    first_interval = FloatParameter(
        "First sample interval", units="s", default=1.0, minimum=1e-3, maximum=3600
    )
    max_interval = FloatParameter(
        "Maximum sample interval", units="s", default=600.0, minimum=1e-3, maximum=86400
    )
    points_per_decade = IntegerParameter(
        "Samples per decade of time", default=20, minimum=2, maximum=1000
    )
    ramp_dwell = FloatParameter(
        "L0 ramp dwell per step", units="s", default=2.0, minimum=0, maximum=600
    )
    early_stop_width = FloatParameter(
        "Early stop at T50 band width (0 = off)", units="1", default=0.0, minimum=0, maximum=10
    )
    prediction_every = IntegerParameter(
        "Predict T50 every N samples", default=25, minimum=1, maximum=100000
    )
    acceleration_exponent = FloatParameter(
        "Acceleration exponent n (0 = fit)", default=0.0, minimum=0, maximum=10
    )
    reference_luminances = Parameter("Reference luminances (cd/m^2)", default="1000,100")
    link_loss = ListParameter("On rig link loss", choices=LINK_LOSS, default="hold")
    link_watchdog = FloatParameter(
        "Watchdog for link_loss=off", units="s", default=600.0, minimum=1, maximum=86400
    )
    reconnect_timeout = FloatParameter(
        "Reconnect for up to", units="s", default=300.0, minimum=0, maximum=86400
    )

    SUPPORTS_RESUME = True

    # ------------------------------------------------------------------ before the run
    def _configured_channels(self, config: BenchConfig | None = None) -> list[int]:
        available = None
        if config is not None and "lifetime" in config.instruments:
            inst = config.instruments["lifetime"]
            available = registry.driver(inst.driver).channels or inst.channels
        if str(self.channels).strip().lower() == "all" and available is None:
            available = 8
        return parse_channels(self.channels, available)

    def data_groups(self) -> list[str]:
        try:
            chans = self._configured_channels(getattr(self, "_config", None))
        except ParameterError:
            chans = []
        return [f"channel_{n:02d}" for n in chans]

    def default_plot(self) -> str:
        """The first channel (/entry/data holds no rows: each channel has its own group)."""
        return next(iter(self.data_groups()), "data")

    def validate(self, config: BenchConfig) -> None:
        self._config = config
        if "lifetime" not in config.instruments:
            raise ParameterError(
                "instruments.lifetime: the lifetime procedure needs a lifetime rig"
            )
        super().validate(config)
        if self.first_interval > self.max_interval:
            raise ParameterError(
                f"first_interval ({self.first_interval:g} s) must not exceed max_interval "
                f"({self.max_interval:g} s)"
            )
        self._reference_luminances()
        if self.context.previous is not None:
            self._check_previous(self.context.previous)

    def drives(self, config: BenchConfig) -> list[Drive]:
        """Each channel's constant current (none known before the run for a luminance
        drive: the ramp finds it, checking each step on the bench)."""
        chans = self._configured_channels(config)
        levels = parse_levels(self.levels, len(chans), f"levels ({DRIVE_UNITS[self.drive]})")
        area = config.device.active_area_cm2
        drives = []
        for n, level in zip(chans, levels, strict=True):
            amps = self._level_to_amps(level, area)
            if amps is not None:
                need = Requested("current", amps, "levels", "mA", f"channel {n} needs")
                drives.append(Drive(need, role="lifetime"))
        return drives

    def _reference_luminances(self) -> list[float]:
        text = str(self.reference_luminances)
        count = len([v for v in text.split(",") if v.strip()])
        return parse_levels(text, max(count, 1), "reference_luminances (cd/m^2)")

    def _check_previous(self, data: RunData) -> None:
        path = data.path
        if data.procedure != self.NAME:
            raise ParameterError(f"--resume {path}: a {data.procedure!r} run, not a lifetime run")
        if data.status == "finished":
            raise ParameterError(f"--resume {path}: that run finished; nothing to resume")
        self._adopt_parameters(data.parameters)

    def _adopt_parameters(self, stored: dict[str, tuple[Any, str]]) -> None:
        """A resumed run is the same run: it continues with the parameters it started with
        (a ``--set`` given with ``--resume`` cannot change the drive of a running test)."""
        own = self.parameter_objects()
        values = {}
        for name, (value, _) in stored.items():
            if name in own:
                values[name] = value.decode() if isinstance(value, bytes) else value
                if isinstance(values[name], np.generic):
                    values[name] = values[name].item()
        self.set_parameters(values, except_missing=False)

    def _level_to_amps(self, level: float, area_cm2: float) -> float | None:
        if self.drive == "current":
            return level * 1e-3
        if self.drive == "current density":
            return level * 1e-3 * area_cm2
        return None  # luminance: found by the ramp

    # ------------------------------------------------------------------ helpers
    @property
    def rig(self) -> LifetimeRig:
        return self.bench.lifetime

    def _call(self, fn: Callable[[], T]) -> T:
        """A rig call that survives a dropped link for ``reconnect_timeout``."""
        try:
            return fn()
        except InstrumentDisconnectedError as exc:
            reconnect = getattr(self.rig, "reconnect", None)
            self.log_event("link_lost", f"lifetime rig link lost: {exc}", logging.WARNING)
            clock = self.bench.clock
            deadline = clock.time() + self.reconnect_timeout
            while reconnect is not None and clock.time() < deadline:
                if self.should_stop():
                    break
                clock.sleep(RECONNECT_INTERVAL_S)
                try:
                    reconnect()
                except InstrumentDisconnectedError:
                    continue
                self.log_event("link_restored", "lifetime rig link restored")
                return fn()
            raise

    def _photometry(self) -> Callable[[float], float]:
        """cd/m² of a dark-subtracted photodiode current (the reference spectrum's factors)."""
        from labrig.analysis.photometry import BenchPhotometry

        bp = BenchPhotometry(self.bench.config)
        factors = bp.reference
        return lambda photodiode_a: bp.luminance(photodiode_a, factors)

    # ------------------------------------------------------------------ the run
    def startup(self) -> None:
        config = self.bench.config
        self._config = config
        self._area = config.device.active_area_cm2
        self._luminance = self._photometry()
        self._fraction = lt.T_FRACTIONS[self.stop_at]
        chans = self._configured_channels(config)
        rig_channels = self.rig.channels
        if max(chans) > rig_channels:
            raise ParameterError(
                f"channels: channel {max(chans)} does not exist (the rig has 1..{rig_channels})"
            )
        levels = parse_levels(self.levels, len(chans))
        self._channels = [
            _Channel(n, f"channel_{n:02d}", level) for n, level in zip(chans, levels, strict=True)
        ]
        max_rig = getattr(self.rig, "max_current_a", math.inf)
        for ch in self._channels:
            amps = self._level_to_amps(ch.level, self._area)
            if amps is not None and amps > max_rig:
                raise ParameterError(
                    f"levels: channel {ch.number} needs {amps * 1e3:g} mA, above the rig's "
                    f"range (0..{max_rig * 1e3:g} mA)"
                )
        set_watchdog = getattr(self.rig, "set_watchdog", None)
        if set_watchdog is not None:
            self._call(lambda: set_watchdog(self.link_watchdog if self.link_loss == "off" else 0))

    def execute(self) -> None:
        previous = self.context.previous
        resumed = self._restore(previous) if previous is not None else set()
        fresh = [ch for ch in self._channels if ch.number not in resumed and ch.ended is None]
        self._switch_on(fresh)
        clock = self.bench.clock
        while not self.should_stop():
            active = [ch for ch in self._channels if ch.ended is None]
            if not active:
                break
            now = clock.time()
            due = min(self._due(ch) for ch in active)
            if due > now:
                if self.link_loss == "off" and due - now > self.link_watchdog / 3:
                    # the rig's watchdog must keep hearing from us between sparse samples
                    clock.sleep(self.link_watchdog / 3)
                    self._call(lambda ch=active[0]: self.rig.status(ch.number))
                else:
                    clock.sleep(due - now)
                continue
            self._sample([ch for ch in active if self._due(ch) <= clock.time()])
            self.emit_progress(self._progress())
        self._summary()

    # --------------------------------------------------------------- start-up of channels
    def _switch_on(self, channels: list[_Channel]) -> None:
        if not channels:
            return
        rig = self.rig
        for ch in channels:  # dark current with everything of this channel off
            self._call(lambda ch=ch: rig.set_output(ch.number, False))
            ch.dark_a = self._call(lambda ch=ch: rig.measure(ch.number)).photodiode_current
        for ch in channels:
            if self.drive == "luminance":
                if not self._find_current_for_l0(ch):
                    continue
            else:
                ch.current_a = float(self._level_to_amps(ch.level, self._area))
                self.bench.check_drive(amps=ch.current_a)
                self._call(lambda ch=ch: rig.set_current(ch.number, ch.current_a))
                self._call(lambda ch=ch: rig.set_output(ch.number, True))
            # on the rig's clock, the one the time axis runs on (a simulated rig may run
            # faster than the bench's): what the device's age at t = 0 is measured in
            ch.on_since = self._call(lambda ch=ch: rig.measure(ch.number)).time
            self.log_event(
                "channel_start",
                f"{ch.group}: {ch.current_a * 1e3:.6g} mA "
                f"({ch.current_a / self._area * 1e3:.6g} mA/cm^2)",
            )
        self.bench.clock.sleep(self.settle_time)
        self._sample([ch for ch in channels if ch.ended is None], first=True)

    def _find_current_for_l0(self, ch: _Channel) -> bool:
        """Ramp the current up until L passes the target L0, then refine by secant steps in
        log L vs log I; leave the channel on at that current.  False (channel ended) if the
        target cannot be reached within the config's and the rig's current limits."""
        rig, target = self.rig, ch.level
        limit = min(self.bench.limits.max_current_a, getattr(rig, "max_current_a", math.inf))
        clock = self.bench.clock

        def lum_at(amps: float) -> tuple[float, ChannelReading]:
            self.bench.check_drive(amps=amps)
            self._call(lambda: rig.set_current(ch.number, amps))
            clock.sleep(self.ramp_dwell)
            r = self._call(lambda: rig.measure(ch.number))
            return self._luminance(r.photodiode_current - ch.dark_a), r

        self._call(lambda: rig.set_current(ch.number, RAMP_START_A))
        self._call(lambda: rig.set_output(ch.number, True))
        points: list[tuple[float, float]] = []
        amps = RAMP_START_A
        while True:
            lum, reading = lum_at(amps)
            if reading.status in ("OPEN", "SHORT"):
                self._end(
                    ch,
                    f"{FAULT_STATUSES[reading.status]} during the L0 ramp",
                    _fault(reading.status),
                )
                return False
            points.append((amps, lum))
            if lum >= target or amps >= limit or reading.status == "COMPL":
                break
            amps = min(amps * 10 ** (1 / RAMP_STEPS_PER_DECADE), limit)
        if lum < target:
            self._end(
                ch,
                f"L0 {target:g} cd/m^2 not reachable: {lum:.4g} cd/m^2 at {amps * 1e3:.4g} mA "
                f"(limit {limit * 1e3:.4g} mA)",
                "L0 not reachable",
            )
            return False
        for _ in range(RAMP_REFINEMENTS):
            (i1, l1), (i2, l2) = points[-2], points[-1]
            if l1 <= 0 or l2 <= 0 or i1 == i2 or l1 == l2:
                break
            slope = math.log(l2 / l1) / math.log(i2 / i1)
            amps = min(i2 * (target / l2) ** (1 / slope), limit)
            lum, _ = lum_at(amps)
            points.append((amps, lum))
            if abs(lum / target - 1) < RAMP_TOLERANCE:
                break
        ch.current_a = amps
        return True

    # --------------------------------------------------------------- sampling
    def _due(self, ch: _Channel) -> float:
        """Bench-clock time of the channel's next sample.  The schedule lives on the
        channel's (rig-clock) time axis; the bench clock only measures the wait from the
        last sample, so a rig whose clock runs at another rate is still sampled sanely."""
        return ch.clock_at_last + (ch.next_time - ch.last_time)

    def _advance_schedule(self, ch: _Channel, t: float) -> None:
        """Next sample: log-spaced after t, at least ``first_interval`` and at most
        ``max_interval`` later."""
        step = t * (10 ** (1 / self.points_per_decade) - 1)
        ch.next_time = t + min(max(step, self.first_interval), self.max_interval)

    def _sample(self, channels: list[_Channel], first: bool = False) -> None:
        """Read ``channels`` in one exchange with the rig, then record each reading."""
        if not channels or self.should_stop():
            return
        readings = self._call(lambda: self.rig.measure_channels([ch.number for ch in channels]))
        for ch, r in zip(channels, readings, strict=True):
            self._record(ch, r, first)

    def _record(self, ch: _Channel, r: ChannelReading, first: bool = False) -> None:
        if first:
            ch.rig_t0 = r.time
        t = r.time - ch.rig_t0
        lum = self._luminance(r.photodiode_current - ch.dark_a)
        if first:
            ch.l0, ch.v0 = lum, r.voltage
            if math.isfinite(ch.on_since):
                ch.age_s = max(r.time - ch.on_since, 0.0)
            # in the file from the first point, so a resumed run's fits start from it too
            self.emit_analysis({"age_at_t0": (ch.age_s, "s")}, ch.group)
        rel = lum / ch.l0 if ch.l0 > 0 else math.nan
        self.emit_row(
            {
                "time": t,
                "rig_time": r.time,
                "voltage": r.voltage,
                "current": r.current,
                "current_set": ch.current_a,
                "current_density": r.current / self._area * 1e3,
                "photodiode_current": r.photodiode_current,
                "photodiode_dark": ch.dark_a,
                "luminance": lum,
                "relative_luminance": rel,
                "status": r.status,
            },
            group=ch.group,
        )
        ch.keep(t, lum)
        ch.last_time, ch.clock_at_last = t, self.bench.clock.time()
        self._advance_schedule(ch, max(t, 0.0))
        reason = self._stop_reason(ch, r, t)
        if (
            reason is None
            and len(ch.times) - ch.last_prediction_n >= self.prediction_every
            and t >= PREDICTION_TIME_GROWTH * ch.last_prediction_t
        ):
            reason = self._predict(ch)
        if reason is not None:
            self._end(ch, *reason)

    def _stop_reason(self, ch: _Channel, r: ChannelReading, t: float) -> tuple[str, str] | None:
        """Why the channel stops now, as (reason, kind): the kind is what the run's
        headline counts channels by; the reason adds the numbers."""
        if r.status in FAULT_STATUSES:
            return FAULT_STATUSES[r.status], _fault(r.status)
        if not ch.l0 > 0:
            return "no light at t = 0 (photodiode reads dark)", "no light"
        ref = ch.l0 if self.reference == "initial" else max(ch.lums)
        if ch.lums[-1] <= self._fraction * ref and len(ch.lums) > 1:
            return f"{self.stop_at} reached at {t / 3600:.4g} h", f"{self.stop_at} reached"
        if t >= self.max_duration * 3600:
            return f"maximum duration {self.max_duration:g} h reached", "maximum duration"
        if self.voltage_rise_limit > 0 and r.voltage - ch.v0 > self.voltage_rise_limit:
            return (
                f"voltage rose by {r.voltage - ch.v0:.3g} V (limit {self.voltage_rise_limit:g} V)",
                "voltage rise",
            )
        return None

    def _predict(self, ch: _Channel) -> tuple[str, str] | None:
        """Early T50 prediction with its band; optionally the reason to stop early."""
        ch.last_prediction_n, ch.last_prediction_t = len(ch.times), ch.times[-1]
        if ch.lums[-1] > (1 - PREDICTION_MIN_DROP) * ch.l0:
            return None
        try:
            pred = lt.predict_t_fraction(
                ch.times, ch.lums, 0.5, reference=self.reference, samples=500, age_s=ch.age_s
            )
        except ValueError as exc:
            if str(exc) != ch.prediction_note:  # one line per new reason, not per attempt
                ch.prediction_note = str(exc)
                self.log_event("prediction", f"{ch.group}: no T50 prediction yet: {exc}")
            return None
        ch.prediction = pred
        self.log_event(
            "prediction",
            f"{ch.group}: T50 predicted {pred.value_s / 3600:.4g} h "
            f"[{pred.low_s / 3600:.4g}, {pred.high_s / 3600:.4g}] h "
            f"({pred.level:.0%}, {_weights_text(pred)}) at t = {ch.times[-1] / 3600:.4g} h"
            + (f"; {pred.open_reason}" if pred.open_reason else ""),
        )
        if 0 < self.early_stop_width and pred.relative_width < self.early_stop_width:
            return (
                f"early stop: T50 band {pred.relative_width:.3g} narrower than "
                f"{self.early_stop_width:g} (T50 {pred.value_s / 3600:.4g} h)",
                "early stop (T50 predicted)",
            )
        return None

    def _end(self, ch: _Channel, reason: str, kind: str) -> None:
        """End one channel: output off, reason logged, its analysis emitted (with the
        kind of ending, which the run's headline counts)."""
        ch.ended, ch.end_kind = reason, kind
        try:
            self._call(lambda: self.rig.set_output(ch.number, False))
        finally:
            self.log_event("channel_end", f"{ch.group} ended: {reason}")
            # the ending as data, at once (before the fits): what a resume and a live
            # report read, even from a run killed later
            ending = {"end_reason": (reason, ""), "end_kind": (kind, "")}
            self.emit_analysis(ending, ch.group)
            self._analyze(ch)

    def _progress(self) -> float:
        done = []
        for ch in self._channels:
            if ch.ended is not None or not ch.lums:
                done.append(1.0)
                continue
            drop = (1 - ch.lums[-1] / ch.l0) / (1 - self._fraction) if ch.l0 > 0 else 0
            done.append(min(max(drop, ch.last_time / (self.max_duration * 3600), 0.0), 1.0))
        return 100.0 * float(np.mean(done)) if done else 100.0

    # --------------------------------------------------------------- analysis
    def _analyze(self, ch: _Channel) -> None:
        figures = channel_figures(ch.times, ch.lums, reference=self.reference, age_s=ch.age_s)
        if "T50_best_note" in figures:
            self.log_event("prediction", f"{ch.group}: {figures['T50_best_note'][0]}")
        if len(ch.times) < 2:
            figures.update(
                {
                    "end_reason": (ch.ended or "", ""),
                    "end_kind": (ch.end_kind or "", ""),
                }
            )
            self.emit_analysis(figures, ch.group)
            return
        figures.update(
            {
                "age_at_t0": (ch.age_s, "s"),
                "end_reason": (ch.ended or "", ""),
                "end_kind": (ch.end_kind or "", ""),
                "current": (ch.current_a, "A"),
                "current_density": (ch.current_a / self._area * 1e3, "mA/cm^2"),
                "initial_luminance": (ch.l0, "cd/m^2"),
                "initial_voltage": (ch.v0, "V"),
            }
        )
        self._figures = getattr(self, "_figures", {})
        self._figures[ch.number] = figures
        self.emit_analysis(figures, ch.group)

    def _summary(self) -> None:
        """Across channels: the acceleration exponent and T50 at the reference luminances."""
        figures = getattr(self, "_figures", {})
        rows = [  # T50 from the data where reached, else the best fit's extrapolation
            (
                f["initial_luminance"][0],
                (f["T50"][0] if math.isfinite(f["T50"][0]) else f["T50_best"][0]) * 3600,
                f["T50_best_err"][0] * 3600,
            )
            for f in figures.values()
            if "T50_best" in f and math.isfinite(f["T50_best"][0])
        ]
        if not rows:
            return
        out: dict[str, tuple[Any, str]] = {"channels_analysed": (len(rows), "")}
        l0s = np.array([r[0] for r in rows])
        t50 = np.array([r[1] for r in rows])
        err = np.array([r[2] for r in rows])
        n, n_err = self.acceleration_exponent, 0.0
        fit = None
        if n == 0:
            usable = np.isfinite(err) & (err > 0)
            try:
                fit = lt.fit_scaling_exponent(l0s, t50, err if np.all(usable) else None)
            except ValueError as exc:
                # INFO, not WARNING: the headline prints the note, the terminal once
                self.log_event("scaling", str(exc), logging.INFO)
                out["acceleration_exponent_note"] = (str(exc), "")
                n = 0.0
            else:
                n, n_err = fit.n, fit.n_err
                out.update(scaling_figures(fit))
                self.log_event(
                    "scaling",
                    f"n = {fit.n:.3g} ± {fit.n_err:.2g}: {fit.note}",
                    logging.INFO if fit.describes_data != "no" else logging.WARNING,
                )
        if n > 0:
            for l_ref in self._reference_luminances():
                key = f"T50_at_{l_ref:g}_cd_m2"
                if fit is not None:
                    value, value_err = fit.t50_at(l_ref)
                    low, high = fit.t50_interval(l_ref)
                    out[f"{key}_low"] = (low / 3600, "h")
                    out[f"{key}_high"] = (high / 3600, "h")
                    # beyond the channels' L0 the band spans a bent law too (much wider)
                    out[f"{key}_extrapolated"] = (fit.extrapolated(l_ref), "")
                else:
                    scaled = [
                        lt.scale_t50(t, l0, l_ref, n, t50_err_s=e, n_err=n_err) for l0, t, e in rows
                    ]
                    w = np.array([1 / max(s[1], 1e-9) ** 2 for s in scaled])
                    value = float(np.sum(w * [s[0] for s in scaled]) / np.sum(w))
                    value_err = float(1 / math.sqrt(np.sum(w)))
                out[key] = (value / 3600, "h")
                out[f"{key}_err"] = (value_err / 3600, "h")
        self.emit_analysis(out)

    # --------------------------------------------------------------- resume
    def _restore(self, data: RunData) -> set[int]:
        """Take back each channel from the run being resumed; return the channels that
        continue from it (ended channels stay ended)."""
        ended = {
            group: str(figures["end_reason"][0])
            for group, figures in data.analysis.items()
            if group is not None and figures.get("end_reason", ("", ""))[0]
        }
        continuing: set[int] = set()
        rig = self.rig
        resuming: list[tuple[_Channel, float, float, float]] = []
        for ch in self._channels:
            cols = data.columns.get(ch.group, {})
            if ch.group in ended:
                ch.ended = ended[ch.group]
                continue
            if not cols or len(cols["time"][0]) == 0:
                continue
            col = {name: values for name, (values, _, _) in cols.items()}
            ch.current_a = float(col["current_set"][-1])
            ch.dark_a = float(col["photodiode_dark"][-1])
            ch.l0 = float(col["luminance"][0])
            ch.age_s = float(data.analysis.get(ch.group, {}).get("age_at_t0", (0.0, "s"))[0])
            ch.v0 = float(col["voltage"][0])
            for t, lum in zip(col["time"], col["luminance"], strict=True):
                ch.keep(float(t), float(lum))
            last_t, last_rig = float(col["time"][-1]), float(col["rig_time"][-1])
            ch.rig_t0 = last_rig - last_t
            self._call(lambda ch=ch: rig.set_current(ch.number, ch.current_a))
            self._call(lambda ch=ch: rig.set_output(ch.number, True))
            resuming.append((ch, last_t, last_rig, float(col["relative_luminance"][-1])))
        if resuming:  # back on: let self-heating settle as before t = 0
            self.bench.clock.sleep(self.settle_time)
        for ch, last_t, last_rig, last_rel in resuming:
            reading = self._call(lambda ch=ch: rig.measure(ch.number))
            now_rig = reading.time
            self._check_resume_jump(ch, reading, last_rel)
            if now_rig < last_rig:
                ch.rig_t0 = now_rig - last_t  # the rig restarted: its clock went back
                self.log_event(
                    "rig_time_reset",
                    f"{ch.group}: rig clock went back ({now_rig:.6g} s < {last_rig:.6g} s); "
                    "continuing the time axis from the last stored point",
                    logging.WARNING,
                )
            elapsed = now_rig - ch.rig_t0
            self._advance_schedule(ch, last_t)
            ch.last_time, ch.clock_at_last = elapsed, self.bench.clock.time()
            continuing.add(ch.number)
            self.log_event(
                "channel_resumed",
                f"{ch.group}: resumed at t = {elapsed / 3600:.6g} h with {len(ch.times)} points",
            )
        return continuing

    def _check_resume_jump(self, ch: _Channel, reading: ChannelReading, last_rel: float) -> None:
        """Warn in the file when L/L0 came back higher than the run left it: a device does
        not un-age, so a fresh or swapped device (or a rig that lost its state) is on that
        channel and its T-values would be wrong."""
        lum = self._luminance(reading.photodiode_current - ch.dark_a)
        rel = lum / ch.l0 if ch.l0 > 0 else math.nan
        if rel > last_rel + RESUME_JUMP:
            self.log_event(
                "resume_jump",
                f"{ch.group}: L/L0 rose from {last_rel:.3f} to {rel:.3f} at the resume point "
                "(a device does not recover like that: was it replaced, or did the rig lose "
                "its state?); its T-values from here on are suspect",
                logging.WARNING,
            )


def _weights_text(pred: lt.LifetimePrediction) -> str:
    """``double 0.71, stretched 0.29``: the models the band averages, by Akaike weight."""
    ranked = sorted(pred.weights.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{m} {w:.2f}" for m, w in ranked if w >= lt.MIN_MODEL_WEIGHT)


def scaling_figures(fit: lt.ScalingFit, level: float = 0.95) -> dict[str, tuple[Any, str]]:
    """The stored figures of a fitted acceleration exponent: n with its 1-σ and ``level``
    interval (lack of fit included) and whether the power law describes the data."""
    low, high = fit.n_interval(level)
    return {
        "acceleration_exponent": (fit.n, ""),
        "acceleration_exponent_err": (fit.n_err, ""),
        "acceleration_exponent_low": (low, ""),
        "acceleration_exponent_high": (high, ""),
        "scaling_interval_level": (level, ""),
        "scaling_chi2_red": (fit.chi2_red, ""),
        "scaling_scatter": (fit.scatter, ""),
        "scaling_lack_of_fit_p": (fit.lack_of_fit_p, ""),
        "scaling_law_describes_data": (fit.describes_data, ""),
        "scaling_law_note": (fit.note, ""),
    }


def channel_figures(
    times: list[float] | np.ndarray,
    lums: list[float] | np.ndarray,
    *,
    reference: str = "initial",
    age_s: float = 0.0,
) -> dict[str, tuple[Any, str]]:
    """T-values from data (both references), every converging fit with its AICc and
    parameters, and the best model's T50 (extrapolated when not reached) with a
    model-averaged band — or ``T50_best_note`` saying why there is none."""
    out: dict[str, tuple[Any, str]] = {}
    for ref in REFERENCES:
        suffix = "" if ref == "initial" else "_peak"
        for name, value in lt.t_values(times, lums, reference=ref).items():  # type: ignore[arg-type]
            out[f"{name}{suffix}"] = (value / 3600, "h")
    try:
        pred = lt.predict_t_fraction(
            times,
            lums,
            0.5,
            reference=reference,  # type: ignore[arg-type]
            samples=1000,
            age_s=age_s,
        )
    except ValueError as exc:
        out["T50_best_note"] = (f"no T50 fit: {exc}", "")
        return out
    for fit in pred.fits:
        out[f"fit_{fit.model}_aicc"] = (fit.aicc, "")
        for key, value in fit.params.items():
            scale, unit = (1 / 3600, "h") if key.endswith("_s") else (1.0, "")
            label = key.removesuffix("_s")
            out[f"fit_{fit.model}_{label}"] = (value * scale, unit)
            out[f"fit_{fit.model}_{label}_err"] = (fit.errors[key] * scale, unit)
    out["best_model"] = (pred.model, "")
    out["T50_best"] = (pred.value_s / 3600, "h")
    out["T50_best_err"] = (pred.std_s / 3600, "h")
    out["T50_best_low"] = (pred.low_s / 3600, "h")
    out["T50_best_high"] = (pred.high_s / 3600, "h")
    out["T50_best_level"] = (pred.level, "")
    out["T50_best_models"] = (_weights_text(pred), "")  # the band's models, Akaike weights
    out["T50_extrapolated"] = (not math.isfinite(out["T50"][0]), "")
    if pred.open_reason:
        out["T50_best_note"] = (pred.open_reason, "")
    return out
