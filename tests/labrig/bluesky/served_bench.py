"""A simulated bench served by ``labrig sim serve`` in its own process, and a real-bench
config (``simulated: false``) pointing at it: what a RunEngine or an RE Manager in
another process drives, as at a real bench."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from labrig.config import shipped_config_dir
from labrig.simulators.served import Served, sim_serve

ROLES = ("smu", "photometer")


@contextmanager
def served_bench(tmp: Path, clock_speed: float = 1.0) -> Iterator[tuple[Served, Path]]:
    """Serve the sim bench's 2400 and 6485; yields what is served and a config on it."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {r: data["instruments"][r] for r in ROLES}
    data["simulation"]["clock_speed"] = clock_speed
    serve = tmp / "serve.yaml"
    serve.write_text(yaml.safe_dump(data))
    with sim_serve(serve, ROLES) as served:
        data["instruments"] = {
            "smu": {"driver": "keithley2400", "resource": served.resources["smu"], "timeout_s": 5},
            "photometer": {"driver": "keithley6485", "resource": served.resources["photometer"]},
        }
        config = tmp / "bench.yaml"
        config.write_text(yaml.safe_dump(data))
        yield served, config
