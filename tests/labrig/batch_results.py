"""Batch results built by hand for the statistics and batch-report tests (the batch
file's own ``DeviceResult``/``Batch``), filled with values whose statistics the tests
work out by hand."""

from __future__ import annotations

from pathlib import Path

from labrig.batch.file import Batch, DeviceResult


def device(
    substrate: str,
    pixel: str,
    *,
    condition: str = "",
    measurement: str = "jvl",
    status: str = "finished",
    reason: str = "",
    run_file: Path | None = None,
    **figures: float | tuple[float, str],
) -> DeviceResult:
    """One device's result; a figure given as a bare number gets the units jvl uses."""
    units = {"peak_eqe": "%", "max_luminance": "cd/m^2", "turn_on_voltage": "V"}
    return DeviceResult(
        substrate=substrate,
        pixel=pixel,
        condition=condition,
        measurement=measurement,
        status=status,
        reason=reason,
        run_file=run_file,
        figures={
            k: v if isinstance(v, tuple) else (float(v), units.get(k, ""))
            for k, v in figures.items()
        },
    )


def batch(*devices: DeviceResult, path: Path = Path("batch.h5"), name: str = "plan") -> Batch:
    return Batch(path=path, name=name, status="finished", devices=tuple(devices))
