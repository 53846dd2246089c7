"""Recording instruments for the bench and runner lifecycle tests.

They implement the labrig interfaces like a driver does and record every lifecycle call
into a shared event list, so a test can see what was turned off, in which order, with or
without the ramp, and what was closed.  Hooks let a test act at a chosen moment (raise,
block, send a signal) the way a misbehaving instrument or an impatient user would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from labrig.config import BenchConfig, InstrumentConfig, load_config
from labrig.interfaces import (
    CurrentReading,
    Instrument,
    InstrumentIdentity,
    Picoammeter,
    SourceMeter,
    SourceReading,
)

DRIVERS = {"smu": "keithley2400", "photometer": "keithley6485"}


class FakeSMU(SourceMeter):
    def __init__(self, events: list, *, ramp_steps: int = 5, step_s: float = 0.0) -> None:
        self.events = events
        self.resource = "FAKE::smu"
        self.level = 0.0
        self._on = False
        self.closed = False
        self.ramp_steps = ramp_steps
        self.step_s = step_s
        self.on_measure: Callable[[float], None] | None = None
        self.on_ramp_step: Callable[[int], None] | None = None
        self.shutdown_error: Exception | None = None

    def identity(self) -> InstrumentIdentity:
        return InstrumentIdentity("FAKE", "2400", "0001", "1.0", "FAKE,2400,0001,1.0")

    def configure_source(self, function, compliance, **kw) -> None:
        self.events.append(("smu.configure", function, compliance))

    def set_level(self, level: float) -> None:
        self.level = float(level)

    def enable_output(self) -> None:
        self.events.append(("smu.on",))
        self._on = True

    def disable_output(self) -> None:
        self._on = False

    @property
    def output_enabled(self) -> bool:
        return self._on

    def measure(self) -> SourceReading:
        if self.on_measure is not None:
            self.on_measure(self.level)
        return SourceReading(self.level, self.level * 1e-3, time.time())

    def sweep(self, levels: Sequence[float], *, abort_on_compliance: bool = False):
        return [SourceReading(v, v * 1e-3, time.time()) for v in levels]

    def shutdown(self, ramp: bool = True) -> None:
        self.events.append(("smu.shutdown", ramp))
        if self.shutdown_error is not None:
            raise self.shutdown_error
        if ramp:
            start = self.level
            for i in range(self.ramp_steps):
                self.level = start * (self.ramp_steps - i - 1) / self.ramp_steps
                if self.on_ramp_step is not None:
                    self.on_ramp_step(i)
                time.sleep(self.step_s)
        self.level = 0.0
        self._on = False
        self.events.append(("smu.off", ramp))

    def close(self) -> None:
        self.events.append(("smu.close",))
        self.closed = True


class FakePicoammeter(Picoammeter):
    def __init__(self, events: list) -> None:
        self.events = events
        self.resource = "FAKE::photometer"
        self.closed = False
        self.shutdown_error: Exception | None = None

    def identity(self) -> InstrumentIdentity:
        return InstrumentIdentity("FAKE", "6485", "0002", "1.0")

    def configure(self, **kw) -> None:
        pass

    def zero_correct(self) -> None:
        pass

    def read(self) -> CurrentReading:
        return CurrentReading(1e-9, time.time())

    def read_burst(self, count: int):
        return [self.read() for _ in range(count)]

    def shutdown(self) -> None:
        self.events.append(("photometer.shutdown",))
        if self.shutdown_error is not None:
            raise self.shutdown_error

    def close(self) -> None:
        self.events.append(("photometer.close",))
        self.closed = True


def fake_config(roles: Sequence[str] = ("smu", "photometer")) -> BenchConfig:
    """The shipped sim config with real-looking (not simulated) instruments in ``roles``."""
    cfg = load_config("sim")
    instruments = {
        role: InstrumentConfig(driver=DRIVERS[role], resource=f"FAKE::{role}") for role in roles
    }
    return cfg.model_copy(update={"instruments": instruments})


def make_opener(instruments: dict[str, Instrument], fail: dict[str, Exception] | None = None):
    """An ``opener`` handing out ``instruments``; ``fail[role]`` is raised instead."""
    fail = fail or {}
    opened: list[str] = []

    def opener(role, inst_cfg, config, lab):
        if role in fail:
            raise fail[role]
        opened.append(role)
        return instruments[role]

    opener.opened = opened  # type: ignore[attr-defined]
    return opener
