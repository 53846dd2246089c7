"""Run files of format 1 (``labrig-run/1``, written by the code of that format: see
``make_fixtures.py``) open in every reader: inspect, report, export and resume."""

from __future__ import annotations

import h5py
import pytest

from labrig.store import load_run, read_run


def test_format_1_lifetime_channel_ends_come_from_its_log_when_the_figures_are_gone(old_file):
    path = old_file(1, "lifetime")
    run = read_run(path)
    assert run.file_format == "labrig-run/1" and run.status == "failed"
    reason = "L0 1e+07 cd/m^2 not reachable: 1516 cd/m^2 at 17.78 mA (limit 100 mA)"
    assert run.analysis["channel_02"]["end_reason"] == (reason, "")
    with h5py.File(path, "r+") as f:  # as a writer killed before closing left it
        del f["entry/analysis"]
    assert read_run(path).analysis["channel_02"]["end_reason"] == (reason, "")
    assert "end_reason" not in read_run(path).analysis.get("channel_01", {})


def test_format_1_jvl_light_threshold_is_its_logged_noise_times_20(old_file):
    run = load_run(old_file(1, "jvl")).run
    noise, units = run.analysis[None]["photodiode_noise"]
    assert units == "A" and 0 < noise < 1e-12
    assert run.analysis[None]["light_threshold"] == (pytest.approx(20 * noise), "A")


def test_format_1_files_in_inspect_report_and_export_under_format_2_names(old_file, tmp_path):
    from labrig.describe import describe_run
    from labrig.export import export
    from labrig.report import make_report

    files = [old_file(1, name) for name in ("solar-jv", "jvl", "lifetime")]
    solar = read_run(files[0])
    assert solar.axis == "voltage" and solar.signal == "current_density"
    assert list(solar.columns["light_reverse"])[2:6] == [
        "voltage",
        "current",
        "current_density",
        "power_density",
    ]
    text = describe_run(files[0])
    assert "current_density" in text and "mA/cm^2" in text and "labrig-run/1" not in text
    written = export(files[0], output_dir=tmp_path / "csv")
    table = (tmp_path / "csv" / "solar-jv_light_reverse.csv").read_text().splitlines()
    assert tmp_path / "csv" / "solar-jv_light_reverse.csv" in written
    assert table[0].startswith("scan,direction,voltage [V],current [A],current_density")
    status = read_run(files[2]).columns["channel_01"]["status"]
    assert list(status[0][:3]) == ["OK", "OK", "OK"] and status[1:] == ("", "rig channel status")
    result = make_report(files, tmp_path / "report", dpi=40)
    assert sorted(p.name for p in result.figures) == ["jvl.png", "lifetime.png", "solar-jv.png"]
    summary = result.summary.read_text()
    assert "L0 1e+07 cd/m^2 not reachable" in summary  # channel 2's end, in its table


def test_format_1_lifetime_run_resumes_in_its_own_format(old_file, resume, tmp_path):
    path = old_file(1, "lifetime")
    before = read_run(path)
    rows = len(before.columns["channel_01"]["time"][0])
    result = resume(path, tmp_path)
    assert result.status == "finished", result.reason
    after = read_run(path)
    assert after.file_format == "labrig-run/1"  # appended as it was written
    cols = after.columns["channel_01"]
    assert len(cols["time"][0]) > rows and list(cols["status"][0][rows:]) == ["OK"] * (
        len(cols["time"][0]) - rows
    )
    assert after.analysis["channel_01"]["end_reason"][0].startswith("T50 reached")
    assert len(after.columns["channel_02"]["time"][0]) == 0  # ended before: stays ended
    with h5py.File(path, "r") as f:  # the same 64-byte text column, not format 2's codes
        assert f["entry/channel_01/status"].dtype == "S64"
