"""Run files of format 2 (``labrig-run/2``, written by the code of that format: see
``make_fixtures.py``), whose constant columns have a value in every row, open in every
reader as format 3's do: inspect, watch, report, export and resume."""

from __future__ import annotations

import h5py
import numpy as np

from labrig.store import load_run, read_run


def test_format_2_lifetime_constant_columns_read_as_format_3_gives_them(old_file):
    run = read_run(old_file(2, "lifetime"))
    assert run.file_format == "labrig-run/2" and run.status == "failed"
    cols = run.columns["channel_01"]
    rows = len(cols["time"][0])
    assert rows == 128
    current, units, long_name = cols["current_set"]
    assert (units, long_name) == ("A", "set current") and current.dtype == np.float32
    # the set current of the fixture's luminance drive, the same in every row
    assert len(current) == rows and len(set(current.tolist())) == 1 and 0 < current[0] < 0.1
    assert len(set(cols["photodiode_dark"][0].tolist())) == 1
    assert run.analysis["channel_02"]["end_reason"][0].startswith("L0 1e+07 cd/m^2")


def test_format_2_files_in_inspect_watch_report_and_export(old_file, tmp_path):
    from labrig.describe import describe_run
    from labrig.export import export
    from labrig.report import make_report
    from labrig.watch import snapshot

    # format 2 and 3 differ in the lifetime file only; the others read as they always did
    for name in ("solar-jv", "jvl"):
        assert read_run(old_file(2, name)).status == "finished"
    path = old_file(2, "lifetime")
    text = describe_run(path)
    assert "current_set" in text and "channel_01" in text
    view = snapshot(load_run(path))
    assert "[channel_01] 128 rows" in view and "current_set = 0.0001215 A" in view
    written = export(path, output_dir=tmp_path / "csv")
    table = (tmp_path / "csv" / "lifetime_channel_01.csv").read_text().splitlines()
    assert tmp_path / "csv" / "lifetime_channel_01.csv" in written and len(table) == 129
    header = table[0].split(",")
    assert header[4] == "current_set [A]" and len({r.split(",")[4] for r in table[1:]}) == 1
    result = make_report([path], tmp_path / "report", dpi=40)
    assert [p.name for p in result.figures] == ["lifetime.png"]
    assert "L0 1e+07 cd/m^2 not reachable" in result.summary.read_text()


def test_format_2_lifetime_run_resumes_in_its_own_format(old_file, resume, tmp_path):
    path = old_file(2, "lifetime")
    before = read_run(path).columns["channel_01"]
    rows = len(before["time"][0])
    result = resume(path, tmp_path)
    assert result.status == "finished", result.reason
    after = read_run(path)
    assert after.file_format == "labrig-run/2"  # appended as it was written
    cols = after.columns["channel_01"]
    total = len(cols["time"][0])
    assert total > rows
    np.testing.assert_array_equal(
        cols["current_set"][0], np.full(total, before["current_set"][0][0])
    )
    with h5py.File(path, "r") as f:  # a value per row still, not format 3's one
        assert f["entry/channel_01/current_set"].shape == (total,)
