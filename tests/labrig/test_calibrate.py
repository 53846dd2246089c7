"""``labrig calibrate luminance``: the YAML edit, and the whole calibration on the
simulated bench with a 'meter' that reads the simulator's true luminance."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest

from labrig.calibrate import (
    calibrate_luminance,
    calibration_target,
    updated_config_text,
    write_luminance_correction,
)
from labrig.config import load_config, resolve_config_path
from labrig.errors import ConfigError, ParameterError, SafetyLimitError, UserInputError

MISSING = [
    m
    for m in ("labrig.simulators.keithley6485", "labrig.simulators.keithley2400")
    if importlib.util.find_spec(m) is None
]
needs_bench = pytest.mark.skipif(bool(MISSING), reason=f"missing {', '.join(MISSING)}")
DAY = dt.date(2026, 11, 21)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(resolve_config_path("sim").read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_update_keeps_every_other_line_and_records_the_previous_factor(config_file):
    before = config_file.read_text()
    text = updated_config_text(before, 1.2345678, DAY)
    added = [
        "  luminance_correction: 1.23457\n",
        "  luminance_correction_date: 2026-11-21\n",
        "  previous_luminance_correction: 1.0\n",
    ]
    lines = before.splitlines(keepends=True)
    at = lines.index("  luminance_correction: 1.0\n")
    # byte for byte the same file but for the calibration keys (comments, padding, order)
    assert text == "".join(lines[:at] + added + lines[at + 1 :])
    again = updated_config_text(text, 0.9, dt.date(2027, 1, 2))
    assert again == "".join(
        lines[:at]
        + [
            "  luminance_correction: 0.9\n",
            "  luminance_correction_date: 2027-01-02\n",
            "  previous_luminance_correction: 1.23457\n",
            "  previous_luminance_correction_date: 2026-11-21\n",
        ]
        + lines[at + 1 :]
    )


def test_update_keeps_an_inline_comment_and_a_flow_style_section():
    text = "name: x  # mine\ncalibration: {photodiode: {collection_factor: 0.1}}  # cal\n"
    new = updated_config_text(text, 1.5, DAY)
    assert new.startswith("name: x  # mine\n")
    assert "# cal" in new
    import yaml

    assert yaml.safe_load(new)["calibration"] == {
        "photodiode": {"collection_factor": 0.1},
        "luminance_correction": 1.5,
        "luminance_correction_date": DAY,
        "previous_luminance_correction": 1.0,
    }


def test_write_to_a_new_file_leaves_the_source_alone(config_file, tmp_path):
    source = config_file.read_bytes()
    target = tmp_path / "calibrated.yaml"
    write_luminance_correction(source.decode(), target, 1.1, DAY, source_path=str(config_file))
    assert config_file.read_bytes() == source
    cal = load_config(target).calibration
    assert (cal.luminance_correction, cal.luminance_correction_date) == (1.1, DAY)
    assert cal.previous_luminance_correction == 1.0


def test_write_refuses_a_shipped_config_and_a_config_without_calibration(tmp_path):
    shipped = resolve_config_path("sim")
    before = shipped.read_bytes()
    with pytest.raises(UserInputError, match="shipped configs are read-only"):
        write_luminance_correction(before.decode(), shipped, 1.1, DAY)
    assert shipped.read_bytes() == before
    path = tmp_path / "flow.yaml"
    with pytest.raises(ConfigError, match="no 'calibration' mapping"):
        write_luminance_correction("name: x\n", path, 1.1, DAY)
    assert not path.exists()


def test_calibration_target(config_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the user's own config: in place, nothing to say
    assert calibration_target(config_file, None) == (config_file, None)
    # a shipped one: a copy in the working directory, said in one line
    target, note = calibration_target(resolve_config_path("sim"), None)
    assert target == tmp_path / "sim.yaml"
    assert note == (
        f"shipped config 'sim' is read-only: the calibrated copy goes to {target} "
        f"(use it with --config {target})"
    )
    target.write_text("earlier copy")
    with pytest.raises(UserInputError) as err:
        calibration_target(resolve_config_path("sim"), None)
    assert str(err.value) == (
        f"calibrate: {target} already exists; calibrate it with --config {target}, "
        "or name a new file with --output FILE"
    )
    named = tmp_path / "named.yaml"
    assert calibration_target(resolve_config_path("sim"), named) == (named, None)
    with pytest.raises(UserInputError, match="shipped configs, which are read-only"):
        calibration_target(config_file, resolve_config_path("solar_sim"))
    with pytest.raises(UserInputError, match="not a file in an existing directory"):
        calibration_target(config_file, tmp_path / "no" / "such.yaml")


@needs_bench
def test_calibration_on_the_simulated_bench(config_file):
    from labrig.bench import Bench

    config = load_config(config_file)
    seen = {}

    with Bench(config, ["smu", "photometer", "spectrometer"]) as bench:

        def meter(prompt: str) -> float:
            seen["prompt"] = prompt
            # an LS-160 that reads 8 % above the model's true luminance now
            seen["truth"] = bench.simulation.physics.truth()["luminance_cd_m2"]
            return 1.08 * seen["truth"]

        result = calibrate_luminance(bench, 2e-4, meter, config_file, today=DAY)
        assert not bench.smu.output_enabled
    assert "0.2 mA" in seen["prompt"] and "cd/m²" in seen["prompt"]
    assert result.spectrum_used == "measured"
    assert result.previous_factor == 1.0
    # labrig's own luminance is within 1 % of the truth, so the factor is ~1.08
    assert result.before_cd_m2 == pytest.approx(seen["truth"], rel=0.01)
    assert result.factor == pytest.approx(1.08, rel=0.01)
    assert result.after_cd_m2 == pytest.approx(result.meter_cd_m2, rel=0.005)
    cfg = load_config(config_file)
    assert cfg.calibration.luminance_correction == pytest.approx(result.factor, rel=1e-5)
    assert cfg.calibration.luminance_correction_date == DAY


@needs_bench
def test_calibration_rejects_bad_current_and_bad_meter_value(config_file):
    from labrig.bench import Bench

    config = load_config(config_file)
    with Bench(config, ["smu", "photometer"]) as bench:
        with pytest.raises(SafetyLimitError, match="max_current_a"):
            calibrate_luminance(bench, 0.5, lambda p: 100.0, config_file)
        with pytest.raises(ParameterError, match="must be > 0"):
            calibrate_luminance(bench, -1e-3, lambda p: 100.0, config_file)
        with pytest.raises(ParameterError, match="meter reading"):
            calibrate_luminance(bench, 2e-4, lambda p: -3.0, config_file, settle_s=0.1)
        assert not bench.smu.output_enabled
    assert load_config(config_file).calibration.luminance_correction == 1.0


def _hashes(directory) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@needs_bench
def test_cli_calibration_never_touches_the_installed_configs(tmp_path):
    """The bug: `calibrate luminance -c sim` rewrote the shipped sim.yaml, and every later
    --simulate run reported luminance 3.7x too low.  Now the installed configs stay
    byte-identical and the calibrated copy lands in the working directory."""
    import subprocess
    import sys

    from labrig.config import shipped_config_dir

    shipped = shipped_config_dir()
    before = _hashes(shipped)
    assert "sim.yaml" in before and "devices/red_cspbi3.yaml" in before

    def calibrate(*args):
        return subprocess.run(
            [sys.executable, "-m", "labrig", "calibrate", "luminance", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )

    result = calibrate("--simulate", "--meter", "1000")
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "sim.yaml"
    assert result.stdout.splitlines()[0] == (
        f"shipped config 'sim' is read-only: the calibrated copy goes to {copy} "
        f"(use it with --config {copy})"
    )
    assert result.stdout.splitlines()[-1] == f"written to {copy}"
    cal = load_config(copy).calibration
    assert cal.previous_luminance_correction == 1.0
    assert cal.luminance_correction_date == dt.date.today()
    assert load_config("sim").calibration.luminance_correction == 1.0
    # a second calibration of the shipped bench refuses (one line) rather than overwrite
    again = calibrate("-c", "sim", "--meter", "900")
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == (
        f"labrig: error: calibrate: {copy} already exists; calibrate it with --config "
        f"{copy}, or name a new file with --output FILE\n"
    )
    # naming the shipped file itself as the output refuses too
    into = calibrate("--simulate", "--meter", "900", "--output", str(shipped / "sim.yaml"))
    assert into.returncode == 2
    assert into.stderr == (
        f"labrig: error: calibrate: {shipped / 'sim.yaml'} is one of labrig's shipped "
        "configs, which are read-only; name a file outside the installed package with "
        "--output FILE\n"
    )
    assert _hashes(shipped) == before


def test_cli_calibration_refusals_enable_nothing_and_write_nothing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from labrig.cli import main

    runner = CliRunner()
    cases = {
        (): "labrig: error: no bench config: give --config FILE, or --simulate for the "
        "built-in simulated bench\n",
        ("--simulate", "--meter", "-5"): "labrig: error: meter reading -5.0 cd/m²: must be "
        "a positive number\n",
        ("--simulate", "--current", "0"): "labrig: error: current 0.0 A: must be > 0 "
        "(forward drive)\n",
        ("--simulate", "--current", "500", "--meter", "1"): "labrig: error: current 0.5 A "
        "exceeds limits.max_current_a (0.1 A)\n",
    }
    monkeypatch.chdir(tmp_path)
    for args, message in cases.items():
        result = runner.invoke(main, ["calibrate", "luminance", *args])
        assert (result.exit_code, result.output) == (2, message), args
    assert list(tmp_path.iterdir()) == []
