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


# ------------------------------------------------------------------ edges, through the CLI
SIM_TEXT = (shipped_config_dir() / "sim.yaml").read_text()


def _cli_run(tmp_path: Path, config_text: str, *args: str):
    """``labrig run jvl --config FILE`` through click's runner: (result, output dir)."""
    from click.testing import CliRunner

    from labrig.cli import main

    path = tmp_path / "bench.yaml"
    path.write_text(config_text, encoding="utf-8")
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["run", "jvl", "--config", str(path), "-o", str(out), *args])
    return result, out


def _refused(result, out: Path, *fragments: str) -> str:
    """Exit 2, one line on stderr naming the problem, no traceback, no file written."""
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("labrig: error: config ") or lines[0].startswith("labrig: error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
    return lines[0]


def test_a_second_limits_block_is_refused_not_merged(tmp_path):
    """The last block used to win: 150 V passed a 12 V config."""
    text = SIM_TEXT + "limits:\n  max_voltage_v: 150\n  max_current_a: 0.1\n"
    text += "  default_compliance_a: 0.05\n"
    result, out = _cli_run(tmp_path, text, "--set", "stop_voltage=150")
    line = _refused(result, out, "key 'limits' given twice", "each key may appear once")
    first = SIM_TEXT.splitlines().index("limits:") + 1
    assert f"(first at line {first})" in line


def test_a_key_twice_inside_a_section_is_refused(tmp_path):
    text = SIM_TEXT.replace("  max_voltage_v: 12\n", "  max_voltage_v: 12\n  max_voltage_v: 150\n")
    result, out = _cli_run(tmp_path, text)
    _refused(result, out, "key 'max_voltage_v' given twice")


def test_yaml_merge_keys_may_still_override():
    """``<<: *base`` then a key of its own is an override on purpose, not a repeat."""
    from labrig.config import parse_yaml

    merged = parse_yaml("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\n")
    assert merged["b"] == {"x": 3, "y": 2}


@pytest.mark.parametrize(
    ("value", "shown"), [("true", "(got True)"), ('"12"', "(got '12')"), ("'12'", "(got '12')")]
)
def test_bool_or_text_is_not_a_number(tmp_path, value, shown):
    text = SIM_TEXT.replace("  max_voltage_v: 12\n", f"  max_voltage_v: {value}\n")
    result, out = _cli_run(tmp_path, text)
    _refused(result, out, "limits.max_voltage_v: Input should be a valid number", shown)


def test_text_is_not_a_boolean_and_1e15_is_a_number():
    data = _sim_data()
    data["instruments"]["smu"]["simulated"] = "yes"
    assert "instruments.smu.simulated: Input should be a valid boolean" in _error(data)
    from labrig.config import parse_yaml

    assert parse_yaml("a: 1e15\nb: 1.0e-3\nc: '1e15'") == {"a": 1e15, "b": 1e-3, "c": "1e15"}


def test_a_fault_the_role_cannot_have_is_refused(tmp_path):
    text = SIM_TEXT + "  faults:\n    photometer: [{kind: short}]\n"
    result, out = _cli_run(tmp_path, text)
    _refused(
        result,
        out,
        "simulation.faults.photometer: fault kind 'short' cannot happen on the keithley6485; "
        "allowed: timeout, garbled, disconnect, overrange",
    )


def test_fault_kinds_allowed_are_exactly_what_each_simulator_injects():
    from typing import get_args

    from labrig import registry
    from labrig.config import FaultKind

    data = _sim_data()
    drivers = {role: inst["driver"] for role, inst in data["instruments"].items()}
    for role, driver in drivers.items():
        for kind in get_args(FaultKind):
            data["simulation"]["faults"] = {role: [{"kind": kind}]}
            if kind in registry.driver(driver).faults:
                parse_config(data)
            else:
                assert f"fault kind {kind!r} cannot happen on the {driver}" in _error(data)
    from labrig.simulators import keithley2400, keithley6485, lifetime_rig, spectrometer
    from labrig.simulators.physics import CoupledPhysics

    bench = CoupledPhysics(load_config("sim"))
    assert (
        keithley2400.SimulatedKeithley2400(bench).faults._supported
        == registry.driver("keithley2400").faults
    )
    assert (
        keithley6485.SimulatedKeithley6485(bench).faults._supported
        == registry.driver("keithley6485").faults
    )
    assert spectrometer.SUPPORTED_FAULTS == registry.driver("usb2000plus").faults
    assert lifetime_rig.SUPPORTED_FAULTS == registry.driver("lifetime_rig").faults


@pytest.mark.parametrize(
    ("escaped", "problem"),
    [(r"a\0b", "contains a NUL character at position 1"), (r"a\uDCFFb", "'\\udcff'")],
)
def test_a_sample_name_a_run_file_cannot_hold_is_refused(tmp_path, escaped, problem):
    text = SIM_TEXT.replace("  sample: sim-red-CsPbI3", f'  sample: "{escaped}"')
    result, out = _cli_run(tmp_path, text)
    _refused(result, out, "device.sample: ", problem, "allowed: UTF-8 text without NUL")


@pytest.mark.parametrize("option", ["--sample", "--operator"])
def test_an_unstorable_sample_or_operator_option_is_refused(tmp_path, option):
    result, out = _cli_run(tmp_path, SIM_TEXT, option, "op\x00erator")
    _refused(result, out, f"{option} 'op\\x00erator' contains a NUL character at position 2")


def test_an_undecodable_byte_in_the_sample_argument_is_refused(tmp_path):
    """A real process: a byte that is not UTF-8 reaches Python as a lone surrogate."""
    import os
    import subprocess
    import sys

    out = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "labrig", "run", "jvl", "--simulate", "-o", str(out)]
        + ["--sample", os.fsdecode(b"dev\xff1")],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "labrig: error: --sample 'dev\\udcff1' contains '\\udcff' at position 3, not valid "
        "text (a byte that is not UTF-8?); allowed: UTF-8 text without NUL"
    ]
    assert not out.exists()


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    bomb = 'x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for k in range(1, 10):
        bomb += f"x{k}: &x{k} [{', '.join([f'*x{k - 1}'] * 9)}]\n"
    # expanded it is 9**10 nodes (the error line's repr of it alone would never end);
    # the node graph is counted instead, each shared node once
    result, out = _cli_run(tmp_path, SIM_TEXT + bomb)
    _refused(result, out, "aliases expand this document past 100000 nodes (an alias bomb?)")


def test_an_alias_in_its_own_anchor_is_refused():
    from labrig.config import YAMLRefused, parse_yaml

    with pytest.raises(YAMLRefused, match="refers to its own anchor"):
        parse_yaml("a: &x {b: *x}")
