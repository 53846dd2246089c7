"""What the batch runner adds to measuring a substrate: an 8-pixel substrate through
``labrig batch run``'s runner against 8 single-device J-V-L runs, as ``labrig run jvl``
makes them, on the same served simulators with the same settings.

The simulated 2400, 6485 and Keithley 7001 switch (with the 8-pixel substrate behind
it) are served by ``labrig sim serve`` in their own process **at instrument timing**
(``clock_speed: 1``: NPLC 1 integrations, source delays and the switch's settling take
their real time).  Each device is a J-V-L of 61 points (0 to 6 V by 0.1 V), NPLC 1 on
both meters, no spectra (the USB spectrometer cannot be served).

* batch: ``labrig.batch.runner.run_batch`` of a plan of the substrate's 8 pixels, as
  ``labrig batch run`` calls it: per pixel, switch (output off, break before make,
  confirmed), one run file, the batch file rewritten;
* baseline: 8 x ``labrig.runner.run_procedure`` of the J-V-L procedure (what
  ``labrig run jvl`` calls, without the interpreter's start-up), each after the pixel's
  channel was closed through the served switch outside the timing.

Arms alternate; the figure is the ratio of the median substrate times.

    .venv/bin/python benchmarks/batch_overhead.py [--repeat 3] [--pixels 8] [--profile]

Target (issue 19): batch / baseline <= 1.05 (switching and bookkeeping add <= 5 %).
``--profile`` prints where the batch arm's own time goes (cProfile, by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from labrig.config import load_config
from labrig.simulators.served import sim_serve

ROLES = ("smu", "photometer", "switch")
#: the J-V-L of every device: 61 points at NPLC 1, no spectra
JVL = {
    "start_voltage": 0.0,
    "stop_voltage": 6.0,
    "step_voltage": 0.1,
    "smu_nplc": 1.0,
    "photometer_nplc": 1.0,
    "spectra": "none",
}
TARGET = 1.05


def channel(k: int) -> str:
    """The 7001 channel of pixel k (1-based): card 1, channel k."""
    return f"1!{k}"


def pixel_names(pixels: int) -> list[str]:
    return [chr(64 + k) for k in range(1, pixels + 1)]


def config_data(pixels: int) -> dict[str, Any]:
    """The shipped simulated bench's 2400 and 6485, a 7001 switch and a substrate of
    ``pixels`` pixels on its channels, at instrument timing."""
    data = load_config("sim").model_dump(mode="json", exclude_none=True)
    area = data["device"]["active_area_cm2"]
    data["instruments"] = {
        "smu": data["instruments"]["smu"],
        "photometer": data["instruments"]["photometer"],
        "switch": {"driver": "keithley7001", "simulated": True, "channels": 8},
    }
    data["substrate"] = {
        "pixels": {
            name: {"channel": channel(k), "area_cm2": area}
            for k, name in enumerate(pixel_names(pixels), start=1)
        }
    }
    data["simulation"]["clock_speed"] = 1.0
    return data


def bench_configs(tmp: Path, resources: dict[str, str], pixels: int) -> tuple[Path, Path]:
    """Real-bench configs (no instrument simulated) at the served instruments: with the
    switch and substrate (the batch's), and the 2400 + 6485 alone (``labrig run``'s)."""
    data = config_data(pixels)
    drivers = {"smu": "keithley2400", "photometer": "keithley6485", "switch": "keithley7001"}
    data["instruments"] = {r: {"driver": drivers[r], "resource": resources[r]} for r in ROLES}
    data["instruments"]["switch"]["channels"] = 8
    data.pop("simulation", None)
    with_switch = tmp / "bench_switch.yaml"
    with_switch.write_text(yaml.safe_dump(data))
    data["instruments"].pop("switch")
    data.pop("substrate")
    single = tmp / "bench_single.yaml"
    single.write_text(yaml.safe_dump(data))
    return with_switch, single


def batch_arm(bench: Path, out: Path, pixels: int, profile: cProfile.Profile | None) -> float:
    """Seconds for the substrate through the batch runner (plan loaded beforehand)."""
    from labrig.batch.plan import load_plan
    from labrig.batch.runner import run_batch

    plan_file = out.parent / f"{out.name}_plan.yaml"
    plan_file.write_text(
        yaml.safe_dump(
            {
                "name": out.name,
                "bench": str(bench),
                "output_dir": str(out),
                "samples": [{"substrate": "S1", "pixels": pixel_names(pixels)}],
                "measurements": [{"jvl": JVL}],
            }
        )
    )
    plan = load_plan(plan_file)
    if profile is not None:
        profile.enable()
    t0 = time.perf_counter()
    result = run_batch(plan, progress=False)
    elapsed = time.perf_counter() - t0
    if profile is not None:
        profile.disable()
    if result.status != "finished":
        raise RuntimeError(f"batch: {result.status} {result.reason}")
    return elapsed


def single_arm(single: Path, switch_resource: str, out: Path, pixels: int) -> float:
    """Seconds for ``pixels`` single-device J-V-L runs (each pixel switched in untimed)."""
    from labrig.config import load_config
    from labrig.drivers import keithley7001
    from labrig.procedures.jvl import JVLProcedure
    from labrig.runner import run_procedure

    config = load_config(single)
    switch = keithley7001.connect(switch_resource, channels=8)
    total = 0.0
    try:
        for k in range(1, pixels + 1):
            switch.open_all()
            switch.close(channel(k))
            proc = JVLProcedure()
            proc.set_parameters(dict(JVL))
            t0 = time.perf_counter()
            result = run_procedure(proc, config, output_dir=out, progress=False)
            total += time.perf_counter() - t0
            if result.status != "finished":
                raise RuntimeError(f"single run: {result.status} {result.reason}")
        switch.open_all()
    finally:
        switch.shutdown()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pixels", type=int, default=8)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        serve = tmp / "serve.yaml"
        serve.write_text(yaml.safe_dump(config_data(args.pixels)))
        with sim_serve(serve, ROLES) as served:
            with_switch, single = bench_configs(tmp, served.resources, args.pixels)
            single_arm(single, served.resources["switch"], tmp / "warm-single", 1)  # imports
            batch_arm(with_switch, tmp / "warm_batch", 1, None)
            batch, base = [], []
            for k in range(args.repeat):
                base.append(
                    single_arm(single, served.resources["switch"], tmp / f"s{k}", args.pixels)
                )
                batch.append(batch_arm(with_switch, tmp / f"batch{k}", args.pixels, None))
            profile = cProfile.Profile() if args.profile else None
            if profile is not None:
                batch_arm(with_switch, tmp / "profiled", args.pixels, profile)
    med_batch, med_base = statistics.median(batch), statistics.median(base)
    ratio = med_batch / med_base
    n = args.pixels
    print(f"{n}-pixel substrate, J-V-L 61 points NPLC 1 each, instrument timing, sim served")
    print(f"in its own process (median of {args.repeat}, arms alternating):")
    print(f"  batch runner (switch + run file + batch file per pixel): {med_batch:8.2f} s")
    print(f"  {n} x single-device run_procedure (labrig run jvl)       : {med_base:8.2f} s")
    print(f"  per pixel: {med_batch / n:.3f} vs {med_base / n:.3f} s, "
          f"+{(med_batch - med_base) / n * 1e3:.0f} ms")  # fmt: skip
    print(f"  ratio batch / single                 : {ratio:6.3f}   (target <= {TARGET:.2f})")
    print(f"  all runs: batch {', '.join(f'{t:.2f}' for t in batch)} s; "
          f"single {', '.join(f'{t:.2f}' for t in base)} s")  # fmt: skip
    print("target met" if ratio <= TARGET else "TARGET NOT MET")
    if profile is not None:
        print("\nbatch arm profile (own time):")
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
