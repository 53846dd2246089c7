"""Per-point cost of a J-V-L sweep through the Bluesky RunEngine (labrig's ophyd-async
devices in ``bp.scan``) against the same sweep through labrig's own runner (the path
``labrig run jvl`` takes).

Both drive the same simulated 2400 and 6485, served by ``labrig sim serve`` in their own
process with instrument timing off (``clock_speed: .inf``), at NPLC 0.01, spectra off, so
what is measured is software.  Per point, labrig sets the level, reads V/I and the
photodiode and stores a row (with photometry and the HDF5 store); the RunEngine moves
``smu.level``, triggers and reads both devices and emits an event document (to no
subscriber but the timer).  Per-point times are medians of the steady state (first to
last row or event of each sweep), runs alternate, and the figure is their ratio.

    .venv/bin/python benchmarks/bluesky_overhead.py [--points 400] [--repeat 3]

Target: RunEngine / labrig <= 1.2.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from jvl_overhead import STEP_V, labrig_sweep  # labrig's side, as jvl_overhead times it
from served import bench_config, served_instruments

NPLC = 0.01  # as labrig_sweep's smu_nplc and photometer_nplc


def bluesky_sweep(RE, smu, photodiode, points: int) -> float:
    """Seconds per point of ``bp.scan`` over the 2400's level (first to last event)."""
    import bluesky.plans as bp

    stamps: list[float] = []
    token = RE.subscribe(lambda name, doc: name == "event" and stamps.append(time.perf_counter()))
    try:
        RE(bp.scan([photodiode, smu], smu.level, 0.0, STEP_V * (points - 1), points))
    finally:
        RE.unsubscribe(token)
    if len(stamps) != points:
        raise RuntimeError(f"RunEngine sweep: {len(stamps)} events of {points}")
    return (stamps[-1] - stamps[0]) / (points - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from bluesky import RunEngine
    from ophyd_async.core import init_devices

    from labrig.bluesky.devices import BenchLink, Picoammeter6485, SourceMeter2400

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with served_instruments(tmp) as resources:
            config = bench_config(tmp, resources)
            RE = RunEngine()
            labrig_sweep(config, tmp / "warm-up", 20, None)  # imports, first connections
            labrig, bluesky = [], []
            for k in range(args.repeat):
                labrig.append(labrig_sweep(config, tmp / f"run{k}", args.points, None))
                # one client per instrument: the devices hold the bench only for their sweep
                link = BenchLink(config)
                with init_devices():
                    smu = SourceMeter2400(link, nplc=NPLC)
                    photodiode = Picoammeter6485(link, nplc=NPLC)
                try:
                    bluesky_sweep(RE, smu, photodiode, 20)  # warm-up: first staging
                    bluesky.append(bluesky_sweep(RE, smu, photodiode, args.points))
                finally:
                    link.close()
    med_l, med_b = statistics.median(labrig), statistics.median(bluesky)
    ratio = med_b / med_l
    print(f"J-V-L point through the RunEngine vs labrig ({args.points} points, median of")
    print(f"{args.repeat}, sim in its own process, clock_speed .inf, NPLC {NPLC:g}):")
    print(f"  RunEngine + ophyd-async devices : {med_b * 1e3:7.3f} ms/point")
    print(f"  labrig runner (labrig run jvl)   : {med_l * 1e3:7.3f} ms/point")
    print(f"  ratio RunEngine/labrig           : {ratio:7.2f}   (target <= 1.2)")
    print("target met" if ratio <= 1.2 else "TARGET NOT MET")


if __name__ == "__main__":
    main()
