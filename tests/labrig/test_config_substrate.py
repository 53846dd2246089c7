"""Substrate layouts in the config: every bad layout is refused before anything opens,
one readable line per problem naming the key and what is allowed; `labrig check` exits 2
with no traceback and starts no simulator."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from labrig.config import parse_config
from labrig.errors import ConfigError


def _error(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value).splitlines()


def test_a_valid_layout_loads_with_its_channels_and_areas(switch_configs):
    cfg = switch_configs.switch_config("relay_board", pixels=6)
    assert cfg.substrate is not None
    assert [p.channel for p in cfg.substrate.pixels.values()] == ["1", "2", "3", "4", "5", "6"]
    assert cfg.substrate.pixels["F"].area_cm2 == 0.04


def test_two_pixels_on_one_channel(switch_configs):
    data = switch_configs.switch_config_data()
    data["substrate"]["pixels"]["B"]["channel"] = "1!1"
    assert _error(data) == [
        "substrate: pixels A and B are both on channel '1!1'; each pixel needs its own channel"
    ]


def test_a_channel_the_switch_does_not_have(switch_configs):
    data = switch_configs.switch_config_data(channels=4)
    data["substrate"]["pixels"]["D"]["channel"] = "1!9"
    assert _error(data) == [
        "substrate.pixels.D.channel: the keithley7001 has no channel '1!9'; allowed: 1!1 .. 2!4"
    ]


def test_a_missing_area(switch_configs):
    data = switch_configs.switch_config_data()
    del data["substrate"]["pixels"]["C"]["area_cm2"]
    assert _error(data) == ["substrate.pixels.C.area_cm2: required key is missing"]


def test_several_problems_one_line_each(switch_configs):
    data = switch_configs.switch_config_data("relay_board", channels=4)
    data["substrate"]["pixels"]["D"]["channel"] = "9"
    data["simulation"]["defects"] = {"Z": "short"}
    data["simulation"]["spread"] = {"shunt": {"mean": 1.0, "sd": 0.1}}
    lines = _error(data)
    assert (
        lines[0]
        == "substrate.pixels.D.channel: the relay_board has no channel '9'; allowed: 1 .. 4"
    )
    assert lines[1] == "simulation.defects.Z: no such pixel in the substrate; allowed: A, B, C, D"
    assert lines[2].startswith(
        "simulation.spread.shunt: not a parameter of the device model; allowed: "
    )
    assert "eqe_max" in lines[2] and "j0_a_cm2" in lines[2]
    assert len(lines) == 3


def test_a_substrate_without_a_switch(switch_configs):
    data = switch_configs.switch_config_data()
    del data["instruments"]["switch"]
    assert _error(data) == ["substrate: needs a switch instrument (instruments.switch)"]


def test_check_refuses_a_bad_layout_with_exit_2_and_one_line(tmp_path, switch_configs):
    data = switch_configs.switch_config_data()
    data["substrate"]["pixels"]["B"]["channel"] = "1!1"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "labrig", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "pixels A and B are both on channel '1!1'" in result.stderr
