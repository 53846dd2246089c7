"""Long lifetime runs: memory stays flat and the file grows in proportion to the samples.

Two parts, each in its own process (so each peak RSS is its own):

* ``chain``: the whole lifetime chain -- runner, ``LifetimeProcedure``, rig driver over
  pyserial ``socket://``, the simulated 8-channel rig on an accelerated clock, the HDF5
  store -- sampling every channel once a second of rig time (``first_interval`` =
  ``max_interval`` = 1 s), for as many simulated hours as fit the time budget.
* ``store``: the store side of the full 1000-hour, 8-channel, one-sample-a-second run
  (28.8 million rows in the lifetime columns), appended an hour of rows per channel at a
  time, as fast as the store takes them.
* ``store-per-row`` (the same-run baseline of the file size): the same rows for fewer
  hours (``--baseline-hours``) with every column stored per row, as run-file format 2 did
  (format 3 stores a channel's set current and dark current once).

Both print resident memory and file size at checkpoints as the run grows; the figures
are the RSS growth from the first checkpoint to the last (against the RSS the imports
alone take, measured in the same process) and the spread of bytes per sample.

    .venv/bin/python benchmarks/lifetime_memory.py [--chain-hours 2.5] [--store-hours 1000]

Targets: peak RSS < 150 MB, flat as the run grows; file size proportional to samples.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CHANNELS = 8


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _import_everything() -> None:
    import labrig.drivers.lifetime_rig  # noqa: F401
    import labrig.procedures.lifetime  # noqa: F401
    import labrig.runner  # noqa: F401
    import labrig.simulators.lab  # noqa: F401
    import labrig.simulators.lifetime_rig  # noqa: F401
    import labrig.store  # noqa: F401


# ----------------------------------------------------------------------------- chain
def chain(hours: float, out: Path) -> dict:
    _import_everything()
    import yaml

    from labrig.config import parse_config, shipped_config_dir
    from labrig.procedures.lifetime import LifetimeProcedure
    from labrig.runner import run_procedure

    baseline = rss_mb()
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {"lifetime": {**data["instruments"]["lifetime"], "channels": CHANNELS}}
    config = parse_config(data)
    samples = [0]
    # steady sampling: from 5 % to 95 % of the run's samples, clear of the start-up and
    # of the channels' ends (each end fits that channel's decay between two rows)
    expected = CHANNELS * int(hours * 3600)
    marks = {round(0.05 * expected): 0.0, round(0.95 * expected): 0.0}
    checkpoints: list[tuple[int, float, int]] = []

    class Counted(LifetimeProcedure):
        def emit_row(self, values, group=None):
            super().emit_row(values, group)
            samples[0] += 1
            if samples[0] in marks:
                marks[samples[0]] = time.perf_counter()

    proc = Counted()
    proc.set_parameters(
        {
            "channels": "all",
            "drive": "current density",
            "levels": "1",  # mA/cm^2: T50 far beyond the run, no channel ends early
            "first_interval": 1.0,
            "max_interval": 1.0,
            "settle_time": 0.0,
            "max_duration": hours,
            "voltage_rise_limit": 0.0,
        }
    )
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            files = list(out.glob("*.h5"))
            size = files[0].stat().st_size if files else 0
            checkpoints.append((samples[0], rss_mb(), size))

    watcher = threading.Thread(target=watch, daemon=True)
    t0 = time.perf_counter()
    watcher.start()
    result = run_procedure(proc, config, output_dir=out, progress=False)
    done.set()
    watcher.join()
    elapsed = time.perf_counter() - t0
    path = result.path
    return {
        "status": result.status,
        "reason": result.reason,
        "samples": samples[0],
        "seconds": elapsed,
        "sampling": (max(marks) - min(marks)) / (marks[max(marks)] - marks[min(marks)]),
        "baseline_mb": baseline,
        "peak_mb": peak_mb(),
        "checkpoints": checkpoints,
        "end": (samples[0], rss_mb(), path.stat().st_size),
        "simulated_hours": hours,
    }


# ----------------------------------------------------------------------------- store
def store(hours: int, out: Path, per_row: bool = False) -> dict:
    _import_everything()
    import dataclasses

    from labrig.procedures.lifetime import LifetimeProcedure
    from labrig.store import RunStore

    baseline = rss_mb()
    groups = [f"channel_{n:02d}" for n in range(1, CHANNELS + 1)]
    columns = LifetimeProcedure.COLUMNS
    if per_row:
        columns = [dataclasses.replace(c, constant=False) for c in columns]
    st = RunStore.create(
        out,
        procedure="lifetime",
        sample="bench",
        columns=columns,
        signal="relative_luminance",
        axis="time",
        parameters={},
        config_text="name: bench\n",
        simulated=True,
        groups=groups,
    )
    rng = np.random.default_rng(0)
    hour = np.arange(3600, dtype=float)
    noise = rng.normal(0.0, 1e-3, 3600)
    checkpoints: list[tuple[int, float, int]] = []
    t0 = time.perf_counter()
    samples = 0
    for h in range(hours):
        t = h * 3600.0 + hour
        rel = np.exp(-t / 3.6e7) + noise
        for g in groups:
            st.append_rows(
                {
                    "time": t,
                    "rig_time": t + 10.0,
                    "voltage": 3.0 + 1e-9 * t,
                    "current": np.full(3600, 4e-5),
                    "current_set": np.full(3600, 4e-5),
                    "current_density": np.full(3600, 1.0),
                    "photodiode_current": 1e-7 * rel,
                    "photodiode_dark": np.full(3600, 2e-12),
                    "luminance": 100.0 * rel,
                    "relative_luminance": rel,
                    "status": ["OK"] * 3600,
                },
                group=g,
            )
            samples += 3600
        if (h + 1) % max(1, hours // 20) == 0:
            st.flush()
            checkpoints.append((samples, rss_mb(), st.path.stat().st_size))
    st.close("finished")
    elapsed = time.perf_counter() - t0
    return {
        "samples": samples,
        "seconds": elapsed,
        "baseline_mb": baseline,
        "peak_mb": peak_mb(),
        "checkpoints": checkpoints,
        "end": (samples, rss_mb(), st.path.stat().st_size),
        "simulated_hours": hours,
    }


# ----------------------------------------------------------------------------- report
def _slope(r: dict) -> tuple[float, float, float]:
    """(bytes per sample, intercept, largest deviation) of file size over samples."""
    cps = [c for c in r["checkpoints"] if c[0] > 0]
    end = tuple(r["end"])
    pts = np.array([(n, size) for n, _, size in [*cps, end] if n >= 0.1 * end[0] and size])
    slope, intercept = np.polyfit(pts[:, 0], pts[:, 1], 1)
    residual = float(np.max(np.abs(pts[:, 1] - (slope * pts[:, 0] + intercept))))
    return float(slope), float(intercept), residual


def _report(name: str, r: dict) -> bool:
    cps = [c for c in r["checkpoints"] if c[0] > 0]
    end = tuple(r["end"])
    # flat from 40 % (the procedure's window of 4000 points per channel is full) to 90 %
    # of the run (before the channels end: each end fits its decay once)
    first = min(cps, key=lambda c: abs(c[0] - 0.4 * end[0]))
    last = min(cps, key=lambda c: abs(c[0] - 0.9 * end[0]))
    growth = last[1] - first[1]
    # proportional: size = a + b*n over the run, a small and the points on the line
    # (within the HDF5 chunk steps: a chunk of 1024 rows is allocated at once)
    slope, intercept, residual = _slope(r)
    spread = max(abs(intercept), residual) / end[2]
    print(f"{name}: {r['samples']:,} samples ({r['simulated_hours']:g} h x {CHANNELS} channels "
          f"at 1 sample/s) in {r['seconds']:.1f} s ({r['samples'] / r['seconds']:,.0f}/s)")  # fmt: skip
    if "status" in r:
        print(f"  run {r['status']}" + (f": {r['reason']}" if r["reason"] else ""))
        rest = r["seconds"] - r["samples"] / r["sampling"]
        print(f"  steady sampling (5 % to 95 % of the samples): {r['sampling']:,.0f} samples/s "
              f"(target >= 5000); start-up and the channels' end-of-run fits add {rest:.1f} s")  # fmt: skip
    print(f"  RSS after imports {r['baseline_mb']:.1f} MB, peak {r['peak_mb']:.1f} MB "
          f"(target < 150 MB)")  # fmt: skip
    print(f"  RSS while running, from {first[0]:,} to {last[0]:,} samples: {first[1]:.1f} -> "
          f"{last[1]:.1f} MB ({growth:+.1f} MB)")  # fmt: skip
    print(f"  file: {end[2] / 1e6:,.1f} MB = {intercept / 1e6:+.2f} MB + {slope:.1f} bytes/sample"
          f" x samples; largest deviation from that line {residual / 1e6:.2f} MB "
          f"({max(abs(intercept), residual) / end[2]:.1%} of the file)")  # fmt: skip
    print(f"  after the run closed (final fits, file closed): RSS {end[1]:.1f} MB")
    step = max(1, len(cps) // 5)
    for n, mb, size in [*cps[::step], end]:
        print(f"    {n:>12,} samples  RSS {mb:6.1f} MB  file {size / 1e6:9.1f} MB")
    return r["peak_mb"] < 150 and growth < 10 and spread < 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain-hours", type=float, default=2.5)
    parser.add_argument("--store-hours", type=int, default=1000)
    parser.add_argument("--baseline-hours", type=int, default=50)
    parser.add_argument(
        "--part", choices=["chain", "store", "store-per-row"], help=argparse.SUPPRESS
    )
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:  # the child process
        out = Path(args.out)
        if args.part == "chain":
            result = chain(args.chain_hours, out)
        else:
            result = store(args.store_hours, out, per_row=args.part == "store-per-row")
        print(json.dumps(result))
        return
    ok = True
    results = {}
    for part, hours_arg, hours in (
        ("chain", "--chain-hours", args.chain_hours),
        ("store", "--store-hours", args.store_hours),
        ("store-per-row", "--store-hours", min(args.store_hours, args.baseline_hours)),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, __file__, "--part", part, hours_arg, str(hours), "--out", tmp],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            if proc.returncode:
                print(proc.stderr[-3000:])
                raise SystemExit(f"{part} part failed")
            results[part] = json.loads(proc.stdout.strip().splitlines()[-1])
            if part != "store-per-row":
                ok &= _report(part, results[part])
    per_sample, base = _slope(results["store"])[0], _slope(results["store-per-row"])[0]
    full = per_sample * CHANNELS * 3600 * 1000
    print(f"file size: {per_sample:.1f} bytes/sample (target <= 48) against {base:.1f} with "
          f"every column per row ({results['store-per-row']['simulated_hours']:g} h, same run):"
          f" {base / per_sample:.2f}x smaller; 1000 h x {CHANNELS} ch x 1 Hz = "
          f"{full / 1e9:.2f} GB (target < 1.5)")  # fmt: skip
    ok &= per_sample <= 48 and full < 1.5e9
    print("targets met" if ok else "TARGETS NOT MET")


if __name__ == "__main__":
    main()
