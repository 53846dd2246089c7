"""Per-point cost of a J-V-L through the Bluesky RunEngine against the same J-V-L through
labrig's own runner (the path ``labrig run jvl`` takes).

Both drive the same simulated 2400 and 6485, served by ``labrig sim serve`` in their own
process with instrument timing off (``clock_speed: .inf``), at NPLC 0.01, spectra off, so
what is measured is software:

* labrig: ``run_procedure`` of the jvl procedure (set level and read, photodiode, row
  with photometry into the HDF5 store);
* RunEngine, ``plans.jvl``: the same procedure as a plan (``labrig.bluesky.plans``) on
  the bench link's instruments, the same HDF5 file, plus every row as an event-model
  event handed to a subscriber of the RunEngine (the sweep ends when it has the stop);
* RunEngine, ``bp.scan``: bluesky's own scan of labrig's ophyd-async 2400 and 6485 (a
  move, triggers and reads per point, an event document each, no file), for comparison.

Per point = (whole sweep of N points - whole sweep of M points) / (N - M), so what a run
costs once (files, connections, darks, staging) cancels; both in wall time and in this
process's CPU time (all its threads: the RunEngine's loop too), which a loaded machine
disturbs far less.  Runs alternate; figures are medians and their ratios to labrig's.

    .venv/bin/python benchmarks/bluesky_overhead.py [--points 400] [--base 50] [--repeat 5]

Target: J-V-L through the RunEngine (``plans.jvl``) / labrig <= 1.2.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jvl_overhead import STEP_V, sweep_settings
from served import bench_config, served_instruments

NPLC = 0.01  # as sweep_settings' smu_nplc and photometer_nplc
Cost = tuple[float, float]  # (wall s, CPU s)


def _cost(sweep: Callable[[], None]) -> Cost:
    wall, cpu = time.perf_counter(), time.process_time()
    sweep()
    return time.perf_counter() - wall, time.process_time() - cpu


def labrig_sweep(config: Path, out: Path, points: int) -> Cost:
    from labrig.config import load_config
    from labrig.procedures.jvl import JVLProcedure
    from labrig.runner import run_procedure

    def sweep() -> None:
        proc = JVLProcedure()
        proc.set_parameters(sweep_settings(points))
        result = run_procedure(proc, load_config(config), output_dir=out, progress=False)
        if result.status != "finished":
            raise RuntimeError(f"labrig sweep: {result.status} {result.reason}")

    return _cost(sweep)


def plan_sweep(RE, points: int) -> Cost:
    from labrig.bluesky import plans

    names: list[str] = []
    token = RE.subscribe(lambda name, doc: names.append(name))
    try:
        cost = _cost(lambda: RE(plans.jvl("bench", **sweep_settings(points))))
    finally:
        RE.unsubscribe(token)
    if names.count("event") < points or names[-1] != "stop":
        raise RuntimeError(f"plans.jvl: {names.count('event')} events of {points}")
    return cost


def scan_sweep(RE, smu, photodiode, points: int) -> Cost:
    import bluesky.plans as bp

    names: list[str] = []
    token = RE.subscribe(lambda name, doc: names.append(name))
    try:
        stop = STEP_V * (points - 1)
        cost = _cost(lambda: RE(bp.scan([photodiode, smu], smu.level, 0.0, stop, points)))
    finally:
        RE.unsubscribe(token)
    if names.count("event") != points:
        raise RuntimeError(f"bp.scan: {names.count('event')} events of {points}")
    return cost


def per_point(big: list[Cost], small: list[Cost], n: int) -> Cost:
    """Median per-point (wall, CPU) from sweeps of ``n`` more points than ``small``'s."""
    return (
        statistics.median(b[0] - s[0] for b, s in zip(big, small, strict=True)) / n,
        statistics.median(b[1] - s[1] for b, s in zip(big, small, strict=True)) / n,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--base", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from bluesky import RunEngine
    from ophyd_async.core import init_devices

    from labrig.bluesky import plans
    from labrig.bluesky.devices import BenchLink, Picoammeter6485, SourceMeter2400

    sweeps: dict[str, dict[int, list[Cost]]] = {
        k: {args.points: [], args.base: []} for k in ("labrig", "plan", "scan")
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with served_instruments(tmp) as resources:
            config = bench_config(tmp, resources)
            RE = RunEngine()
            labrig_sweep(config, tmp / "warm-up", 20)  # imports, first connections
            for k in range(args.repeat):
                for n in (args.points, args.base):
                    sweeps["labrig"][n].append(labrig_sweep(config, tmp / f"run{k}", n))
                # one client per instrument: the link holds the bench only for its sweeps
                link = BenchLink(config)
                plans.install(RE, link, tmp / f"plan{k}")
                with init_devices():
                    smu = SourceMeter2400(link, nplc=NPLC)
                    photodiode = Picoammeter6485(link, nplc=NPLC)
                try:
                    plan_sweep(RE, 20)  # warm-up
                    scan_sweep(RE, smu, photodiode, 20)  # warm-up: first staging
                    for n in (args.points, args.base):
                        sweeps["plan"][n].append(plan_sweep(RE, n))
                        sweeps["scan"][n].append(scan_sweep(RE, smu, photodiode, n))
                finally:
                    link.close()
    extra = args.points - args.base
    cost = {k: per_point(v[args.points], v[args.base], extra) for k, v in sweeps.items()}
    (lw, lc), (pw, pc), (sw, sc) = cost["labrig"], cost["plan"], cost["scan"]
    print(f"J-V-L point through the RunEngine vs labrig (sweeps of {args.points} - {args.base}")
    print(f"points, median of {args.repeat}, sim in its own process, clock_speed .inf,")
    print(f"NPLC {NPLC:g}), per point:            wall ms   CPU ms")
    print(f"  labrig runner (labrig run jvl)     : {lw * 1e3:7.3f}  {lc * 1e3:7.3f}")
    print(f"  RunEngine, plans.jvl (file+events) : {pw * 1e3:7.3f}  {pc * 1e3:7.3f}")
    print(f"  RunEngine, bp.scan of the devices  : {sw * 1e3:7.3f}  {sc * 1e3:7.3f}")
    print(
        f"  ratio plans.jvl/labrig             : {pw / lw:7.2f}  {pc / lc:7.2f}   (target <= 1.2)"
    )
    print(f"  ratio bp.scan/labrig (comparison)  : {sw / lw:7.2f}  {sc / lc:7.2f}")
    print("target met" if max(pw / lw, pc / lc) <= 1.2 else "TARGET NOT MET")


if __name__ == "__main__":
    main()
