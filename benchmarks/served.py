"""Simulated instruments served in their own process, as a benchmark's bench, and a
labrig J-V-L timed on them.

``labrig sim serve`` runs the simulated 2400 and 6485 (instrument timing off,
``clock_speed: .inf``) so what a benchmark measures is the client's software; both
labrig and any peer client reach them at the ``TCPIP::…::SOCKET`` resources it prints.
"""

from __future__ import annotations

import cProfile
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

from labrig.config import shipped_config_dir
from labrig.simulators.served import sim_serve

ROLES = ("smu", "photometer")


@contextmanager
def served_instruments(tmp: Path) -> Iterator[dict[str, str]]:
    """Serve the 2400 and 6485 for the ``with`` block; yields role -> VISA resource."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {r: data["instruments"][r] for r in ROLES}
    data["simulation"]["clock_speed"] = float("inf")
    config = tmp / "serve.yaml"
    config.write_text(yaml.safe_dump(data))
    with sim_serve(config, ROLES) as served:
        yield served.resources


def bench_config(tmp: Path, resources: dict[str, str]) -> Path:
    """A real-bench config (``simulated: false``) pointing labrig at the served instruments."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {
        "smu": {"driver": "keithley2400", "resource": resources["smu"]},
        "photometer": {"driver": "keithley6485", "resource": resources["photometer"]},
    }
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def timed_jvl(
    config: Path,
    out: Path,
    settings: Mapping[str, object],
    profile: cProfile.Profile | None = None,
    cpu: list[float] | None = None,
) -> float:
    """Seconds per point of a labrig J-V-L with ``settings`` (first row to last row);
    ``cpu`` gets this process's CPU seconds per point over the same rows (every thread:
    the store's flusher is labrig's work too; the instruments run in their own process)."""
    from labrig.config import load_config
    from labrig.procedures.jvl import JVLProcedure
    from labrig.runner import run_procedure

    stamps: list[float] = []
    cpu_stamps: list[float] = []

    def stamp() -> None:
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())

    class Timed(JVLProcedure):  # a step's row comes as one row, several as columns
        def emit_row(self, values, group=None):
            super().emit_row(values, group)
            stamp()

        def emit_rows(self, columns, group=None):
            super().emit_rows(columns, group)
            stamp()

    proc = Timed()
    proc.set_parameters(dict(settings))
    if profile is not None:
        profile.enable()
    result = run_procedure(proc, load_config(config), output_dir=out, progress=False)
    if profile is not None:
        profile.disable()
    if result.status != "finished" or len(stamps) < 2:
        raise RuntimeError(f"labrig sweep: {result.status} {result.reason}, {len(stamps)} rows")
    if cpu is not None:
        cpu.append((cpu_stamps[-1] - cpu_stamps[0]) / (len(stamps) - 1))
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def spread(values: list[float], fmt: str) -> str:
    """min / lower quartile / median / upper quartile / max of ``values``, for a reader
    to see how far one run's figure can be from another's."""
    if len(values) < 2:
        return f"{values[0]:{fmt}}" if values else "-"
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    parts = (min(values), q1, q2, q3, max(values))
    return "min {} / q1 {} / median {} / q3 {} / max {}".format(*(f"{v:{fmt}}" for v in parts))


def ratio_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """median(a) / median(b) and its bootstrap ``confidence`` interval (scipy's percentile
    bootstrap over both samples, seeded: the same times give the same interval).  On a
    shared 2-core machine whole sweeps swing by ~10 % from one to the next, so a ratio
    of medians over ~20 sweeps is only known to a few per cent: the interval says how
    far."""
    from scipy.stats import bootstrap

    def ratio(x: Sequence[float], y: Sequence[float], axis: int = -1) -> float:
        return float(np.median(x, axis=axis) / np.median(y, axis=axis))

    found = bootstrap(
        (np.asarray(a), np.asarray(b)),
        ratio,
        vectorized=False,
        confidence_level=confidence,
        method="percentile",
        n_resamples=4000,
        random_state=np.random.default_rng(0),
    )
    low, high = found.confidence_interval
    return ratio(a, b), float(low), float(high)
