"""What the web view draws per measurement, from runs as labrig's reader loads them (the
view gets the same ``LoadedRun`` through the catalogue): each figure carries the run's
own numbers, and a run whose data lack what its figure needs gets the generic plot."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("plotly")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from report_runs import shared_run  # noqa: E402

from labrig.catalog.web import figures  # noqa: E402
from labrig.store import load_run  # noqa: E402


def traces(plot) -> dict[str, object]:
    return {trace.name: trace for trace in plot.figure.data}


def test_lifetime_marks_each_channels_recorded_t50_on_its_curve(tmp_path_factory):
    loaded = load_run(shared_run("lifetime", tmp_path_factory))
    (plot,) = figures.plots(loaded)
    assert plot.id == "lifetime"
    shown = traces(plot)
    for group in ("channel_01", "channel_02"):
        name = group.replace("channel_", "ch ")
        table = loaded.table(group)
        curve = shown[name]
        assert curve.meta == group
        np.testing.assert_allclose(curve.x, np.asarray(table["time"]) / 3600.0)
        np.testing.assert_allclose(curve.y, table["relative_luminance"])
        mark = shown[f"{name} T50"]
        t50 = loaded.figures(group).get("T50", (np.nan, ""))[0]
        expected = t50 if np.isfinite(t50) else loaded.figures(group)["T50_best"][0]
        assert (mark.x[0], mark.y[0]) == pytest.approx((expected, 0.5))
        fit = shown[f"{name} fit"]
        assert fit.y[0] == pytest.approx(1.0, abs=0.05)  # the fit starts near L0


def test_a_long_channel_is_thinned_keeping_its_ends():
    t = np.arange(10_000.0)
    x, y = figures.thin(t, t * 2)
    assert len(x) == figures.MAX_POINTS
    assert (x[0], x[-1], y[-1]) == (0.0, 9999.0, 19998.0)


def test_sclc_marks_the_regions_the_analysis_found(tmp_path_factory):
    loaded = load_run(shared_run("sclc", tmp_path_factory))
    jv, slope = figures.plots(loaded)
    assert (jv.id, slope.id) == ("sclc", "slope")
    mu = loaded.figures()["mobility"][0]
    assert f"μ = {mu:.3g}" in jv.figure.layout.title.text
    shapes = jv.figure.layout.shapes
    lo, hi = (loaded.figures()[f"child_fit_v_{e}"][0] for e in ("min", "max"))
    assert any(
        s.x0 == pytest.approx(np.log10(lo)) and s.x1 == pytest.approx(np.log10(hi)) for s in shapes
    )


def test_a_spectrum_run_draws_its_spectrum_and_colour_point(tmp_path_factory):
    loaded = load_run(shared_run("spectrum", tmp_path_factory))
    spectrum, cie = figures.plots(loaded)
    (trace,) = spectrum.figure.data
    peak = loaded.figures()["peak_wavelength"][0]
    assert trace.x[int(np.argmax(trace.y))] == pytest.approx(peak, abs=1.0)
    assert max(trace.y) == pytest.approx(1.0)
    point = traces(cie)["device"]
    assert (point.x[0], point.y[0]) == (loaded.figures()["cie_x"][0], loaded.figures()["cie_y"][0])


def test_a_procedure_without_its_own_figure_gets_every_column(tmp_path_factory):
    loaded = load_run(shared_run("pulsed-el", tmp_path_factory))
    plots = figures.plots(loaded)
    assert [p.id for p in plots] == [f"generic-{g}" for g in loaded.run.groups if loaded.rows(g)]
    names = set(traces(plots[0]))
    numeric = {
        n for n, v in loaded.table(loaded.run.groups[0]).items()
        if np.asarray(v).dtype.kind in "biuf" and n not in (loaded.run.axis, "timestamp")
    }  # fmt: skip
    assert names == numeric


def test_a_run_missing_its_columns_falls_back_to_the_generic_plot(tmp_path_factory):
    loaded = load_run(shared_run("solar-jv", tmp_path_factory))
    columns = loaded.run.columns["data"]
    loaded.run.columns["data"] = {k: v for k, v in columns.items() if k != "scan"}
    plots = figures.plots(loaded)
    groups = [g for g in loaded.run.groups if loaded.rows(g)]
    assert [p.id for p in plots] == [f"generic-{g}" for g in groups]
    assert groups[0] == "data" and "scan" not in traces(plots[0])
