"""Simulated benches with a substrate on a switch, for the switch tests."""

from __future__ import annotations

from typing import Any

from labrig.config import BenchConfig, load_config, parse_config

#: channel of pixel k (1-based) on each switch driver
CHANNEL = {"keithley7001": "1!{k}", "relay_board": "{k}"}


def switch_config_data(
    driver: str = "keithley7001",
    pixels: int = 4,
    *,
    spread: dict[str, Any] | None = None,
    defects: dict[str, str] | None = None,
    faults: list[dict[str, Any]] | None = None,
    channels: int = 8,
    seed: int = 3,
) -> dict[str, Any]:
    """The shipped sim bench's SMU and photometer plus a switch and a substrate."""
    base = load_config("sim").model_dump(mode="json", exclude_none=True)
    base["instruments"] = {
        "smu": base["instruments"]["smu"],
        "photometer": base["instruments"]["photometer"],
        "switch": {"driver": driver, "simulated": True, "channels": channels},
    }
    base["substrate"] = {
        "pixels": {
            chr(64 + k): {"channel": CHANNEL[driver].format(k=k), "area_cm2": 0.04}
            for k in range(1, pixels + 1)
        }
    }
    sim = base.setdefault("simulation", {})
    sim["seed"] = seed
    sim["spread"] = spread or {}
    sim["defects"] = defects or {}
    sim["faults"] = {"switch": faults} if faults else {}
    return base


def switch_config(driver: str = "keithley7001", pixels: int = 4, **kw: Any) -> BenchConfig:
    return parse_config(switch_config_data(driver, pixels, **kw))
