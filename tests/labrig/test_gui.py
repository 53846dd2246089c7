"""labrig gui: pymeasure's ManagedWindow, offscreen, running real procedures on the
simulated bench through labrig's runner into HDF5 run files (not pymeasure CSVs)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
try:
    import PySide6  # noqa: F401
except ImportError:  # pragma: no cover - the gui extra is optional
    pytest.skip(
        "PySide6 (the `gui` extra: pip install labrig[gui]) is not installed",
        allow_module_level=True,
    )

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_runs import config_file  # noqa: E402

from labrig.config import load_config  # noqa: E402
from labrig.store import read_run  # noqa: E402


@pytest.fixture(scope="module")
def app():
    from pymeasure.display.Qt import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def _wait(app, done, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail("the GUI run did not end in time")
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):  # let the last queued signals (browser, curves) through
        app.processEvents()


def test_gui_runs_a_procedure_to_a_finished_hdf5_file(app, tmp_path, capfd):
    from labrig.gui import LabrigWindow
    from labrig.procedures.sclc import SCLCProcedure

    window = LabrigWindow(SCLCProcedure, load_config("sclc_sim"), tmp_path)
    window.inputs.points.setValue(21)
    window.queue()
    experiment = window.manager.experiments[0]
    _wait(app, lambda: experiment.results.status is not None and not window.manager.is_running())

    results = experiment.results
    assert results.status == "finished", results.reason
    assert results.path is not None and results.path.parent == tmp_path
    assert list(tmp_path.glob("*.csv")) == []  # no pymeasure Results file
    run = read_run(results.path)
    assert run.procedure == "sclc" and run.status == "finished"
    assert run.parameters["points"][0] == 21
    assert len(run.columns["data"]["voltage"][0]) == 21
    assert "mobility" in run.analysis[None]
    assert {"smu"} <= set(run.instruments)
    # the window saw the same rows live, and shows the file's name
    assert len(results.data) == 21
    assert results.data["current_density"].tolist() == pytest.approx(
        run.columns["data"]["current_density"][0].tolist()
    )
    assert experiment.browser_item.text(1) == results.path.name
    assert experiment.procedure.status == experiment.procedure.FINISHED
    # the window's progress bar shows progress; the terminal gets no CLI progress lines
    assert "% done" not in capfd.readouterr().err
    window.close()


def test_gui_abort_ends_the_run_as_aborted_in_its_file(app, tmp_path):
    from labrig.gui import GUI_STOP_REASON, LabrigWindow
    from labrig.procedures.jvl import JVLProcedure

    cfg = load_config(config_file(tmp_path / "cfg", clock_speed=1))
    window = LabrigWindow(JVLProcedure, cfg, tmp_path)
    window.inputs.spectra.setValue("none")  # real-time spectrometer darks take seconds
    window.inputs.dark_readings.setValue(2)
    window.queue()
    experiment = window.manager.experiments[0]
    _wait(app, lambda: len(experiment.results.data) >= 3)
    window.abort()
    _wait(app, lambda: experiment.results.status is not None and not window.manager.is_running())
    assert experiment.results.status == "aborted"
    run = read_run(experiment.results.path)
    assert run.status == "aborted" and run.abort_reason == GUI_STOP_REASON
    assert 3 <= len(run.columns["data"]["voltage"][0]) < 25
    assert run.log[-1].kind == "aborted"
    window.close()


def test_runnable_procedures_follow_the_configured_instruments():
    from labrig.gui import runnable_procedures

    assert "sclc" in runnable_procedures(load_config("sclc_sim"))
    assert "jvl" not in runnable_procedures(load_config("sclc_sim"))  # no photometer
    assert {"jvl", "spectrum", "lifetime"} <= set(runnable_procedures(load_config("sim")))


def test_launch_refuses_a_procedure_the_bench_cannot_run(app, tmp_path):
    from labrig.errors import UserInputError
    from labrig.gui import launch

    with pytest.raises(UserInputError, match="runnable here: .*sclc"):
        launch(load_config("sclc_sim"), "jvl", tmp_path)
    with pytest.raises(UserInputError, match="unknown procedure"):
        launch(load_config("sclc_sim"), "nope", tmp_path)


def test_cli_gui_refuses_bad_procedure_with_exit_2(app, tmp_path):
    from click.testing import CliRunner

    from labrig.cli import main

    result = CliRunner().invoke(
        main, ["gui", "jvl", "--config", "sclc_sim", "-o", str(tmp_path / "runs")]
    )
    assert (result.exit_code, result.output) == (
        2,
        "labrig: error: device.kind: procedure jvl needs a device of kind led, but config "
        "'simulated SCLC bench' has kind single_carrier (sim-hole-only-CsPbBr3); use a config "
        "whose device.kind is led\n",
    )
    assert not (tmp_path / "runs").exists()
    # a mistyped procedure: did-you-mean, before Qt or the bench is touched
    result = CliRunner().invoke(main, ["gui", "Jlv", "--simulate", "-o", str(tmp_path / "runs")])
    assert (result.exit_code, result.output) == (
        2,
        "labrig: error: unknown procedure 'Jlv' (did you mean 'jvl'?); allowed: jvl, spectrum, "
        "pulsed-el, lifetime, solar-jv, sclc\n",
    )


def test_cli_gui_without_a_display_exits_2_with_one_line(tmp_path):
    """Qt aborts the process (core dump) without a display; labrig refuses first."""
    import subprocess

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    result = subprocess.run(
        [sys.executable, "-m", "labrig", "gui", "jvl", "--simulate", "-o", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "labrig: error: gui: no display to open a window on (DISPLAY and WAYLAND_DISPLAY are "
        "unset); run it in a desktop session or over ssh -X, or use labrig run\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_gui_inputs_follow_the_procedures_declaration_order(app, tmp_path):
    from labrig.gui import LabrigWindow
    from labrig.procedures.jvl import JVLProcedure

    window = LabrigWindow(JVLProcedure, load_config("sim"), tmp_path)
    layout = window.inputs.layout()
    shown = [
        name
        for i in range(layout.count())
        for name in window.inputs._inputs  # noqa: SLF001 - the widget keeps no other index
        if layout.itemAt(i).widget() is getattr(window.inputs, name)
    ]
    # labrig's order, not pymeasure's alphabetical one (breakdown_fraction first)
    assert shown[:4] == ["start_voltage", "stop_voltage", "step_voltage", "voltages"]
    assert shown.index("compliance_current") < shown.index("breakdown_fraction")
    window.close()


def test_gui_plot_axes_carry_units_also_after_a_column_change(app, tmp_path):
    from labrig.gui import LabrigWindow
    from labrig.procedures.jvl import JVLProcedure

    window = LabrigWindow(JVLProcedure, load_config("sim"), tmp_path)
    plot = window.plot_widget.plot_frame.plot
    assert plot.getAxis("bottom").labelText == "voltage (V)"
    assert plot.getAxis("left").labelText == "luminance L (cd/m²)"
    combo = window.plot_widget.columns_y
    combo.setCurrentIndex(combo.findText("current_density"))
    combo.activated.emit(combo.currentIndex())  # what a user's pick sends
    assert plot.getAxis("left").labelText == "current density J (mA/cm²)"
    assert plot.getAxis("left").labelUnits == ""  # no SI prefix games on mA/cm²
    window.close()


def _two_channel_lifetime_config():
    import yaml

    from labrig.config import parse_config, shipped_config_dir

    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["lifetime"].update(channels=2)
    return parse_config(data)


def test_gui_plots_every_lifetime_channel_and_opens_past_runs(app, tmp_path, monkeypatch):
    import numpy as np
    from pymeasure.display.Qt import QtWidgets

    from labrig.gui import LabrigWindow
    from labrig.procedures.lifetime import LifetimeProcedure

    cfg = _two_channel_lifetime_config()
    window = LabrigWindow(LifetimeProcedure, cfg, tmp_path)
    window.inputs.drive.setValue("current density")
    window.inputs.levels.setValue("5")
    window.inputs.stop_at.setValue("T95")
    window.inputs.ramp_dwell.setValue(0.5)
    window.queue()
    live = window.manager.experiments[0]
    _wait(app, lambda: live.results.status is not None and not window.manager.is_running())
    assert live.results.status == "finished", live.results.reason
    run = read_run(live.results.path)
    y_axis = window.plot_widget.plot_frame.y_axis

    def curves(experiment) -> list:
        return [c for c in experiment.curve_list if c is not None]  # the log widget's: None

    def plotted(experiment) -> dict[str, np.ndarray]:
        return {c.results.group: np.asarray(c.getData()[1]) for c in curves(experiment)}

    def in_file(group: str) -> np.ndarray:
        return run.columns[group][y_axis][0]

    # one curve per channel, in its own colour, holding every row the file holds
    assert live.results.groups == ["channel_01", "channel_02"]
    assert len({c.opts["pen"].color().name() for c in curves(live)}) == 2
    for group, y in plotted(live).items():
        assert len(y) >= 5
        np.testing.assert_allclose(y, in_file(group))

    # the Open button: the file comes back into a fresh window's browser and plot
    (tmp_path / "notes.h5").write_text("not a run")
    picked = [str(live.results.path), str(tmp_path / "notes.h5")]
    monkeypatch.setattr(
        QtWidgets.QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: (picked, ""))
    )
    other = LabrigWindow(LifetimeProcedure, cfg, tmp_path)
    assert other.browser_widget.open_button.isEnabled()
    other.browser_widget.open_button.click()
    other.browser_widget.open_button.click()  # a file already open is not opened twice
    assert len(other.manager.experiments.queue) == 1
    opened = other.manager.experiments[0]
    assert opened.browser_item.text(1) == live.results.path.name
    assert opened.procedure.status == opened.procedure.FINISHED
    assert opened.procedure.levels == "5" and opened.procedure.stop_at == "T95"
    assert set(plotted(opened)) == {"channel_01", "channel_02"}
    for group, y in plotted(opened).items():
        np.testing.assert_allclose(y, in_file(group))
    window.close()
    other.close()


def test_gui_open_refuses_another_procedures_run_in_one_line(app, tmp_path, caplog):
    import logging

    from labrig.gui import LabrigWindow
    from labrig.procedures.jvl import JVLProcedure
    from labrig.procedures.sclc import SCLCProcedure
    from labrig.runner import run_procedure

    proc = SCLCProcedure()
    proc.set_parameters({"points": 11})
    sclc_run = run_procedure(proc, load_config("sclc_sim"), output_dir=tmp_path, progress=False)
    window = LabrigWindow(JVLProcedure, load_config("sim"), tmp_path)
    with caplog.at_level(logging.ERROR, logger="labrig.gui"):
        window.open_runs([sclc_run.path])
    assert len(window.manager.experiments.queue) == 0
    assert [r.getMessage() for r in caplog.records if r.name == "labrig.gui"] == [
        f"not opened: {sclc_run.path}: a sclc run; this window shows jvl runs"
    ]
    # an sclc window takes it, with its one curve
    sclc_window = LabrigWindow(SCLCProcedure, load_config("sclc_sim"), tmp_path)
    sclc_window.open_runs([sclc_run.path])
    (opened,) = sclc_window.manager.experiments.queue
    assert len(opened.results.data) == 11
    assert len([c for c in opened.curve_list if c is not None]) == 1
    window.close()
    sclc_window.close()
