"""Run files of format 1 (``labrig-run/1``, written by the code of that format: see
``v1/make_v1_fixtures.py``) open in every reader: inspect, report, export and resume."""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import pytest

from labrig.store import load_run, read_run

V1 = Path(__file__).parent / "v1"


def v1_file(name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.h5"
    path.write_bytes(gzip.decompress((V1 / f"{name}.h5.gz").read_bytes()))
    return path


def test_format_1_lifetime_channel_ends_come_from_its_log_when_the_figures_are_gone(tmp_path):
    path = v1_file("lifetime", tmp_path)
    run = read_run(path)
    assert run.file_format == "labrig-run/1" and run.status == "failed"
    reason = "L0 1e+07 cd/m^2 not reachable: 1516 cd/m^2 at 17.78 mA (limit 100 mA)"
    assert run.analysis["channel_02"]["end_reason"] == (reason, "")
    with h5py.File(path, "r+") as f:  # as a writer killed before closing left it
        del f["entry/analysis"]
    assert read_run(path).analysis["channel_02"]["end_reason"] == (reason, "")
    assert "end_reason" not in read_run(path).analysis.get("channel_01", {})


def test_format_1_jvl_light_threshold_is_its_logged_noise_times_20(tmp_path):
    run = load_run(v1_file("jvl", tmp_path)).run
    noise, units = run.analysis[None]["photodiode_noise"]
    assert units == "A" and 0 < noise < 1e-12
    assert run.analysis[None]["light_threshold"] == (pytest.approx(20 * noise), "A")
