"""Shared fixtures: the shipped configs, and a writable output directory per test."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest


@pytest.fixture
def sim_config():
    from labrig.config import load_config

    return load_config("sim")


# ---------------------------------------------------------------- a substrate on a switch
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
    from labrig.config import load_config

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


def switch_config(driver: str = "keithley7001", pixels: int = 4, **kw: Any) -> Any:
    from labrig.config import parse_config

    return parse_config(switch_config_data(driver, pixels, **kw))


@pytest.fixture(scope="session")
def switch_configs():
    """Simulated benches with a substrate on a switch (``switch_config(driver, ...)``)."""
    from labrig.config import parse_config

    return SimpleNamespace(
        switch_config=switch_config,
        switch_config_data=switch_config_data,
        parse_config=parse_config,
    )
