"""Simulated instruments served in their own process, as a benchmark's bench.

``labrig sim serve`` runs the simulated 2400 and 6485 (instrument timing off,
``clock_speed: .inf``) so what a benchmark measures is the client's software; both
labrig and any peer client reach them at the ``TCPIP::…::SOCKET`` resources it prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from labrig.config import shipped_config_dir
from labrig.simulators.served import sim_serve

ROLES = ("smu", "photometer")


@contextmanager
def served_instruments(tmp: Path) -> Iterator[dict[str, str]]:
    """Serve the 2400 and 6485 for the ``with`` block; yields role -> VISA resource."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {r: data["instruments"][r] for r in ROLES}
    data["simulation"]["clock_speed"] = float("inf")
    config = tmp / "serve.yaml"
    config.write_text(yaml.safe_dump(data))
    with sim_serve(config, ROLES) as served:
        yield served.resources


def bench_config(tmp: Path, resources: dict[str, str]) -> Path:
    """A real-bench config (``simulated: false``) pointing labrig at the served instruments."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"] = {
        "smu": {"driver": "keithley2400", "resource": resources["smu"]},
        "photometer": {"driver": "keithley6485", "resource": resources["photometer"]},
    }
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
