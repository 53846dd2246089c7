"""Turn every configured source output off from a fresh process (``labrig safe-off``).

For after a run that could not shut down itself: SIGKILL (which no program can catch), a
power cut of the PC, a crash of Python, or a run that said the output state was unknown.
Each source role is opened, ramped down and switched off on its own bench, so one
instrument that cannot be reached never stops the others from being turned off.
"""

from __future__ import annotations

from dataclasses import dataclass

from labrig import registry
from labrig.bench import Bench
from labrig.config import BenchConfig
from labrig.errors import LabrigError


@dataclass(frozen=True)
class RoleState:
    """What safe-off could establish about one source role."""

    role: str
    driver: str
    resource: str
    off: bool  # True only when the instrument confirmed it
    detail: str = ""

    def line(self) -> str:
        where = f"{self.driver} @ {self.resource or 'simulated'}"
        if self.off:
            return f"{self.role:10s} off (confirmed)  {where}"
        return f"{self.role:10s} UNKNOWN  {where}: {self.detail}; check it at the instrument"


def safe_off(config: BenchConfig) -> list[RoleState]:
    """Ramp down and switch off every source role in ``config`` (a driver the registry
    marks ``source``); one state per role."""
    states = []
    for role, inst in config.instruments.items():
        if not registry.driver(inst.driver).source:
            continue
        bench = Bench(config, [role])
        try:
            bench.open()
        except LabrigError as exc:
            states.append(RoleState(role, inst.driver, inst.resource or "", False, str(exc)))
            continue
        bench.close(ramp=True)
        problems = "; ".join(bench.shutdown_errors)
        states.append(RoleState(role, inst.driver, inst.resource or "", not problems, problems))
    return states
