"""The batch report: each figure read back by the data it draws (bar heights, line and
marker positions), against the statistics worked out by hand; the curves against the
devices' own run files (real J-V-L and solar runs on the simulated bench)."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from batch_results import batch, device  # noqa: E402
from report_runs import shared_run  # noqa: E402

from labrig.analysis.statistics import substrate_yield, summarize  # noqa: E402
from labrig.report.batch import (  # noqa: E402
    CHAMPION_COLOUR,
    conditions_figure,
    distributions_figure,
    make_batch_report,
    mean_sd_text,
    strip_offsets,
    yield_figure,
)
from labrig.store import load_run  # noqa: E402

LABELS = {"peak_eqe": "peak EQE", "turn_on_voltage": "turn-on voltage"}


def _two_conditions(run_files: dict[str, Path] | None = None):
    files = run_files or {}
    return batch(
        device("S1", "A", condition="control", peak_eqe=10.0, run_file=files.get("S1-A")),
        device("S1", "B", condition="control", peak_eqe=12.0, run_file=files.get("S1-B")),
        device("S1", "C", condition="control", peak_eqe=13.0, run_file=files.get("S1-C")),
        device("S1", "D", condition="control", status="skipped", reason="shorted: 3 ohm"),
        device("S2", "A", condition="NSA", peak_eqe=20.0, run_file=files.get("S2-A")),
        device("S2", "B", condition="NSA", peak_eqe=22.0, run_file=files.get("S2-B")),
        device("S2", "C", condition="NSA", peak_eqe=27.0, run_file=files.get("S2-C")),
        device("S2", "D", condition="NSA", status="skipped", reason="open: 2 nA"),
        device("S2", "E", condition="NSA", status="skipped", reason="open: 1 nA"),
    )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _stars(ax):
    return [ln for ln in ax.lines if ln.get_marker() == "*"]


def test_histogram_bars_mean_sd_band_and_champion_are_the_statistics():
    rows = summarize(_two_conditions(), "jvl", ["peak_eqe"])
    fig = distributions_figure("plan", "jvl", rows, LABELS)
    ax = fig.axes[0]
    # every value 10, 12, 13, 20, 22, 27: mean 104 / 6 = 17.3333; deviations -7.333,
    # -5.333, -4.333, 2.667, 4.667, 9.667: squares sum 53.78 + 28.44 + 18.78 + 7.11 +
    # 21.78 + 93.44 = 223.33; / 5 = 44.667; sd = 6.6833
    mean, sd = 104 / 6, 6.6833
    edges = np.histogram_bin_edges([10, 12, 13, 20, 22, 27], bins="auto")
    control, nsa = ax.containers  # stacked: control first, NSA on top of it
    assert [p.get_height() for p in control] == list(np.histogram([10, 12, 13], edges)[0])
    assert [p.get_height() for p in nsa] == list(np.histogram([20, 22, 27], edges)[0])
    assert sum(p.get_height() for c in ax.containers for p in c) == 6
    (mean_line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert mean_line.get_xdata() == pytest.approx([mean, mean])
    (band,) = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_alpha() == 0.15]
    assert band.get_x() == pytest.approx(mean - sd, abs=1e-4)
    assert band.get_width() == pytest.approx(2 * sd, abs=1e-4)
    (star,) = _stars(ax)
    assert star.get_xdata()[0] == 27.0 and star.get_label() == "champion S2-C"
    assert ax.get_title() == "peak EQE: 17.3 ± 6.7 % (n = 6)"


def test_histogram_of_one_device_has_no_band_and_none_of_no_device():
    rows = summarize(
        batch(
            device("S1", "A", peak_eqe=15.0, turn_on_voltage=math.nan),
            device("S1", "B", status="skipped", reason="open: 0 A"),
        ),
        "jvl",
        ["peak_eqe", "turn_on_voltage"],
    )
    fig = distributions_figure("plan", "jvl", rows, LABELS)
    eqe, turn_on = fig.axes[:2]
    assert [p.get_height() for c in eqe.containers for p in c] == [1.0]
    assert not [p for p in eqe.patches if p.get_alpha() == 0.15]  # s.d. undefined at n = 1
    assert _stars(eqe)[0].get_xdata()[0] == 15.0
    assert eqe.get_title() == "peak EQE: 15 % (n = 1)"
    assert not turn_on.containers and not turn_on.lines
    assert turn_on.texts[0].get_text() == "no device with a turn-on voltage"


def test_mean_and_sd_are_written_to_the_sd_s_two_significant_digits():
    assert mean_sd_text(17.98, 3.462, "%") == "18.0 ± 3.5 %"
    assert mean_sd_text(2.4, 0.05329, "V") == "2.400 ± 0.053 V"
    assert mean_sd_text(2934.2, 459.8, "cd/m^2") == "2934 ± 460 cd/m²"
    assert mean_sd_text(15.0, math.nan, "%") == "15 %"


def test_box_and_strip_per_condition_draw_every_device_and_the_median():
    rows = summarize(_two_conditions(), "jvl", ["peak_eqe"])
    fig = conditions_figure("plan", "jvl", rows, LABELS)
    ax = fig.axes[0]
    points = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert [list(ln.get_ydata()) for ln in points] == [[10, 12, 13], [20, 22, 27]]
    assert list(points[0].get_xdata()) == pytest.approx(1 + strip_offsets(3))
    assert list(points[1].get_xdata()) == pytest.approx(2 + strip_offsets(3))
    flat = [
        ln for ln in ax.lines if len(ln.get_ydata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]
    ]
    medians = {float(ln.get_ydata()[0]) for ln in flat if ln.get_color() == "0.1"}
    assert medians == {12.0, 22.0}  # the middle of 10, 12, 13 and of 20, 22, 27
    (star,) = _stars(ax)
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (2, 27.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["control\nn = 3", "NSA\nn = 3"]


def test_yield_bars_stack_measured_and_each_skip_reason():
    fig = yield_figure("plan", substrate_yield(_two_conditions()))
    ax = fig.axes[0]
    measured, shorted, opened = ax.containers
    assert [measured.get_label(), shorted.get_label(), opened.get_label()] == [
        "measured", "skipped: shorted", "skipped: open",
    ]  # fmt: skip
    assert [p.get_height() for p in measured] == [3, 3]
    assert [p.get_height() for p in shorted] == [1, 0]
    assert [p.get_height() for p in opened] == [0, 2]
    assert [p.get_y() for p in opened] == [4, 3]  # on top of measured + shorted
    # S1: 3 of 4 = 75 %; S2: 3 of 5 = 60 %
    assert [t.get_text() for t in ax.texts] == ["3/4 (75 %)", "3/5 (60 %)"]


@pytest.fixture(scope="module")
def jvl_runs(tmp_path_factory):
    """Two real J-V-L runs that differ (one sweep stops earlier)."""
    return shared_run("jvl", tmp_path_factory), shared_run(
        "jvl", tmp_path_factory, stop_voltage=5.0
    )


def test_curves_overlay_every_device_and_the_champion_on_top(jvl_runs, tmp_path):
    full, short = jvl_runs
    files = {"S1-A": full, "S1-B": full, "S1-C": full, "S2-A": full, "S2-B": full, "S2-C": short}
    report = make_batch_report(_two_conditions(files), tmp_path, dpi=30)
    assert [p.name for p in report.figures] == [
        "batch_jvl_distributions.png", "batch_jvl_conditions.png", "batch_jvl_curves.png",
        "batch_yield.png",
    ]  # fmt: skip
    assert all(p.stat().st_size > 0 for p in report.figures)
    assert report.problems == []
    # redraw the curves figure to read its lines back
    from labrig.report.batch import curves_figure

    fig = curves_figure(_two_conditions(files), "jvl", report.statistics["jvl"], report)
    jv, lv, eqe = fig.axes[:3]
    assert len(jv.lines) == 6  # six finished devices, the three skipped have no file
    (champion,) = [ln for ln in jv.lines if ln.get_color() == CHAMPION_COLOUR]
    assert champion.get_gid() == "S2-C" and champion.get_linewidth() == 2.2
    t = load_run(short).table()
    keep = t["current_density"] > 0
    assert list(champion.get_xdata()) == list(t["voltage"][keep])
    assert list(champion.get_ydata()) == list(t["current_density"][keep])
    assert max(champion.get_xdata()) == pytest.approx(5.0)
    others = [ln for ln in jv.lines if ln is not champion]
    assert [max(ln.get_xdata()) for ln in others] == pytest.approx([6.0] * 5)
    assert max(ln.get_zorder() for ln in others) < champion.get_zorder()
    (champion_eqe,) = [ln for ln in eqe.lines if ln.get_gid() == "S2-C"]
    lit = (
        load_run(short).table()["photodiode_current"]
        > load_run(short).figures()["light_threshold"][0]
    )
    good = lit & (t["current_density"] > 0) & (t["eqe"] > 0)
    assert list(champion_eqe.get_ydata()) == list(t["eqe"][good])
    assert eqe.get_xscale() == "log" and jv.get_yscale() == "log"
    assert len(lv.lines) == 6


def test_report_tables_csv_and_text_hold_the_hand_values(tmp_path):
    report = make_batch_report(_two_conditions(), tmp_path, dpi=30)
    summary_csv, yield_csv = report.tables
    with summary_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["condition"], r["n"]) for r in rows] == [
        ("control", "3"),
        ("NSA", "3"),
        ("all", "6"),
    ]
    control = rows[0]
    # control 10, 12, 13: mean 35 / 3 = 11.667; deviations -1.667, 0.333, 1.333:
    # squares 2.778 + 0.111 + 1.778 = 4.667; / 2 = 2.333; sd 1.5275; sem 1.5275 / sqrt 3 = 0.8819
    assert float(control["mean"]) == pytest.approx(35 / 3)
    assert float(control["sd_sample"]) == pytest.approx(1.5275252, abs=1e-7)
    assert float(control["sem"]) == pytest.approx(0.8819171, abs=1e-7)
    assert (control["median"], control["champion"], control["champion_value"]) == (
        "12.0", "S1-C", "13.0",
    )  # fmt: skip
    with yield_csv.open() as f:
        ys = list(csv.DictReader(f))
    assert [(y["substrate"], y["measured"], y["planned"], y["skipped_shorted"], y["skipped_open"])
            for y in ys] == [("S1", "3", "4", "1", "0"), ("S2", "3", "5", "0", "2")]  # fmt: skip
    assert report.summary.read_text().rstrip("\n") == report.text
    lines = report.text.splitlines()
    assert any(line.split()[:4] == ["peak_eqe", "[%]", "control", "3"] for line in lines)
    assert any("S2-C 27 %" in line for line in lines)
    assert any(line.split()[:4] == ["S2", "3/5", "60", "%"] for line in lines)
    assert "ddof = 1" in report.text
    # the devices have no run files here: the curves figure says so, nothing is lost
    assert "S1-A jvl: no run file recorded" in report.problems
    assert "NOTE: S1-A jvl: no run file recorded" in lines


def test_an_unreadable_device_file_is_named_and_the_rest_drawn(jvl_runs, tmp_path):
    full, _ = jvl_runs
    gone = tmp_path / "gone.h5"
    files = dict.fromkeys(("S1-A", "S1-B", "S1-C", "S2-A", "S2-B"), full) | {"S2-C": gone}
    report = make_batch_report(_two_conditions(files), tmp_path / "out", dpi=30)
    assert report.problems == [f"S2-C jvl: {gone}: no such file"]
    assert len(report.runs) == 5


def test_solar_curves_are_the_reverse_light_scans_by_voltage(tmp_path_factory, tmp_path):
    run = shared_run("solar-jv", tmp_path_factory)
    b = batch(
        device("S1", "1", measurement="solar-jv", run_file=run, reverse_pce=(5.1, "%")),
        device("S1", "2", measurement="solar-jv", run_file=run, reverse_pce=(6.3, "%")),
    )
    report = make_batch_report(b, tmp_path, dpi=30)
    assert [p.name for p in report.figures][2] == "batch_solar-jv_curves.png"
    from labrig.report.batch import curves_figure

    fig = curves_figure(b, "solar-jv", report.statistics["solar-jv"], report)
    jv = fig.axes[0]
    (champion,) = [ln for ln in jv.lines if ln.get_color() == CHAMPION_COLOUR]
    assert champion.get_gid() == "S1-2"
    t = load_run(run).table()
    m = (t["scan"].astype(str) == "light") & (t["direction"].astype(str) == "reverse")
    assert list(champion.get_xdata()) == sorted(t["voltage"][m])
    assert np.all(np.diff(champion.get_xdata()) >= 0)


def test_report_refuses_a_batch_file_among_run_files_in_one_line(jvl_runs, tmp_path):
    from click.testing import CliRunner

    from labrig.cli import main

    batch_file = tmp_path / "plan.h5"
    with h5py.File(batch_file, "w") as f:
        f.attrs["file_format"] = "labrig-batch/1"
    out = tmp_path / "figs"
    result = CliRunner().invoke(main, ["report", str(jvl_runs[0]), str(batch_file), "-o", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"labrig: error: report: {batch_file} is a batch file; report it on its own "
        "(labrig report BATCHFILE), run files in another call"
    ]
    assert not out.exists()


def test_labrig_report_of_a_batch_file_draws_the_batch_report(jvl_runs, tmp_path):
    """The root file_format sends `labrig report` to the batch report: read back with
    read_batch from a file write_batch made, curves from the linked run files."""
    from click.testing import CliRunner

    from labrig.batch.file import write_batch
    from labrig.cli import main

    full, short = jvl_runs
    files = dict.fromkeys(("S1-A", "S1-B", "S1-C", "S2-A", "S2-B"), full) | {"S2-C": short}
    path = tmp_path / "nsa_plan.h5"
    write_batch(path, "NSA plan", "finished", _two_conditions(files).devices)
    out = tmp_path / "figs"
    result = CliRunner().invoke(main, ["report", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:7] == [
        f"figure:  {out / 'nsa_plan_jvl_distributions.png'}",
        f"figure:  {out / 'nsa_plan_jvl_conditions.png'}",
        f"figure:  {out / 'nsa_plan_jvl_curves.png'}",
        f"figure:  {out / 'nsa_plan_yield.png'}",
        f"table:   {out / 'nsa_plan_summary.csv'}",
        f"table:   {out / 'nsa_plan_yield.csv'}",
        f"summary: {out / 'summary.txt'}",
    ]
    assert lines[7] == "batch NSA plan (finished): nsa_plan.h5"
    # NSA 20, 22, 27: mean 23, sd sqrt(13) = 3.606, sem 3.606 / sqrt 3 = 2.082
    (nsa,) = [line.split() for line in lines if line.split()[2:3] == ["NSA"]]
    assert nsa == ["peak_eqe", "[%]", "NSA", "3", "23", "3.606", "22", "2.082", "S2-C", "27", "%"]
    assert all(p.stat().st_size > 0 for p in out.iterdir())
