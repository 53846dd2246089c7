"""Config validation: every bad input is one readable line naming the key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from labrig.config import load_config, load_responsivity, parse_config, shipped_config_dir
from labrig.errors import ConfigError


def _sim_data() -> dict:
    return yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())


def _error(data, tmp_path: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source_path="bench.yaml")
    return str(info.value)


def test_shipped_sim_config_loads_with_preset_merged():
    cfg = load_config("sim")
    assert cfg.simulated
    assert cfg.device.model is not None and cfg.device.model.peak_nm == 628
    assert cfg.device.sample == "sim-red-CsPbI3"
    assert math.isinf(cfg.simulation.clock_speed)
    assert "instruments:" in cfg.source_text


@pytest.mark.parametrize("name", ["bench.example"])
def test_example_real_bench_config_is_valid(name):
    cfg = load_config(shipped_config_dir() / f"{name}.yaml")
    assert not cfg.simulated
    assert cfg.instruments["smu"].resource == "GPIB0::24::INSTR"


def test_every_shipped_config_and_preset_is_valid():
    for path in sorted(shipped_config_dir().glob("*.yaml")):
        load_config(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninstruments:\n  smu: {driver: keithley2400\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line \d+, column \d+"):
        load_config(bad)


def test_unknown_key_is_an_error_naming_it():
    data = _sim_data()
    data["limits"]["max_voltag_v"] = 5
    msg = _error(data)
    assert "limits.max_voltag_v: unknown key" in msg


def test_wrong_type_names_key_and_value():
    data = _sim_data()
    data["limits"]["max_voltage_v"] = "lots"
    msg = _error(data)
    assert "limits.max_voltage_v" in msg and "'lots'" in msg


def test_limit_out_of_allowed_range():
    data = _sim_data()
    data["limits"]["max_voltage_v"] = 500
    msg = _error(data)
    assert "limits.max_voltage_v" in msg and "210" in msg


def test_compliance_above_max_current():
    data = _sim_data()
    data["limits"]["default_compliance_a"] = 1.0
    assert "default_compliance_a (1.0) must not exceed max_current_a" in _error(data)


def test_unknown_role_and_wrong_driver():
    data = _sim_data()
    data["instruments"]["scope"] = {"driver": "x", "simulated": True}
    assert "unknown role 'scope'" in _error(data)
    data = _sim_data()
    data["instruments"]["smu"]["driver"] = "keithley2450"
    assert "instruments.smu.driver 'keithley2450' is not allowed; allowed: keithley2400" in _error(
        data
    )


def test_real_instrument_needs_a_resource():
    data = _sim_data()
    data["instruments"]["smu"]["simulated"] = False
    assert "instruments.smu.resource is required" in _error(data)


def test_unknown_preset_lists_the_known_ones():
    data = _sim_data()
    data["device"]["preset"] = "purple"
    msg = _error(data)
    assert "device.preset: unknown preset 'purple'" in msg and "red_cspbi3" in msg


def test_missing_section():
    data = _sim_data()
    del data["limits"]
    assert "limits: required key is missing" in _error(data)


def test_each_problem_gets_its_own_line():
    data = _sim_data()
    data["limits"]["max_voltage_v"] = -1
    data["calibration"]["luminance_correction"] = 0
    lines = _error(data).splitlines()
    assert len(lines) == 2


def test_photodiode_needs_geometry_or_factor():
    data = _sim_data()
    del data["calibration"]["photodiode"]["distance_mm"]
    assert "collection_factor, or both radius_mm and distance_mm" in _error(data)


def test_responsivity_file(tmp_path):
    csv = tmp_path / "pd.csv"
    csv.write_text("wavelength_nm,a_per_w\n400,0.2\n700,0.5\n")
    data = _sim_data()
    data["calibration"]["photodiode"] = {
        "responsivity_file": str(csv),
        "collection_factor": 0.05,
    }
    cfg = parse_config(data)
    wl, r = load_responsivity(cfg.calibration.photodiode)
    assert list(wl) == [400, 700] and list(r) == [0.2, 0.5]


def test_malformed_responsivity_file(tmp_path):
    csv = tmp_path / "pd.csv"
    csv.write_text("wavelength_nm\n400\n")
    data = _sim_data()
    data["calibration"]["photodiode"] = {"responsivity_file": str(csv), "collection_factor": 0.05}
    cfg = parse_config(data)
    with pytest.raises(ConfigError, match="two numeric columns"):
        load_responsivity(cfg.calibration.photodiode)


def test_top_level_must_be_mapping():
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_config(["a", "b"])
