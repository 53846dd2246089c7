"""Bench configs with a substrate on a switch, and plans over them, written as files as a
user would (the batch tests' shared setup)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: the configured device-to-device spread: peak EQE, turn-on (through K), series and
#: shunt resistance
EQE_MAX = {"mean": 0.20, "sd": 0.02}
SPREAD = {
    "eqe_max": EQE_MAX,
    "k_a_cm2_vm": {"mean": 2.4e-3, "sd": 0.2, "distribution": "lognormal"},
    "rs_ohm_cm2": {"mean": 5.0, "sd": 1.0},
    "rsh_ohm_cm2": {"mean": 3e5, "sd": 0.5, "distribution": "lognormal"},
}
#: a quick sweep: 0-4 V in 0.25 V steps crosses the EQE plateau (~1 mA/cm² near 2.8 V)
JVL = {"stop_voltage": 4.0, "step_voltage": 0.25, "spectra": "none", "dark_readings": 3}
SPECTRUM = {"settle_time": 0, "scans_to_average": 1}


def write_plan(
    folder: Path,
    bench: dict[str, Any],
    *,
    substrates: int = 3,
    measurements: list[Any] | None = None,
    **extra: Any,
) -> Path:
    """``bench.yaml`` and ``plan.yaml`` in ``folder``; the plan's path."""
    (folder / "bench.yaml").write_text(yaml.safe_dump(bench))
    plan = {
        "name": "NSA series",
        "bench": "bench.yaml",
        "output_dir": "runs",
        "seed": 11,
        "samples": [
            {"substrate": f"S{k}", "condition": "NSA 0.6 M" if k % 2 else "control"}
            for k in range(1, substrates + 1)
        ],
        "measurements": measurements or [{"jvl": JVL}],
        **extra,
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def substrate_bench(switch_configs: Any, *, spectrometer: bool = False, **kw: Any) -> dict:
    """The sim bench's SMU and photometer, a Keithley 7001 and 8 pixels (A-H), the spread
    above and the given defects."""
    data = switch_configs.switch_config_data(pixels=8, spread=SPREAD, **kw)
    if spectrometer:
        data["instruments"]["spectrometer"] = {"driver": "usb2000plus", "simulated": True}
    return data
