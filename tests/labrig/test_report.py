"""labrig report: figures and summary from real run files of every procedure (made by the
real procedures on the simulated bench), overlays, and the bad inputs (not a run, a run
still in progress, a truncated file, an unknown procedure)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import h5py
import matplotlib
import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_runs import config_file, make_run, start_slow_run  # noqa: E402

from labrig import registry  # noqa: E402
from labrig.cli import main  # noqa: E402
from labrig.errors import NotARunFileError  # noqa: E402
from labrig.report import (  # noqa: E402
    draw,
    figure_function,
    generic_figure,
    make_report,
)
from labrig.store import (
    load_run,  # noqa: E402
    read_run,  # noqa: E402
)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report_runs")
    made = {name: make_run(name, out) for name in ("jvl", "spectrum", "solar-jv", "sclc")}
    made["lifetime"] = make_run("lifetime", out)
    green = config_file(out / "cfg", preset="green_cspbbr3")
    made["jvl-green"] = make_run("jvl", out, config=green)
    return made


def _set(path: Path, name: str, value: str) -> None:
    with h5py.File(path, "r+") as f:
        del f["entry"][name]
        f["entry"][name] = value


def _figure(paths):
    loaded = [load_run(p) for p in paths]
    with matplotlib.pyplot.rc_context():
        return figure_function(loaded[0].run.procedure)(loaded)


def _axes_by_title(fig) -> dict[str, matplotlib.axes.Axes]:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def test_matplotlib_backend_is_agg(runs):
    import labrig.report.style  # noqa: F401

    assert matplotlib.get_backend().lower() == "agg"


def test_every_procedure_gets_its_figure_and_the_summary(runs, tmp_path):
    files = [runs[k] for k in ("jvl", "spectrum", "solar-jv", "sclc", "lifetime")]
    result = make_report(files, tmp_path, dpi=60)
    assert sorted(p.name for p in result.figures) == sorted(f"{p.stem}.png" for p in files)
    for path in result.figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 20_000  # a multi-panel figure, not an empty canvas
    summary = result.summary.read_text()
    for path in files:
        assert path.name in summary
    # the numbers in the summary are the file's analysis figures
    jvl = read_run(runs["jvl"])
    peak = jvl.analysis[None]["peak_eqe"][0]
    assert "peak_eqe" in summary and f"{peak:.4g} %" in summary
    sclc = read_run(runs["sclc"])
    assert f"{sclc.analysis[None]['mobility'][0]:.4g} cm²/(V·s)" in summary
    assert "[channel_01]" in summary and "fit_double_tau1" not in summary
    assert len(summary.splitlines()) < 140  # about a page


def test_jvl_panels_log_axes_units_and_cie(runs):
    fig = _figure([runs["jvl"]])
    panels = _axes_by_title(fig)
    jvl = panels["J–V–L"]
    assert jvl.get_yscale() == "log" and jvl.get_ylabel() == "current density J (mA/cm²)"
    twin = [ax for ax in fig.axes if ax.get_ylabel() == "luminance L (cd/m²)"]
    assert twin and twin[0].get_yscale() == "log"
    eqe = panels["EQE vs current density"]
    assert eqe.get_xscale() == "log" and eqe.get_ylabel() == "EQE (%)"
    # the curve shown is the measured one, without the sub-noise points at 0 V
    x, y = eqe.lines[0].get_data()
    data = read_run(runs["jvl"]).columns["data"]
    assert np.nanmax(y) == pytest.approx(read_run(runs["jvl"]).analysis[None]["peak_eqe"][0])
    assert np.min(x) > np.nanmin(np.abs(data["current_density"][0]))
    cie = panels["CIE 1931 chromaticity"]
    labels = [line.get_label() for line in cie.lines]
    assert "Rec. 2020" in labels
    rec = next(line for line in cie.lines if line.get_label() == "Rec. 2020")
    assert np.allclose(rec.get_xydata()[:3], [[0.708, 0.292], [0.170, 0.797], [0.131, 0.046]])
    point = next(line for line in cie.lines if line.get_label() == "sim-red-CsPbI3")
    an = read_run(runs["jvl"]).analysis[None]
    assert point.get_xydata()[0] == pytest.approx([an["cie_x"][0], an["cie_y"][0]])
    # the spectral locus closes through the red end near 700 nm (x ~ 0.735, y ~ 0.265)
    locus = max(cie.lines, key=lambda line: len(line.get_xdata()))
    assert max(locus.get_xdata()) == pytest.approx(0.7347, abs=2e-3)
    spectra = panels["EL spectra"]
    head = spectra.get_legend().get_title().get_text()
    assert "628" in head and "FWHM" in head
    matplotlib.pyplot.close(fig)


def test_jvl_marks_turn_on_power_efficiency_spectra_at_biases_and_cie_xy(runs):
    an = read_run(runs["jvl"]).analysis[None]
    fig = _figure([runs["jvl"]])
    fig.canvas.draw()
    panels = _axes_by_title(fig)
    # turn-on: a marker at (V_on, 1 cd/m²) on the luminance axis, labelled with its value
    lum_ax = next(ax for ax in fig.axes if ax.get_ylabel() == "luminance L (cd/m²)")
    on = [line for line in lum_ax.lines if line.get_marker() == "^"]
    assert len(on) == 1 and np.allclose(on[0].get_xydata(), [[an["turn_on_voltage"][0], 1.0]])
    assert f"{an['turn_on_voltage'][0]:.2f} V" in [t.get_text() for t in lum_ax.texts]
    # power efficiency on its own (right) axis of the efficiency panel, the file's peak
    pe = next(ax for ax in fig.axes if ax.get_ylabel() == "power efficiency (lm/W)")
    assert max(np.nanmax(line.get_ydata()) for line in pe.lines) == pytest.approx(
        an["peak_power_efficiency"][0]
    )
    # EL spectra at four biases spread over the lit steps, the peak-EQE one among them
    spectra = panels["EL spectra"]
    biased = [line for line in spectra.lines if " V, " in line.get_label()]
    assert len(biased) == 4
    volts = [float(line.get_label().split(" V,")[0]) for line in biased]
    assert volts == sorted(volts) and volts[-1] - volts[0] >= 2.0
    assert sum("(peak EQE)" in line.get_label() for line in biased) == 1
    # the legend is clear of the peak marker (a dotted line up to the peak)
    marker = next(
        line for line in spectra.lines if line.get_linestyle() == ":" and len(line.get_xdata()) == 2
    )
    legend_box = spectra.get_legend().get_window_extent()
    assert not legend_box.overlaps(marker.get_window_extent())
    # the CIE point carries its x, y; the text and the point hide no wavelength label
    cie = panels["CIE 1931 chromaticity"]
    xy_text = next(t for t in cie.texts if t.get_text().startswith("("))
    assert xy_text.get_text() == f"({an['cie_x'][0]:.3f}, {an['cie_y'][0]:.3f})"
    point = next(line for line in cie.lines if line.get_label() == "sim-red-CsPbI3")
    px, py = cie.transData.transform(point.get_xydata()[0])
    wavelength_labels = [t for t in cie.texts if t.get_text().isdigit()]
    assert len(wavelength_labels) == 11
    for label in [*wavelength_labels, xy_text]:
        box = label.get_window_extent()
        assert not box.contains(px, py), label.get_text()
    for label in wavelength_labels:
        assert not label.get_window_extent().overlaps(xy_text.get_window_extent())
    matplotlib.pyplot.close(fig)


def test_overlaid_devices_are_drawn_in_their_emission_colours(runs):
    fig = _figure([runs["jvl"], runs["jvl-green"]])
    eqe = _axes_by_title(fig)["EQE vs current density"]
    red, green = (matplotlib.colors.to_rgb(line.get_color()) for line in eqe.lines)
    assert red[0] > 2 * max(red[1], red[2])  # the red device is red
    assert green[1] > 2 * max(green[0], green[2])  # the green device is green, not blue
    matplotlib.pyplot.close(fig)
    # two devices of one colour fall back to the colour-blind-safe palette
    from labrig.report.style import PALETTE

    fig = _figure([runs["jvl"], runs["jvl"]])
    eqe = _axes_by_title(fig)["EQE vs current density"]
    assert [line.get_color() for line in eqe.lines] == list(PALETTE[:2])
    matplotlib.pyplot.close(fig)


def test_several_devices_overlay_on_shared_axes(runs, tmp_path):
    result = make_report([runs["jvl"], runs["jvl-green"]], tmp_path, "pdf")
    assert [p.name for p in result.figures] == ["jvl_compare_2_runs.pdf"]
    assert result.figures[0].read_bytes()[:5] == b"%PDF-"
    fig = _figure([runs["jvl"], runs["jvl-green"]])
    eqe = _axes_by_title(fig)["EQE vs current density"]
    assert len(eqe.lines) == 2
    assert eqe.lines[0].get_color() != eqe.lines[1].get_color()
    cie = _axes_by_title(fig)["CIE 1931 chromaticity"]
    points = {line.get_label() for line in cie.lines}
    assert {"sim-red-CsPbI3", "sim-green_cspbbr3"} <= points
    matplotlib.pyplot.close(fig)


def test_solar_sclc_lifetime_figures_draw_the_analysis(runs):
    fig = _figure([runs["solar-jv"]])
    jv = _axes_by_title(fig)["J–V (dark and light)"]
    an = read_run(runs["solar-jv"]).analysis[None]
    markers = [line.get_xydata()[0] for line in jv.lines if len(line.get_xdata()) == 1]
    assert any(np.allclose(m, [an["reverse_voc"][0], 0]) for m in markers)
    assert any(np.allclose(m, [0, -an["reverse_jsc"][0]]) for m in markers)
    matplotlib.pyplot.close(fig)

    fig = _figure([runs["sclc"]])
    ax = _axes_by_title(fig)["SCLC log–log J–V"]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    mg = next(line for line in ax.lines if line.get_label().startswith("Mott–Gurney"))
    v, j = mg.get_data()
    # J = 9/8 eps0 eps_r mu V^2 / d^3 with the preset film (1500 nm, eps_r 22)
    mu = read_run(runs["sclc"]).analysis[None]["mobility"][0]
    expected = 9 / 8 * 8.8541878128e-14 * 22 * mu * v**2 / (1500e-7) ** 3 * 1e3
    assert j == pytest.approx(expected, rel=1e-9)
    assert "refitted" not in mg.get_label()
    matplotlib.pyplot.close(fig)

    fig = _figure([runs["lifetime"]])
    ax = _axes_by_title(fig)["luminance decay at constant current"]
    run = read_run(runs["lifetime"])
    t50 = run.analysis["channel_01"]["T50"][0]
    assert any(
        np.allclose(line.get_xydata(), [[t50, 0.5]])
        for line in ax.lines
        if len(line.get_xdata()) == 1
    )
    fits = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(fits) == 2  # the recorded best fit of each channel
    x, y = fits[0].get_data()
    rel = run.columns["channel_01"]["relative_luminance"][0]
    th = run.columns["channel_01"]["time"][0] / 3600
    assert np.interp(th[-1], x, y) == pytest.approx(rel[-1], abs=0.02)
    matplotlib.pyplot.close(fig)


def test_lifetime_scaling_panel_says_when_the_law_does_not_hold(runs):
    from labrig.report.lifetime import lifetime_figure

    # two channels at two L0: n is not fitted, and the panel says why (from the file)
    loaded = load_run(runs["lifetime"])
    note = loaded.figures(None)["acceleration_exponent_note"][0]
    assert note.startswith("acceleration exponent not fitted: the 2 channel(s)")
    fig = lifetime_figure([loaded])
    panel = _axes_by_title(fig)["luminance scaling (open: extrapolated)"]
    assert [" ".join(t.get_text().split()) for t in panel.texts if t.get_color() == "#b00020"] == [
        note
    ]
    matplotlib.pyplot.close(fig)
    # a fitted law the run found not to describe its channels: flagged in red, the
    # stored lack-of-fit verdict shown (not recomputed)
    figs = loaded.run.analysis[None]
    figs.update(
        acceleration_exponent=(2.0, ""),
        acceleration_exponent_err=(0.3, ""),
        T50_at_1000_cd_m2=(5.0, "h"),
        scaling_law_describes_data=("no", ""),
        scaling_law_note=(
            "L0^n·T50 = const does not describe the data: lack-of-fit p = 0.0004",
            "",
        ),
    )
    del figs["acceleration_exponent_note"]
    fig = lifetime_figure([loaded])
    panel = _axes_by_title(fig)["luminance scaling (open: extrapolated)"]
    red = [" ".join(t.get_text().split()) for t in panel.texts if t.get_color() == "#b00020"]
    assert red == ["power law does not describe the data: lack-of-fit p = 0.0004"]
    law = next(line for line in panel.lines if line.get_label().startswith("L0ⁿ·T50"))
    assert law.get_label() == "L0ⁿ·T50 = const, n = 2.00 ± 0.30"
    matplotlib.pyplot.close(fig)


def test_not_a_run_file_is_one_line_and_exit_2(runs, tmp_path):
    yaml_file = tmp_path / "bench.yaml"
    yaml_file.write_text("name: x\n")
    with pytest.raises(NotARunFileError):
        make_report([yaml_file], tmp_path / "out")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    result = CliRunner().invoke(main, ["report", str(other), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "not a labrig run file" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_running_and_truncated_files_are_reported_with_a_note(runs, tmp_path):
    running = tmp_path / "running.h5"
    shutil.copy(runs["jvl"], running)
    _set(running, "status", "running")
    truncated = tmp_path / "truncated.h5"
    data = runs["jvl"].read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.9)])

    result = CliRunner().invoke(
        main, ["report", str(running), str(truncated), "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "run in progress" in result.output
    assert "file truncated" in result.output
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "NOTE: run in progress" in summary and "NOTE: file truncated" in summary


@pytest.mark.parametrize("fraction", [0.5, 0.8, 0.97, 0.995])
def test_truncated_file_shows_only_intact_rows_and_never_hangs(runs, tmp_path, fraction):
    """A cut file is read through a zero-padded view (an SWMR read past the end would
    retry for minutes); what is shown is exactly the original's rows, never padding."""
    import time

    original = read_run(runs["jvl"])
    data = runs["jvl"].read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * fraction)])
    began = time.monotonic()
    loaded = load_run(cut)
    assert time.monotonic() - began < 10
    assert loaded.salvaged and "file truncated" in loaded.problems[0]
    for name, (values, units, _) in loaded.run.columns["data"].items():
        full, full_units, _ = original.columns["data"][name]
        assert units == full_units and len(values) <= len(full)
        np.testing.assert_array_equal(values, full[: len(values)])
    if loaded.run.spectra is not None:
        n = len(loaded.run.spectra.counts)
        np.testing.assert_array_equal(loaded.run.spectra.counts, original.spectra.counts[:n])
    fig = draw(loaded.run.procedure, [loaded])  # the jvl figure, or the generic one
    assert any("file truncated" in t.get_text() for t in fig.texts)
    matplotlib.pyplot.close(fig)


def test_unknown_procedure_gets_the_generic_column_plot(runs, tmp_path):
    odd = tmp_path / "odd.h5"
    shutil.copy(runs["sclc"], odd)
    _set(odd, "procedure", "pulsed-el-v9")
    assert registry.find_measurement("pulsed-el-v9") is None
    result = make_report([odd], tmp_path / "out", "svg")  # vector: no dpi
    assert result.figures[0].suffix == ".svg"
    fig = generic_figure([load_run(odd)])
    ylabels = {ax.get_ylabel() for ax in fig.axes if ax.get_visible()}
    assert {"current (A)", "current_density (mA/cm²)", "slope"} <= ylabels
    assert all(ax.get_xlabel() == "voltage (V)" for ax in fig.axes if ax.get_visible())
    matplotlib.pyplot.close(fig)


def test_bad_format_is_a_user_error(runs, tmp_path):
    result = CliRunner().invoke(main, ["report", str(runs["sclc"]), "--format", "jpg"])
    assert result.exit_code == 2


def test_a_run_killed_mid_sweep_is_reported_from_what_reached_the_disk(tmp_path):
    """kill -9 of a real `labrig run` (no chance to close the file): status stays
    'running'; the report draws the rows written and says the run did not end."""
    import signal
    import time

    proc, path = start_slow_run(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if load_run(path).rows() >= 4:
                    break
            except NotARunFileError:
                pass  # the layout is still being written
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    result = make_report([path], tmp_path / "out", dpi=60)
    loaded = result.runs[0]
    assert loaded.run.status == "running" and 4 <= loaded.rows() < 16
    assert "run in progress" in loaded.problems[0]
    assert "NOTE: run in progress" in result.summary.read_text()
    assert result.figures[0].stat().st_size > 20_000


def _set_l0(loaded, values) -> None:
    for group, l0 in zip(("channel_01", "channel_02"), values, strict=True):
        loaded.run.analysis[group]["initial_luminance"] = (l0, "cd/m^2")


def test_lifetime_scaling_axes_are_linear_below_a_decade_of_l0(runs):
    from labrig.report.lifetime import lifetime_figure

    loaded = load_run(runs["lifetime"])
    _set_l0(loaded, (995.0, 1003.0))  # channels sharing one L0
    fig = lifetime_figure([loaded])
    fig.canvas.draw()
    panel = _axes_by_title(fig)["luminance scaling (open: extrapolated)"]
    assert panel.get_xscale() == panel.get_yscale() == "linear"
    ticks = [t.get_text() for t in panel.get_xticklabels() if t.get_text()]
    assert 2 <= len(ticks) <= 6  # a few plain ticks, not overprinted 9.95×10² labels
    assert all("10^" not in t and "times" not in t and "e" not in t for t in ticks), ticks
    assert panel.xaxis.get_offset_text().get_text() == ""
    lo, hi = panel.get_xlim()
    assert lo < 995.0 and hi > 1003.0 and hi - lo < 50
    matplotlib.pyplot.close(fig)
    _set_l0(loaded, (100.0, 3000.0))  # a decade and more: the power law is a line
    fig = lifetime_figure([loaded])
    panel = _axes_by_title(fig)["luminance scaling (open: extrapolated)"]
    assert panel.get_xscale() == panel.get_yscale() == "log"
    matplotlib.pyplot.close(fig)


def test_lifetime_figure_reads_on_a_page_with_channels_apart_and_a_mean_row(runs):
    from labrig.report.lifetime import lifetime_figure

    loaded = load_run(runs["lifetime"])
    fig = lifetime_figure([loaded])
    w, h = fig.get_size_inches()
    assert w <= 10.5 and 1.2 <= w / h <= 2.0  # not a 4:1 strip
    decay = _axes_by_title(fig)["luminance decay at constant current"]
    data = [line for line in decay.lines if line.get_label().startswith("ch ")]
    assert [line.get_label() for line in data] == ["ch 01", "ch 02"]
    assert len({line.get_color() for line in data}) == 2
    assert len({line.get_marker() for line in data}) == 2  # apart in greyscale too
    table = next(ax for ax in fig.axes if ax.get_title() == "figures").tables[0]
    cells = table.get_celld()
    last = max(r for r, _ in cells)
    assert cells[last, 0].get_text().get_text() == "mean ± s.d."
    t50 = [loaded.run.analysis[g]["T50"][0] for g in ("channel_01", "channel_02")]
    mean, sd = cells[last, 4].get_text().get_text().removesuffix(" h").split(" ± ")
    assert float(mean) == pytest.approx(np.mean(t50), rel=1e-3)
    assert float(sd) == pytest.approx(np.std(t50, ddof=1), rel=0.05)
    matplotlib.pyplot.close(fig)


def _cells(fig) -> dict[str, list[str]]:
    table = next(ax for ax in fig.axes if ax.get_title() == "figures").tables[0]
    rows: dict[int, list[str]] = {}
    for (r, _c), cell in sorted(table.get_celld().items()):
        rows.setdefault(r, []).append(cell.get_text().get_text())
    return {row[0]: row[1:] for row in rows.values()}


def test_solar_figure_marks_pmax_and_gives_resistances_in_ohm_cm2(runs):
    an = read_run(runs["solar-jv"]).analysis[None]
    fig = _figure([runs["solar-jv"]])
    power = _axes_by_title(fig)["power under illumination"]
    star = [line for line in power.lines if line.get_marker() == "*"]
    assert len(star) == 1
    assert star[0].get_xydata()[0] == pytest.approx([an["reverse_vmp"][0], an["reverse_pmax"][0]])
    assert f"Pmax {an['reverse_pmax'][0]:.3g} mW/cm² (rev.)" in [t.get_text() for t in power.texts]
    assert power.get_ylim()[1] > an["reverse_pmax"][0] * 1.05  # the label fits above it
    cells = _cells(fig)
    assert cells["Rs (rev.)"] == [f"{an['reverse_rs'][0]:.4g} Ω·cm²"]
    assert cells["Rsh (rev.)"][0].endswith(" Ω·cm²")
    matplotlib.pyplot.close(fig)


def test_sclc_table_numbers_in_scientific_notation_with_superscripts(runs):
    an = read_run(runs["sclc"]).analysis[None]
    fig = _figure([runs["sclc"]])
    fig.canvas.draw()  # mathtext must render (a bad string raises here)
    cells = _cells(fig)
    nt = an["trap_density"][0]
    mantissa, exponent = f"{nt:.3e}".split("e")
    assert cells["trap density n_t"] == [
        f"${float(mantissa):.4g} \\times 10^{{{int(exponent)}}}$ cm⁻³"
    ]
    assert not any(re.search(r"\de[+-]?\d", v) for row in cells.values() for v in row)
    assert cells["V_TFL"] == [f"{an['v_tfl'][0]:.4g} V"]  # ordinary numbers stay plain
    matplotlib.pyplot.close(fig)
