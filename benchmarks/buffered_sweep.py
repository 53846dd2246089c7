"""The 2400's own buffered list sweep against point-by-point, 201 points at NPLC 0.01,
on the simulated 2400 with instrument timing on (``clock_speed: 1``: every source-delay-
measure cycle takes its real time: trigger latency, source delay, NPLC/50 Hz x 3 with
autozero; and so does the firmware: ~12 ms to arm each ``:READ?``, 0.6 ms to store and
0.2 ms to send each reading, from the 2400 datasheet's system speeds).

Two settings: the datasheet's speed conditions (autozero off, source delay 0), where
the target applies, and labrig's defaults (autozero on, auto source delay 1 ms), where
the cycle itself is ~2.3 ms and the ratio is necessarily smaller.

Both go through labrig's driver (``SourceMeter.sweep`` vs ``set_level`` + ``measure`` per
point) to the simulator served in another process (``labrig sim serve``), so each
point-by-point step pays a real round trip on loopback TCP and the simulator's command
handling.

    .venv/bin/python benchmarks/buffered_sweep.py [--points 201] [--repeat 3]

Target: point-by-point / buffered >= 10.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from labrig.config import shipped_config_dir
from labrig.drivers import keithley2400

NPLC = 0.01
COMPLIANCE_A = 0.01


def _serve(tmp: Path) -> tuple[subprocess.Popen, str]:
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {"smu": data["instruments"]["smu"]}
    data["simulation"]["clock_speed"] = 1.0
    config = tmp / "serve.yaml"
    config.write_text(yaml.safe_dump(data))
    server = subprocess.Popen(
        [sys.executable, "-m", "labrig", "sim", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in server.stdout:
        found = re.match(r"\s+smu\s+(TCPIP::\S+)", line)
        if found:
            return server, found.group(1)
    raise RuntimeError("labrig sim serve printed no smu resource")


def point_by_point(smu, levels: list[float]) -> float:
    smu.set_level(levels[0])
    smu.enable_output()
    t0 = time.perf_counter()
    for v in levels:
        smu.set_level(v)
        smu.measure()
    elapsed = time.perf_counter() - t0
    smu.disable_output()
    return elapsed


def buffered(smu, levels: list[float]) -> float:
    t0 = time.perf_counter()
    readings = smu.sweep(levels)
    elapsed = time.perf_counter() - t0
    smu.disable_output()
    if len(readings) != len(levels):
        raise RuntimeError(f"buffered sweep returned {len(readings)} of {len(levels)} points")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=201)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    levels = [float(v) for v in np.linspace(0.0, 3.0, args.points)]
    print(f"2400 sweep, {args.points} points at NPLC {NPLC}, simulated 2400 in its own")
    print(f"process at real instrument timing, median of {args.repeat}:")
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        server, resource = _serve(Path(tmp))
        try:
            smu = keithley2400.connect(resource)
            try:
                for label, settings, target in (
                    (
                        "datasheet speed conditions: autozero off, source delay 0",
                        {"autozero": False, "source_delay": 0.0},
                        10.0,
                    ),
                    ("labrig defaults: autozero on, auto source delay", {}, None),
                ):
                    smu.configure_source("voltage", COMPLIANCE_A, nplc=NPLC, **settings)
                    cycle = smu._cycle_time_s()
                    pbp, buf = [], []
                    for _ in range(args.repeat):
                        pbp.append(point_by_point(smu, levels))
                        buf.append(buffered(smu, levels))
                    met &= _report(label, args.points, pbp, buf, cycle, target)
            finally:
                smu.shutdown(ramp=False)
                smu.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    print("target met" if met else "TARGET NOT MET")


def _report(
    label: str, points: int, pbp: list[float], buf: list[float], cycle: float, target
) -> bool:
    med_p, med_b = statistics.median(pbp), statistics.median(buf)
    ratio = med_p / med_b
    print(f"{label}:")
    print(f"  buffered list sweep (one :READ?): {med_b:7.3f} s  ({med_b / points * 1e3:.2f} ms/pt)")
    print(f"  point by point (set + :READ?)   : {med_p:7.3f} s  ({med_p / points * 1e3:.2f} ms/pt)")
    goal = f"(target >= {target:g})" if target else "(no target)"
    print(f"  speed-up                        : {ratio:7.1f} x   {goal}")
    print(f"  (driver's generous cycle estimate: {cycle * 1e3:.2f} ms/pt)")
    return target is None or ratio >= target


if __name__ == "__main__":
    main()
