"""labrig watch: follow a real run that another process is writing (the simulated bench
slowed to real instrument timing with ``simulation.clock_speed: 1``) to its end."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_runs import start_slow_run  # noqa: E402

from labrig.cli import main  # noqa: E402
from labrig.store import read_run  # noqa: E402
from labrig.watch import watch  # noqa: E402


def test_watch_follows_a_live_run_to_its_end(tmp_path):
    proc, path = start_slow_run(tmp_path)
    try:
        out = io.StringIO()
        status = watch(path, interval=0.2, out=out, redraw=False, timeout=90)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert status == "finished"
    snapshots = [s for s in out.getvalue().split("-" * 40 + "\n") if s.strip()]
    rows = [int(s.split("[data] ")[1].split(" rows")[0]) for s in snapshots]
    final = read_run(path).columns["data"]["voltage"][0].size
    # it saw the run grow while it was being written, and the end
    assert ": running" in snapshots[0]
    assert rows == sorted(rows)
    assert len(set(rows)) >= 3 and rows[0] < final and rows[-1] == final
    assert ": finished" in snapshots[-1]
    assert "voltage = 6 V" in snapshots[-1]  # the last row's values, with units


def test_watch_once_and_the_cli(tmp_path):
    proc, path = start_slow_run(tmp_path)
    try:
        result = CliRunner().invoke(main, ["watch", str(path), "--once"])
        assert result.exit_code == 0, result.output
        assert ": running" in result.output
        figure = tmp_path / "live.png"
        result = CliRunner().invoke(
            main, ["watch", str(path), "--interval", "0.2", "--figure", str(figure)]
        )
    finally:
        proc.wait(timeout=60)
    assert result.exit_code == 0, result.output
    assert ": finished" in result.output
    assert figure.read_bytes()[:4] == b"\x89PNG"  # rendered (last at the end of the run)


def test_watch_of_a_missing_file_is_a_user_error(tmp_path):
    result = CliRunner().invoke(main, ["watch", str(tmp_path / "nope.h5"), "--once"])
    assert result.exit_code == 2
    assert "no such file" in result.output
