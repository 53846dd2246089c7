"""Real run files for the report/export/watch/gui tests: each made by the real procedure
on the simulated bench (simulated instruments over loopback TCP, runner, HDF5 store),
small enough to take about a second.  Not committed binaries: made per test session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labrig.config import load_config, resolve_config_path

#: procedure -> (shipped config, --set style parameters that keep the run short)
QUICK = {
    "jvl": ("sim", {"stop_voltage": 6.0, "step_voltage": 0.25}),
    "spectrum": ("sim", {"settle_time": 0.1}),
    "solar-jv": ("solar_sim", {"step_voltage": 0.05}),
    "sclc": ("sclc_sim", {"points": 31}),
    "lifetime": (
        "sim",
        {
            "channels": "1-2",
            "levels": "3000,4000",
            "settle_time": 1.0,
            "ramp_dwell": 0.1,
            "max_interval": 120.0,
            "points_per_decade": 10,
        },
    ),
}


#: pulsed-el settings that keep a run around a second (no rest between points)
QUICK["pulsed-el"] = ("sim", {"rest": 0.0, "pulses_per_point": 4, "dc_dwell": 0.1})


def shared_run(procedure: str, tmp_path_factory: pytest.TempPathFactory, **overrides) -> Path:
    """``make_run`` once per test session, shared by the pytest-xdist workers (the first
    to ask makes the file under a lock; the others reuse it)."""
    import fcntl
    import hashlib
    import json

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's directory, common to all workers
    shared = base / "shared_runs"
    shared.mkdir(exist_ok=True)
    key = json.dumps([procedure, overrides], sort_keys=True)
    tag = f"{procedure}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    with open(shared / f"{tag}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = shared / f"{tag}.path"
        if made.exists():
            return Path(made.read_text())
        path = make_run(procedure, shared / tag, **overrides)
        made.write_text(str(path))
        return path


def config_file(tmp_dir: Path, base: str = "sim", preset: str | None = None, **simulation) -> Path:
    """A copy of a shipped config with another device preset and/or simulation settings."""
    text = resolve_config_path(base).read_text()
    if preset is not None:
        text = text.replace("preset: red_cspbi3", f"preset: {preset}")
        text = text.replace("sample: sim-red-CsPbI3", f"sample: sim-{preset}")
    for key, value in simulation.items():
        lines = [
            f"  {key}: {value}" if line.strip().startswith(f"{key}:") else line
            for line in text.splitlines()
        ]
        text = "\n".join(lines) + "\n"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / f"{base}_{preset or 'default'}_{len(list(tmp_dir.glob('*.yaml')))}.yaml"
    path.write_text(text)
    return path


def make_run(
    procedure: str, output_dir: Path, *, config: str | Path | None = None, **overrides
) -> Path:
    """Run ``procedure`` on the simulated bench; return the run file's path."""
    from labrig import registry
    from labrig.parameters import parse_settings
    from labrig.runner import run_procedure

    base, settings = QUICK[procedure]
    settings = {**settings, **overrides}
    cfg = load_config(config or base)
    cls = registry.measurement(procedure).procedure_class()
    proc = cls()
    proc.set_parameters(parse_settings(cls, [f"{k}={v}" for k, v in settings.items()]))
    result = run_procedure(proc, cfg, output_dir=output_dir, progress=False)
    assert result.status == "finished", (procedure, result.reason)
    return result.path


def start_slow_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """`labrig run jvl` in another process on the simulated bench at real instrument
    timing (clock_speed 1, ~4 s); returns the process and its run file once it exists."""
    cfg = config_file(tmp_path / "cfg", clock_speed=1)
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "labrig", "run", "jvl", "--config", str(cfg), "-o", str(out),
            "--set", "spectra=none", "--set", "step_voltage=0.4", "--set", "dark_readings=3",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = list(out.glob("*.h5")) if out.exists() else []
        if files:
            return proc, files[0]
        if proc.poll() is not None:
            pytest.fail(f"run ended before writing a file: {proc.stdout.read().decode()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no run file appeared")
