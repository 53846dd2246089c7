"""``labrig calibrate luminance``: the YAML edit, and the whole calibration on the
simulated bench with a 'meter' that reads the simulator's true luminance."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest

from labrig.calibrate import calibrate_luminance, write_luminance_correction
from labrig.config import load_config, resolve_config_path
from labrig.errors import ConfigError, ParameterError, SafetyLimitError

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


def test_write_replaces_existing_key_and_adds_date_keeping_comments(config_file):
    before = config_file.read_text()
    write_luminance_correction(config_file, 1.2345678, DAY)
    after = config_file.read_text()
    cfg = load_config(config_file)
    assert cfg.calibration.luminance_correction == pytest.approx(1.23457)
    assert cfg.calibration.luminance_correction_date == DAY
    assert "# 10 mm diameter photodiode..." in after  # comments kept
    assert after.count("luminance_correction:") == 1
    # only the calibration keys changed
    changed = set(after.splitlines()) ^ set(before.splitlines())
    assert all("luminance_correction" in line for line in changed), changed
    write_luminance_correction(config_file, 0.9, dt.date(2027, 1, 2))
    cfg = load_config(config_file)
    assert cfg.calibration.luminance_correction == 0.9
    assert cfg.calibration.luminance_correction_date == dt.date(2027, 1, 2)


def test_write_refuses_a_config_without_calibration_block(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("name: x\ncalibration: {photodiode: {collection_factor: 0.1}}\n")
    with pytest.raises(ConfigError, match="calibration"):
        write_luminance_correction(path, 1.1, DAY)
    assert path.read_text().startswith("name: x")


@needs_bench
def test_calibration_on_the_simulated_bench(config_file):
    from labrig.bench import Bench

    config = load_config(config_file)
    seen = {}

    with Bench(config, ["smu", "photometer", "spectrometer"]) as bench:

        def meter(prompt: str) -> float:
            seen["prompt"] = prompt
            # an LS-160 that reads 8 % above the model's true luminance now
            seen["truth"] = bench.simulation.bench.truth()["luminance_cd_m2"]
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
