"""What keeping the batch file crash-safe costs: the whole file rewritten to a temporary
file, synced and renamed into place after every run, against the run it records (a
simulated J-V-L, 61 points at NPLC 1, through ``run_procedure``, the simulator at
instrument timing, ``simulation.clock_speed: 1``; ``--instant`` for the instant clock),
measured in the same run.

    .venv/bin/python benchmarks/batch_file.py [--devices 24 500] [--repeat 5] [--instant]

Target: the two rewrites a run costs (as it starts, as it ends) <= 1 % of the run, for a
24-device batch (3 substrates of 8 pixels) and a 500-row one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from labrig.batch.file import DeviceResult, write_batch
from labrig.config import load_config
from labrig.procedures.jvl import JVLProcedure
from labrig.runner import run_procedure

FIGURES = {
    "turn_on_voltage": (2.3, "V"),
    "peak_eqe": (21.3, "%"),
    "max_luminance": (3000.0, "cd/m^2"),
    "eqe_at_1000_cd_m2": (20.0, "%"),
    "peak_current_efficiency": (25.0, "cd/A"),
    "el_peak_wavelength": (628.0, "nm"),
    "cie_x": (0.69, ""),
    "cie_y": (0.31, ""),
}


def one_run(out: Path, instant: bool) -> tuple[float, Path]:
    config = load_config("sim")
    if not instant:
        sim = config.simulation.model_copy(update={"clock_speed": 1.0})
        config = config.model_copy(update={"simulation": sim})
    t0 = time.perf_counter()
    result = run_procedure(JVLProcedure(spectra="none"), config, output_dir=out, progress=False)
    return time.perf_counter() - t0, result.path


def rewrite(out: Path, devices: int, run_file: Path) -> float:
    rows = [
        DeviceResult(f"S{k // 8}", "ABCDEFGH"[k % 8], "", "jvl", "finished", "", run_file, FIGURES)
        for k in range(devices)
    ]
    t0 = time.perf_counter()
    write_batch(out / "batch.h5", "bench", "running", rows, plan_text="name: bench\n" * 20)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[24, 500])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1, help="baseline runs (median)")
    parser.add_argument("--instant", action="store_true", help="the instant simulated clock")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        runs, run_file = [], None
        for _ in range(args.runs):
            elapsed, run_file = one_run(out, args.instant)
            runs.append(elapsed)
        run_s = statistics.median(runs)
        timing = "instant clock" if args.instant else "instrument timing"
        print(f"one simulated J-V-L run (61 points, {timing}): {run_s:.3f} s")
        for n in args.devices:
            times = [rewrite(out, n, run_file) for _ in range(args.repeat)]
            t = statistics.median(times)
            print(
                f"batch file rewrite, {n} rows: {t * 1e3:.2f} ms (median of {len(times)}); "
                f"two per run = {2 * t / run_s:.2%} of the run"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
