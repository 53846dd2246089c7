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
def served_bench(
    tmp: Path, clock_speed: float = 1.0, roles: tuple[str, ...] = ROLES, name: str = "bench"
) -> Iterator[tuple[Served, Path]]:
    """Serve the sim bench's ``roles`` (the 2400 and 6485; the lifetime rig with two
    channels); yields what is served and a config on it (``tmp/NAME.yaml``)."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {r: data["instruments"][r] for r in roles}
    if "lifetime" in roles:
        data["instruments"]["lifetime"]["channels"] = 2
    data["simulation"]["clock_speed"] = clock_speed
    serve = tmp / f"{name}-serve.yaml"
    serve.write_text(yaml.safe_dump(data))
    with sim_serve(serve, roles) as served:
        real = {
            "smu": {
                "driver": "keithley2400",
                "resource": served.resources.get("smu"),
                "timeout_s": 5,
            },
            "photometer": {
                "driver": "keithley6485",
                "resource": served.resources.get("photometer"),
            },
            "lifetime": {
                "driver": "lifetime_rig",
                "resource": served.resources.get("lifetime"),
                "channels": 2,
            },
        }
        data["instruments"] = {r: real[r] for r in roles}
        config = tmp / f"{name}.yaml"
        config.write_text(yaml.safe_dump(data))
        yield served, config
