"""A simulated bench served by ``labrig sim serve`` in its own process, and a real-bench
config (``simulated: false``) pointing at it: what a RunEngine or an RE Manager in
another process drives, as at a real bench."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from labrig.config import shipped_config_dir
from labrig.simulators.served import Served, sim_serve

ROLES = ("smu", "photometer")


@contextmanager
def served_bench(
    tmp: Path,
    clock_speed: float = 1.0,
    roles: tuple[str, ...] = ROLES,
    name: str = "bench",
    device_model: dict | None = None,
) -> Iterator[tuple[Served, Path]]:
    """Serve the sim bench's 2400 and 6485 (and with ``"lifetime"`` in ``roles`` a
    two-channel lifetime rig, a box of its own: its own ``labrig sim serve``); yields
    what is served and a config on it (``tmp/NAME.yaml``).  ``device_model`` overrides
    parameters of the shipped device's model."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    shipped = data["instruments"]
    data["simulation"]["clock_speed"] = clock_speed
    if device_model:
        data["device"]["model"] = device_model
    with ExitStack() as stack:
        served = Served(pid=0)
        for part in ([r for r in roles if r != "lifetime"], [r for r in roles if r == "lifetime"]):
            if not part:
                continue
            data["instruments"] = {
                r: {**shipped[r], "channels": 2} if r == "lifetime" else shipped[r] for r in part
            }
            serve = tmp / f"{name}-serve-{part[0]}.yaml"
            serve.write_text(yaml.safe_dump(data))
            one = stack.enter_context(sim_serve(serve, part))
            served.pid = served.pid or one.pid
            served.resources.update(one.resources)
            served.terminations.update(one.terminations)
            served.clock = one.clock
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
