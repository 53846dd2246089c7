"""The lifetime rig served by ``labrig sim serve`` in its own process, driven by a real
``labrig run lifetime`` in another, as at a bench: the served rig's clock runs by itself
(real time x clock_speed), so time advances, devices age, T50 is reached where the device
model says, ``max_duration`` ends a channel, and every output ends off -- asked of the
rig itself."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from labrig.config import load_config, shipped_config_dir
from labrig.simulators.served import sim_serve
from labrig.store import read_run

# process limits live next to this file; importable in any pytest import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))
from limits import file_size_limit  # noqa: E402

#: 1 h of rig time a real second
CLOCK_SPEED = 3600.0
#: one exponential decay (tau 12 h at 3.05 mA/cm²): L/L0 after t = 0 does not depend on
#: how long the channel ran before its first sample -- which, at 3600x, is a minute of rig
#: time per 17 ms of the client's latency
DEGRADATION = {"fraction1": 1.0, "tau1_h": 12.0}
#: channel 1 at 20 mA/cm² reaches T50 after ~0.34 h; channel 2 at 2 mA/cm² would need ~17 h
LEVELS = "20,2"
MAX_DURATION_H = 1.5
#: T50 from samples ~0.02 s apart (72 s of rig time, ~6 % of T50) against the model's
T50_TOLERANCE = 0.03


def _serve_config(tmp_path: Path) -> Path:
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {"lifetime": {**data["instruments"]["lifetime"], "channels": 2}}
    data["simulation"]["clock_speed"] = CLOCK_SPEED
    data["device"]["model"] = {"degradation": DEGRADATION}
    path = tmp_path / "served.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _client_config(tmp_path: Path, url: str) -> Path:
    """A real-bench config: the rig at its URL, nothing simulated in this process."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {
        "lifetime": {"driver": "lifetime_rig", "resource": url, "channels": 2, "timeout_s": 5}
    }
    data.pop("simulation")
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _ask(url: str, *commands: str) -> list[str]:
    """Ask the served rig directly (a third party on its socket)."""
    host, port = url.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        stream = sock.makefile("rw", newline="\n")
        replies = []
        for command in commands:
            stream.write(command + "\n")
            stream.flush()
            replies.append(stream.readline().strip())
        return replies


@pytest.fixture
def served_rig(tmp_path: Path):
    config = _serve_config(tmp_path)
    with sim_serve(config, roles=("lifetime",)) as served:
        yield served.resources["lifetime"], served.clock, config


def test_served_rig_clock_runs_without_a_client_sleeping_on_it(served_rig):
    url, clock, _ = served_rig
    assert clock == f"clock: real time x {CLOCK_SPEED:g}"
    outer0 = time.monotonic()
    first = float(_ask(url, "SYST:TIME?")[0])
    inner0 = time.monotonic()
    time.sleep(0.2)  # no client talks to the rig meanwhile
    inner1 = time.monotonic()
    second = float(_ask(url, "SYST:TIME?")[0])
    outer1 = time.monotonic()
    # real time x 3600 between the two answers (stamped to the µs)
    assert (inner1 - inner0) * CLOCK_SPEED <= second - first + 1e-5
    assert second - first <= (outer1 - outer0) * CLOCK_SPEED + 1e-5


def test_lifetime_against_a_served_rig_reaches_the_models_t50(tmp_path, served_rig):
    from labrig.simulators.lifetime_rig import SimulatedLifetimeRig

    url, _, served_config = served_rig
    out = tmp_path / "runs"
    settings = {
        "channels": "1,2",
        "drive": "current density",
        "levels": LEVELS,
        "settle_time": 0.0,
        "first_interval": 0.005,
        "max_interval": 0.02,
        "max_duration": MAX_DURATION_H,
    }
    args = [sys.executable, "-m", "labrig", "run", "lifetime", "--no-progress"]
    args += ["--config", str(_client_config(tmp_path, url)), "-o", str(out)]
    for name, value in settings.items():
        args += ["--set", f"{name}={value}"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]

    data = read_run(next(out.glob("*.h5")))
    assert data.status == "finished" and not data.simulated
    # the same units the server built from the same seed: the ground truth
    served = load_config(served_config)
    truth_rig = SimulatedLifetimeRig(
        served.device.model, served.device.active_area_cm2, channels=2, seed=served.simulation.seed
    )
    area = served.device.active_area_cm2
    t1 = data.columns["channel_01"]["time"][0]
    assert np.all(np.diff(t1) > 0) and t1[-1] > 1000.0  # rig time advances
    a1 = data.analysis["channel_01"]
    assert a1["end_reason"][0].startswith("T50 reached"), a1["end_reason"]
    j1 = float(data.columns["channel_01"]["current_set"][0][0]) / area
    truth = truth_rig.device(1).t_fraction_s(0.5, j1)
    assert a1["T50"][0] * 3600 == pytest.approx(truth, rel=T50_TOLERANCE)
    # channel 2 ages too, more slowly, until the maximum duration ends it
    a2 = data.analysis["channel_02"]
    assert a2["end_reason"][0] == f"maximum duration {MAX_DURATION_H:g} h reached"
    t2 = data.columns["channel_02"]["time"][0]
    rel2 = data.columns["channel_02"]["relative_luminance"][0]
    j2 = float(data.columns["channel_02"]["current_set"][0][0]) / area
    expected = truth_rig.device(2).relative_efficiency_after(t2[-1], j2)
    assert rel2[-1] == pytest.approx(expected, abs=0.01)
    assert MAX_DURATION_H * 3600 <= t2[-1] and rel2[-1] < 0.97
    # the rig itself says both outputs are off
    assert _ask(url, "CH1:OUTP?", "CH2:OUTP?") == ["OFF", "OFF"]


def test_a_full_disk_mid_run_ends_failed_with_every_rig_output_off(tmp_path, served_rig):
    """The fault-matrix row for a full disk against a served instrument: the run file
    cannot grow past ``ulimit -f`` (SIGXFSZ ignored, so writes fail as on a full disk),
    the run stops as failed with the reason, exit 1, every row it kept is readable, and
    the rig itself -- asked over its own socket -- reports both outputs off."""
    from labrig.store import load_run

    url, _, _ = served_rig
    out = tmp_path / "runs"
    settings = {
        "channels": "1,2",
        "drive": "current density",
        "levels": "0.2,0.2",  # T50 hundreds of rig hours away
        "settle_time": 0.0,
        "first_interval": 0.001,
        "max_interval": 0.001,  # rig seconds: as fast as the chain samples
        "max_duration": 100.0,  # never reached: only the disk ends this run
    }
    args = [sys.executable, "-m", "labrig", "run", "lifetime", "--no-progress"]
    args += ["--config", str(_client_config(tmp_path, url)), "-o", str(out)]
    for name, value in settings.items():
        args += ["--set", f"{name}={value}"]
    # just over the 2 MiB a run needs writable to start (labrig.store.writer.MIN_FREE): the
    # run stops at the 1 MiB reserve after ~1 MB of samples, which is ~15 s of this chain
    run = subprocess.run(
        args, capture_output=True, text=True, timeout=240, preexec_fn=file_size_limit(2_100_000)
    )
    assert run.returncode == 1, run.stdout + run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
    reason = run.stdout.splitlines()[1].removeprefix("reason: ")
    assert "file-size limit (ulimit -f)" in reason
    loaded = load_run(next(out.glob("*.h5")))
    assert loaded.run.status == "failed"
    for channel in ("channel_01", "channel_02"):
        columns = loaded.run.columns[channel]
        assert len({len(c[0]) for c in columns.values()}) == 1
        assert len(columns["time"][0]) > 100 and np.all(np.diff(columns["time"][0]) > 0)
    assert _ask(url, "CH1:OUTP?", "CH2:OUTP?") == ["OFF", "OFF"]
