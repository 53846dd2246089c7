"""The command line: help that teaches, and bad input as one line with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labrig.config import shipped_config_dir


def labrig(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labrig", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_help_teaches_at_every_level():
    top = labrig("--help")
    assert top.returncode == 0
    for command in ("run", "procedures", "check", "inspect", "sim"):
        assert command in top.stdout
    run_help = labrig("run", "--help")
    assert (
        run_help.returncode == 0 and "--set" in run_help.stdout and "Exit status" in run_help.stdout
    )
    assert labrig("sim", "serve", "--help").returncode == 0


def test_version():
    result = labrig("--version")
    assert result.returncode == 0 and "labrig" in result.stdout


def test_unknown_procedure():
    assert_user_error(labrig("run", "nonsense", "--simulate"), "unknown procedure 'nonsense'")


def test_run_without_config_or_simulate():
    assert_user_error(labrig("run", "jvl"), "--simulate")


def test_missing_config_file(tmp_path):
    assert_user_error(
        labrig("run", "jvl", "--config", str(tmp_path / "none.yaml")), "none.yaml: file not found"
    )


def test_yaml_syntax_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("instruments: [\n")
    assert_user_error(labrig("run", "jvl", "--config", str(bad)), "YAML syntax error at line")


def test_unknown_key_in_config(tmp_path):
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["limits"]["max_curent_a"] = 0.1
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    assert_user_error(
        labrig("run", "jvl", "--config", str(path)), "limits.max_curent_a: unknown key"
    )


def test_wrong_type_in_config(tmp_path):
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["smu"]["timeout_s"] = "soon"
    path = tmp_path / "type.yaml"
    path.write_text(yaml.safe_dump(data))
    assert_user_error(labrig("check", "--config", str(path)), "instruments.smu.timeout_s")


def test_simulate_refuses_a_real_bench_config():
    path = shipped_config_dir() / "bench.example.yaml"
    assert_user_error(labrig("run", "jvl", "--simulate", "--config", str(path)), "real instruments")


def test_procedures_lists_and_describes():
    listing = labrig("procedures")
    assert listing.returncode == 0
    assert "jvl" in listing.stdout
    detail = labrig("procedures", "jvl")
    assert detail.returncode == 0 and "allowed" in detail.stdout
    assert_user_error(labrig("procedures", "nope"), "unknown procedure 'nope'")


def test_set_out_of_range_and_unknown(tmp_path):
    assert_user_error(
        labrig("run", "jvl", "--simulate", "-o", str(tmp_path), "--set", "smu_nplc=1000"),
        "--set smu_nplc=1000",
        "allowed",
    )
    assert_user_error(
        labrig("run", "jvl", "--simulate", "-o", str(tmp_path), "--set", "bogus=1"),
        "--set bogus: no such parameter",
    )
    assert not any(tmp_path.iterdir()), "bad input must write nothing"


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_user_error(labrig("run", "jvl", "--simulate", "-o", str(blocker / "runs")), str(blocker))


@pytest.mark.timeout(600)
def test_run_jvl_simulated_end_to_end(tmp_path):
    """The README's main job: a real J–V–L run through the simulated bench and the store."""
    result = labrig("run", "jvl", "--simulate", "-o", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    files = list(tmp_path.glob("*.h5"))
    assert len(files) == 1
    assert str(files[0]) in result.stdout
    inspect = labrig("inspect", str(files[0]))
    assert inspect.returncode == 0 and "finished" in inspect.stdout


def test_inspect_rejects_a_non_run_file(tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("hello")
    assert_user_error(labrig("inspect", str(other)), "other.txt")


def test_calibrate_luminance_writes_the_factor(tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text((shipped_config_dir() / "sim.yaml").read_text())
    result = labrig("calibrate", "luminance", "-c", str(config), "--current", "1", "--meter", "500")
    assert result.returncode == 0, result.stderr
    assert "luminance correction 1 ->" in result.stdout
    from labrig.config import load_config

    cfg = load_config(config)
    assert cfg.calibration.luminance_correction != 1.0
    assert cfg.calibration.luminance_correction_date is not None
    # the after value equals the meter reading the factor was computed from
    after = float(result.stdout.split("after ")[1].split(" cd")[0])
    assert after == pytest.approx(500, rel=0.02)
