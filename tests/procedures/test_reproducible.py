"""Seeded simulated runs are reproducible to the last stored bit.

The same config (same seed) run twice must store the same numbers: every data column,
every analysis figure and every spectrum.  That holds only when nothing depends on
thread scheduling -- each level change is confirmed before a dwell (``*OPC?``) and the
simulated clock lets no device time pass while a command is still in flight.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from labrig.config import load_config
from labrig.registry import measurement
from labrig.runner import run_procedure

#: the sections holding what a run measured and derived (times of day and the log's
#: wall-clock stamps are not measurements)
MEASURED = ("entry/data", "entry/analysis", "entry/spectra")

RUNS = {
    # a drive sweep with the DC reference: pulsed/DC EQE ratio came out 1.23, 1.28, 1.47
    "pulsed-el": {
        "mode": "drive sweep",
        "drive_levels": "0.0004, 0.002, 0.008, 0.012",
        "widths": "1",
        "pulses_per_point": 5,
        "dc_reference": "measure",
        "photometer_range": 2e-5,
    },
    "jvl": {"stop_voltage": 5.0, "step_voltage": 0.25},
}


def _stored(path: Path) -> dict[str, bytes]:
    """Every dataset under the measured sections: name -> dtype and raw bytes."""
    out: dict[str, bytes] = {}
    with h5py.File(path, "r") as f:
        for section in MEASURED:
            if section not in f:
                continue

            def take(name: str, obj: object, section: str = section) -> None:
                if isinstance(obj, h5py.Dataset):
                    value = np.asarray(obj[()])
                    out[f"{section}/{name}"] = str(value.dtype).encode() + value.tobytes()

            f[section].visititems(take)
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_identical_seeded_runs_store_identical_figures(tmp_path: Path, name: str):
    stored = []
    for k in range(2):
        proc = measurement(name).procedure_class()()
        proc.set_parameters(RUNS[name])
        result = run_procedure(
            proc, load_config("sim"), output_dir=tmp_path / str(k), progress=False
        )
        assert result.status == "finished", result.reason
        stored.append(_stored(result.path))
    first, second = stored
    assert any(key.startswith("entry/analysis/") for key in first)
    assert sum(key.startswith("entry/data/") for key in first) >= 8
    assert first.keys() == second.keys()
    differ = [key for key in first if first[key] != second[key]]
    assert not differ, f"{name}: these stored values differ between identical runs: {differ}"
