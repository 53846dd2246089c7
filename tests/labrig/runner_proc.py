"""A run in its own process, for the real-signal tests of the runner.

Usage: ``python runner_proc.py OUTPUT_DIR``.  Runs a slow sweep on recording fake
instruments (a 1 s shutdown ramp) and prints ``step N`` per point and ``ramp N`` per ramp
step, so the parent can send SIGINT/SIGTERM at the right moments; at the end it prints
the result, the recorded lifecycle events and the output state.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fakes import FakePicoammeter, FakeSMU, fake_config, make_opener  # noqa: E402

from labrig.bench import Bench  # noqa: E402
from labrig.procedure import Column, LabrigProcedure  # noqa: E402
from labrig.runner import run_procedure  # noqa: E402


class SlowSweep(LabrigProcedure):
    NAME = "slow-sweep"
    COLUMNS = (Column("voltage_v", "V", "voltage"),)
    SIGNAL = AXIS = "voltage_v"
    REQUIRED_ROLES = ("smu",)

    def startup(self) -> None:
        self.bench.smu.set_level(5.0)
        self.bench.smu.enable_output()

    def execute(self) -> None:
        for step in range(600):
            if self.should_stop():
                return
            self.emit_row({"voltage_v": self.bench.smu.measure().voltage})
            print(f"step {step}", flush=True)
            self.bench.clock.sleep(0.05)


def main() -> None:
    events: list = []
    smu = FakeSMU(events, ramp_steps=20, step_s=0.05)
    smu.on_ramp_step = lambda i: print(f"ramp {i}", flush=True)
    opener = make_opener({"smu": smu, "photometer": FakePicoammeter(events)})
    result = run_procedure(
        SlowSweep(),
        fake_config(),
        output_dir=Path(sys.argv[1]),
        bench_factory=functools.partial(Bench, opener=opener),
        progress=False,
    )
    print(f"result {result.status} {result.reason} {result.path}", flush=True)
    print(f"events {events}", flush=True)
    print(f"output_enabled {smu.output_enabled} closed {smu.closed}", flush=True)


if __name__ == "__main__":
    main()
