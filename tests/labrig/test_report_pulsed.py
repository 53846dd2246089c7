"""labrig report for pulsed-EL runs: real run files made by the real procedure on the
simulated bench (a width sweep at two current levels, a drive sweep with a measured DC
reference, a voltage-drive width sweep), drawn into the pulsed figure: every panel
labelled with units and log-scaled where it must be, the EL-vs-width curves equal to the
file's photodiode column normalised to the shortest width, DC and pulsed EQE–J together."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from labrig import registry
from labrig.config import load_config
from labrig.report import figure_function, make_report
from labrig.report.pulsed_el import pulsed_figure
from labrig.report.style import figures_rows
from labrig.store import load_run

#: settings that keep each run around a second on the simulated bench
QUICK = {"rest": 0.0, "pulses_per_point": 4, "dc_dwell": 0.1}


def _run(out: Path, **settings) -> Path:
    from labrig.parameters import parse_settings
    from labrig.runner import run_procedure

    cls = registry.measurement("pulsed-el").procedure_class()
    proc = cls()
    merged = {**QUICK, **settings}
    proc.set_parameters(parse_settings(cls, [f"{k}={v}" for k, v in merged.items()]))
    result = run_procedure(proc, load_config("sim"), output_dir=out, progress=False)
    assert result.status == "finished", result.reason
    return result.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pulsed_runs")
    return {
        "width": _run(out, drive_levels="0.002,0.008", widths="0.5,2,10", dc_reference="none"),
        "drive": _run(
            out,
            mode="drive sweep",
            drive_levels="0.001,0.004,0.008",
            widths="0.5,5",
            dc_reference="measure",
            dc_dwell=1.0,  # long enough for the DC device to heat and diverge
        ),
        "voltage": _run(
            out, drive="voltage", drive_levels="3.5", widths="0.5,5", dc_reference="none"
        ),
        "levels": _run(out, widths="0.5,2,10", dc_rest=0.0),  # the default levels and DC
    }


def _panels(fig) -> dict[str, plt.Axes]:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def test_registered_and_drawn_for_both_modes(runs, tmp_path):
    assert registry.measurement("pulsed-el").figure == "labrig.report.pulsed_el:pulsed_figure"
    assert figure_function("pulsed-el") is pulsed_figure
    result = make_report([runs["width"], runs["drive"]], tmp_path, dpi=60)
    assert [p.name for p in result.figures] == ["pulsed-el_compare_2_runs.png"]
    single = make_report([runs["drive"]], tmp_path / "one", dpi=60).figures[0]
    for path in (*result.figures, single):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 20_000  # panels drawn, not an empty canvas


def test_el_vs_width_panel_is_the_files_photodiode_column_normalised(runs):
    loaded = load_run(runs["width"])
    fig = pulsed_figure([loaded])
    el = _panels(fig)["EL vs pulse width"]
    assert el.get_xscale() == "log"
    assert el.get_xlabel() == "pulse width (ms)"
    assert el.get_ylabel() == "EL / EL(shortest width)"
    curves = [line for line in el.lines if line.get_label() in ("2 mA", "8 mA")]
    assert [c.get_label() for c in curves] == ["2 mA", "8 mA"]
    t = loaded.table()
    for curve, level in zip(curves, (0.002, 0.008), strict=True):
        at = np.isclose(t["drive_level"], level) & (t["reference"] == 0)  # no bracket repeats
        width, pd = t["set_width"][at], t["photodiode_current"][at]
        order = np.argsort(width)
        x, y = curve.get_data()
        assert np.allclose(x, width[order])
        assert np.allclose(y, pd[order] / pd[order][0], rtol=1e-12)
    # the drop written at the end of the 8 mA curve is the file's el_drop at that level
    drop = loaded.figures()["el_drop"][0]
    texts = [a.get_text() for a in el.texts]
    assert f"−{drop:.1f} %" in texts
    # heating: the longer pulse gives less EL at the higher level
    assert curves[1].get_ydata()[-1] < curves[0].get_ydata()[-1] < 1.0
    plt.close(fig)


def test_figures_table_shows_heating_apart_from_drift(runs):
    from labrig.report.pulsed_el import PULSED_TABLE
    from labrig.report.style import fmt

    loaded = load_run(runs["width"])
    figures = loaded.figures()
    _, rows = figures_rows([loaded], PULSED_TABLE)
    shown = {label.strip(): value for label, value in rows}
    for name, label in PULSED_TABLE[:4]:
        assert shown[label.strip()] == fmt(*figures[name])
    assert figures["heating_drop"][1] == figures["el_drift"][1] == "%"
    assert figures["el_drift_on_time"][1] == "s"


def test_pulsed_and_dc_eqe_share_a_log_j_axis_with_the_divergence(runs):
    loaded = load_run(runs["drive"])
    fig = pulsed_figure([loaded])
    panels = _panels(fig)
    eqe = panels["pulsed vs DC EQE–J"]
    assert eqe.get_xscale() == "log"
    assert eqe.get_xlabel() == "current density J (mA/cm²)"
    assert eqe.get_ylabel() == "EQE (%)"
    by_label = {line.get_label(): line for line in eqe.lines}
    pulsed, dc = by_label["pulsed 0.5 ms"], by_label["DC"]
    t = loaded.table()
    modes = t["mode"].astype(str)
    at = (modes == "drive sweep") & (t["set_width"] == 0.5)
    assert np.allclose(pulsed.get_xdata(), np.sort(t["current_density"][at]))
    dc_rows = modes == "dc"
    assert dc_rows.any() and len(dc.get_xdata()) <= dc_rows.sum()
    assert set(dc.get_xdata()) <= set(t["current_density"][dc_rows])
    # the simulated device heats under DC: the run finds a divergence J, marked there
    jd = loaded.figures()["divergence_j"][0]
    marks = [line for line in eqe.lines if line not in (pulsed, dc)]
    assert any(np.allclose(line.get_xdata(), jd) for line in marks)
    assert any(t.get_text() == f"diverge {jd:.3g} mA/cm²" for t in eqe.texts)
    # the drive sweep at two widths also gives EL-vs-width curves, one per level
    assert len(panels["EL vs pulse width"].lines) >= 3
    timing = panels["pulse timing"]
    assert timing.get_xscale() == "log" and timing.get_xlabel() == "set pulse width (ms)"
    assert timing.get_ylabel() == "achieved − set width (%)"
    assert any(ax.get_ylabel() == "achieved duty cycle (%)" for ax in fig.axes)
    plt.close(fig)


def test_width_sweep_says_there_is_no_dc_reference(runs):
    fig = pulsed_figure([load_run(runs["width"])])
    eqe = _panels(fig)["pulsed vs DC EQE–J"]
    assert any("no DC reference" in t.get_text() for t in eqe.texts)
    assert "figures" in _panels(fig)
    plt.close(fig)


def test_drive_level_unit_follows_the_drive(runs):
    current = load_run(runs["width"]).figures()["el_width_level"]
    voltage = load_run(runs["voltage"]).figures()["el_width_level"]
    assert current == (pytest.approx(0.008), "A")
    assert voltage == (pytest.approx(3.5), "V")
    fig = pulsed_figure([load_run(runs["voltage"])])
    labels = [line.get_label() for line in _panels(fig)["EL vs pulse width"].lines]
    assert "3.5 V" in labels
    plt.close(fig)


def test_one_drive_level_draws_without_warnings_and_qc_axes_span_a_tolerance(runs):
    import warnings

    loaded = load_run(runs["voltage"])  # one drive level: one J on the EQE panel
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a matplotlib warning would reach the terminal
        fig = pulsed_figure([loaded])
        fig.canvas.draw()
    timing = _panels(fig)["pulse timing"]
    lo, hi = timing.get_ylim()
    assert lo <= -1.0 and hi >= 1.0  # ±1 % at least: 0.03 % scatter reads as flat
    duty_ax = next(ax for ax in fig.axes if ax.get_ylabel() == "achieved duty cycle (%)")
    duty = np.concatenate([line.get_ydata() for line in duty_ax.lines])
    d_lo, d_hi = duty_ax.get_ylim()
    assert d_lo <= 0.9 * duty.mean() and d_hi >= 1.1 * duty.mean()
    eqe = _panels(fig)["pulsed vs DC EQE–J"]
    x_lo, x_hi = eqe.get_xlim()
    assert x_hi / x_lo >= 3.9  # a single point gets a readable decade around it
    plt.close(fig)


def test_default_run_draws_pulsed_over_dc_eqe_with_the_ratio_at_each_level(runs):
    """The default run (several levels, a DC point after each): the pulsed curve is the
    per-level results the analysis compared, each point labelled with its pulsed/DC
    ratio; EQE over a roll-off on a log axis, so the ratio reads as the gap."""
    import warnings

    loaded = load_run(runs["levels"])
    figures = loaded.figures()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = pulsed_figure([loaded])
        fig.canvas.draw()
    eqe = _panels(fig)["pulsed vs DC EQE–J"]
    pulsed = next(line for line in eqe.lines if line.get_label().startswith("pulsed"))
    assert pulsed.get_label() == "pulsed 0.5 ms (×: pulsed / DC)"
    assert pulsed.get_xdata() == pytest.approx(figures["levels_j"][0])
    assert pulsed.get_ydata() == pytest.approx(figures["levels_eqe_pulsed"][0])
    assert len(pulsed.get_xdata()) == 4
    ratios = [f"×{r:.2f}" for r in figures["levels_eqe_ratio"][0]]
    assert [t.get_text() for t in eqe.texts if t.get_text().startswith("×")] == ratios
    assert eqe.get_yscale() == "log"
    assert not any("no DC reference" in t.get_text() for t in eqe.texts)
    plt.close(fig)
