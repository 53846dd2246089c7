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


# --------------------------------------------------------------------------- forgiving CLI
def _invoke(*args: str):
    from click.testing import CliRunner

    from labrig.cli import main

    return CliRunner().invoke(main, list(args), prog_name="labrig")


def test_set_accepts_values_with_units_converted_by_pint():
    from labrig import registry
    from labrig.errors import ParameterError
    from labrig.parameters import parse_settings

    jvl = registry.measurement("jvl").procedure_class()
    values = parse_settings(
        jvl, ["stop_voltage=7 V", "compliance_current=5 mA", "source_delay=20 ms"]
    )
    assert values["stop_voltage"] == 7.0
    assert values["compliance_current"] == pytest.approx(0.005)
    assert values["source_delay"] == pytest.approx(0.02)
    assert parse_settings(jvl, ["stop_voltage=7000 mV"])["stop_voltage"] == pytest.approx(7.0)
    for setting, message in (
        ("stop_voltage=3 s", "--set stop_voltage=3 s: s cannot be converted to V; allowed: "),
        ("stop_voltage=7 kV", "--set stop_voltage=7 kV: above the maximum; allowed: "),
        ("stop_voltage=seven", "--set stop_voltage=seven: not a number; allowed: "),
    ):
        with pytest.raises(ParameterError) as err:
            parse_settings(jvl, [setting])
        assert str(err.value).startswith(message), str(err.value)


def test_did_you_mean_for_procedure_parameter_and_config(tmp_path):
    result = _invoke("run", "jlv", "--simulate", "-o", str(tmp_path))
    assert (result.exit_code, result.output) == (
        2,
        "labrig: error: unknown procedure 'jlv' (did you mean 'jvl'?); allowed: jvl, spectrum, "
        "pulsed-el, lifetime, solar-jv, sclc\n",
    )
    result = _invoke("run", "jvl", "--simulate", "-o", str(tmp_path), "--set", "stop_votlage=3")
    assert result.exit_code == 2
    assert result.output.startswith(
        "labrig: error: --set stop_votlage: no such parameter (did you mean 'stop_voltage'?); "
        "allowed: start_voltage, stop_voltage,"
    )
    result = _invoke("run", "jvl", "--config", "sin", "-o", str(tmp_path))
    assert (result.exit_code, result.output) == (
        2,
        "labrig: error: config 'sin': no such file or shipped config (did you mean 'sim'?); "
        "shipped: bench.example, sclc_sim, sim, solar_sim, or give a path to a YAML file\n",
    )
    result = _invoke("procedures", "Pulsed_EL")
    assert result.exit_code == 2 and "(did you mean 'pulsed-el'?)" in result.output
    assert list(tmp_path.iterdir()) == []


def test_procedure_names_are_case_insensitive():
    result = _invoke("procedures", "JVL")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("jvl: ")


def test_a_procedure_for_another_device_kind_is_refused_before_anything_opens(tmp_path):
    result = _invoke("run", "solar-jv", "--config", "sim", "-o", str(tmp_path))
    assert (result.exit_code, result.output) == (
        2,
        "labrig: error: device.kind: procedure solar-jv needs a device of kind solar, but "
        "config 'simulated bench' has kind led (sim-red-CsPbI3); use a config whose "
        "device.kind is solar\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_help_lists_whole_summaries_and_run_help_lists_procedures():
    top = _invoke("--help")
    commands = top.output.split("Commands:")[1]
    assert top.exit_code == 0 and "..." not in commands
    assert "  export      Write a run's data, spectra and figures as CSV files.\n" in top.output
    run_help = _invoke("run", "--help")
    assert "Procedures:" in run_help.output
    for name in ("jvl", "spectrum", "pulsed-el", "lifetime", "solar-jv", "sclc"):
        assert f"\n  {name} " in run_help.output, name


def test_check_without_config_says_it_checked_the_simulated_bench():
    result = _invoke("check")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "no --config given: checking the built-in simulated bench (sim)"
    assert [line.split()[:2] for line in lines[1:5]] == [
        ["smu", "ok"],
        ["photometer", "ok"],
        ["spectrometer", "ok"],
        ["lifetime", "ok"],
    ]
    assert "KEITHLEY INSTRUMENTS INC. 2400, s/n " in lines[1]
    assert lines[-1] == "all 4 instruments answered; no output was enabled"


def test_check_reports_every_role_in_one_line_and_goes_on_after_a_failure(tmp_path):
    """The SMU is the simulated one; the photometer and the rig answer nowhere."""
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["photometer"] = {
        "driver": "keithley6485",
        "resource": "TCPIP::127.0.0.1::1::SOCKET",
        "timeout_s": 1,
    }
    data["instruments"]["lifetime"] = {
        "driver": "lifetime_rig",
        "resource": "socket://127.0.0.1:1",
        "timeout_s": 1,
    }
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(data))
    result = _invoke("check", "--config", str(path))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 5  # one per role, then the verdict
    assert lines[0].startswith("smu          ok     TCPIP::127.0.0.1::")
    assert lines[1].startswith(
        "photometer   FAILED TCPIP::127.0.0.1::1::SOCKET: no instrument answers at "
    )
    assert lines[1].endswith("; check that it is switched on and connected, and its resource")
    assert lines[2].startswith("spectrometer ok     sim:")
    assert lines[3].startswith("lifetime     FAILED socket://127.0.0.1:1: ")
    assert lines[4] == "2 of 4 instruments failed; no output was enabled"
    assert "Error" not in result.output  # no Python class names


@pytest.mark.timeout(300)
def test_pulsed_headline_says_yes_and_no_progress_is_silent(tmp_path):
    result = labrig(
        "run", "pulsed-el", "--simulate", "--no-progress", "-o", str(tmp_path), timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "  el_monotonic_with_width: yes\n" in result.stdout


def test_click_usage_errors_are_one_line_with_exit_2():
    cases = {
        ("export", "x.h5", "--format", "xls"): "labrig: error: labrig export: Invalid value "
        "for '--format': 'xls' is not 'csv'. (see labrig export --help)\n",
        ("run",): "labrig: error: labrig run: Missing argument 'PROCEDURE'. "
        "(see labrig run --help)\n",
        ("nonsense",): "labrig: error: labrig: No such command 'nonsense'. (see labrig --help)\n",
    }
    for args, message in cases.items():
        result = _invoke(*args)
        assert (result.exit_code, result.output) == (2, message), args


def test_a_failed_run_tells_what_happened_and_what_to_do_without_class_names(tmp_path):
    """The 6485 garbles its replies mid-run: the terminal gets the instrument's message and
    what to do, no Python class name; the file keeps the full reason with the class."""
    from labrig.store import read_run

    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["simulation"]["faults"] = {"photometer": [{"kind": "garbled", "after": 30}]}
    config = tmp_path / "garbled.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "runs"
    args = ["--config", str(config), "-o", str(out), "--no-progress", "--set", "spectra=none"]
    result = labrig("run", "jvl", *args)
    assert result.returncode == 1, result.stdout + result.stderr
    path = Path(result.stdout.splitlines()[0].removeprefix("failed: "))
    reason = read_run(path).abort_reason
    told = result.stdout.splitlines()[1]
    assert reason.startswith("GarbledReplyError: ")  # the file: the full detail
    assert told == (
        f"reason: {reason.removeprefix('GarbledReplyError: ')}; check the baud rate and the "
        "line terminator set on the instrument"
    )
    assert "Error" not in told and "Traceback" not in result.stderr
