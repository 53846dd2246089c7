"""``labrig gui``: pymeasure's ``ManagedWindow`` driving labrig's runner.

pymeasure's window is a good front end (parameter inputs, a queue, live plot, log,
abort) but its back end is not ours: its ``Worker`` runs ``startup``/``execute``
itself and records rows into a CSV ``Results``.  A run from the GUI must be the same
run as ``labrig run``: validated first, the bench opened and shut down safely by
``labrig.bench``, one HDF5 file written by ``labrig.store`` through
``labrig.runner.run_procedure``.  So three pymeasure pieces are replaced by adapters:

* ``RunResults`` stands where the window expects a ``Results``: it is one of the run's
  subscribers (``labrig.dispatch``), so it learns the run file's name from
  ``RunStarted`` and keeps the rows received so far as the ``data`` DataFrame the live
  plot polls.  Nothing is written by it; the run's HDF5 writer writes the file.
* ``RunWorker`` stands where the manager expects a ``Worker`` (a thread with a
  ``monitor_queue`` of status/progress messages).  It calls ``run_procedure`` with
  ``RunResults``, Python logging and its own progress forwarder as the subscribers (no
  terminal progress), and the window's Abort asks the run's state machine to stop
  (``StopControl.request_stop``): the runner ends the run like a Ctrl-C (outputs ramped
  off, file closed ``aborted``).
* ``RunManager`` is pymeasure's ``Manager`` starting a ``RunWorker``.

The plot draws one curve per data group the run has (every lifetime channel, each solar
scan; ``plotted_groups``), and the browser's Open button reads past labrig run files
through the store's reader (``FileResults``) into the browser and the plot.

Qt comes from the optional ``gui`` extra (PySide6-Essentials); this module imports it,
so ``labrig.cli`` imports this module only inside the ``gui`` command.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from queue import Queue
from typing import Any

from pymeasure.display.manager import Manager
from pymeasure.display.Qt import QtWidgets
from pymeasure.display.windows.managed_window import ManagedWindow
from pymeasure.experiment import Procedure
from pymeasure.thread import StoppableThread

from labrig.config import BenchConfig
from labrig.errors import LabrigError, UserInputError
from labrig.parameters import parameter_objects
from labrig.procedure import LabrigProcedure
from labrig.records import Progress, Record, Row, Rows, RunStarted
from labrig.run_state import StopControl
from labrig.store import DEFAULT_GROUP
from labrig.subscribers import LoggingSubscriber

log = logging.getLogger(__name__)

STATUS = {
    "finished": Procedure.FINISHED,
    "aborted": Procedure.ABORTED,
    "failed": Procedure.FAILED,
}
GUI_STOP_REASON = "stopped from the GUI"


def plotted_groups(procedure: LabrigProcedure) -> list[str]:
    """The data groups the plot shows, one curve each: the extra groups when the
    procedure has them (every lifetime channel, each solar scan), else the main one."""
    return list(procedure.data_groups()) or [DEFAULT_GROUP]


class RunRows:
    """A run's rows per data group, as the DataFrames pymeasure's curves poll (the run's
    thread appends, Qt's thread reads: one lock)."""

    def __init__(self, procedure: LabrigProcedure, groups: Sequence[str]) -> None:
        self.procedure = procedure
        self.groups = list(groups)
        self._columns = [c.name for c in procedure.COLUMNS]
        self._rows = {g: {c: [] for c in self._columns} for g in self.groups}
        self._lock = threading.Lock()

    def extend(self, group: str, columns: Mapping[str, Sequence[Any]], n: int) -> None:
        """Append ``n`` rows given as columns to ``group`` (missing columns: NaN)."""
        rows = self._rows.get(group)
        if rows is None or not n:
            return
        with self._lock:
            for name, values in rows.items():
                values.extend(columns[name] if name in columns else [math.nan] * n)

    def frame(self, group: str):
        import pandas as pd

        with self._lock:
            return pd.DataFrame({c: list(v) for c, v in self._rows[group].items()})

    @property
    def data(self):
        """The first plotted group (pymeasure's ``Results.data``)."""
        return self.frame(self.groups[0])

    def reload(self) -> None:
        """pymeasure's curves may ask for a reload; the rows are already in memory."""


class GroupRows:
    """One data group of a ``RunRows``, where a pymeasure curve expects a ``Results``."""

    def __init__(self, rows: RunRows, group: str) -> None:
        self.rows, self.group = rows, group

    @property
    def procedure(self) -> LabrigProcedure:
        return self.rows.procedure

    @property
    def data(self):
        return self.rows.frame(self.group)

    def reload(self) -> None:
        """Nothing to reload (``RunRows.reload``)."""


class RunResults(RunRows):
    """What the window reads while a run goes on (see the module docstring)."""

    kinds = (RunStarted, Row, Rows)

    def __init__(self, procedure: LabrigProcedure, output_dir: Path) -> None:
        super().__init__(procedure, plotted_groups(procedure))
        self.output_dir = Path(output_dir)
        self.data_filename = str(self.output_dir / f"{procedure.NAME}: starting…")
        self.path: Path | None = None
        self.status: str | None = None
        self.reason: str | None = None

    def __call__(self, record: Record) -> None:
        """The run's records: the file's name, and the rows of the plotted groups."""
        if isinstance(record, RunStarted):
            self.data_filename = str(record.path)
        elif isinstance(record, Row):
            values = {k: [v] for k, v in record.values.items()}
            self.extend(record.group or DEFAULT_GROUP, values, 1)
        elif isinstance(record, Rows):
            self.extend(record.group or DEFAULT_GROUP, record.columns, len(record))


class FileResults(RunRows):
    """A past run file, read through the store's reader, where the window expects a
    ``Results`` (the browser shows its parameters and status, the plot its groups)."""

    def __init__(self, procedure_class: type[LabrigProcedure], path: Path) -> None:
        from labrig.store import load_run

        loaded = load_run(path)  # one line (LabrigError) for a non-run or unreadable file
        run = loaded.run
        if run.procedure != procedure_class.NAME:
            raise UserInputError(
                f"{path}: a {run.procedure} run; this window shows {procedure_class.NAME} runs"
            )
        procedure = procedure_class()
        for name, (value, _units) in run.parameters.items():
            if name in procedure.parameter_objects():
                setattr(procedure, name, value)
        procedure.status = STATUS.get(run.status, Procedure.FAILED)
        groups = [g for g in run.groups if g != DEFAULT_GROUP] or [DEFAULT_GROUP]
        super().__init__(procedure, groups)
        for group in groups:
            table = loaded.table(group)
            self.extend(group, table, len(next(iter(table.values()), ())))
        self.path = Path(path)
        self.data_filename = str(path)
        self.status, self.reason = run.status, run.abort_reason


class RunWorker(StoppableThread):
    """Runs one procedure through ``labrig.runner.run_procedure`` in a thread."""

    def __init__(self, results: RunResults, config: BenchConfig) -> None:
        super().__init__()
        self.results = results
        self.config = config
        self.monitor_queue: Queue = Queue()
        self.is_last = lambda: True
        self.control = StopControl()

    def _status(self, status: int) -> None:
        self.results.procedure.status = status
        self.monitor_queue.put(("status", status))

    def stop(self) -> None:
        """The window's Abort: ask the run to stop (ramp down, outputs off, aborted)."""
        super().stop()
        self.control.request_stop(GUI_STOP_REASON)

    def _progress(self, record: Record) -> None:
        if isinstance(record, Progress):
            self.monitor_queue.put(("progress", float(record.percent)))

    _progress.kinds = (Progress,)  # type: ignore[attr-defined]

    def run(self) -> None:
        from labrig.runner import run_procedure

        self._status(Procedure.RUNNING)
        self.monitor_queue.put(("progress", 0.0))
        status = Procedure.FAILED
        try:
            result = run_procedure(
                self.results.procedure,
                self.config,
                output_dir=self.results.output_dir,
                subscribers=[self.results, self._progress, LoggingSubscriber()],
                stop=self.control,
            )
        except UserInputError as exc:  # refused before anything was opened or written
            self.results.status, self.results.reason = "failed", str(exc)
            log.error("not started: %s", exc)
        except (LabrigError, OSError) as exc:
            self.results.status, self.results.reason = "failed", str(exc)
            log.error("run failed: %s", exc)
        else:
            self.results.path = result.path
            self.results.data_filename = str(result.path)
            self.results.status, self.results.reason = result.status, result.reason
            status = STATUS.get(result.status, Procedure.FAILED)
            log.info("%s: %s", result.status, result.path)
            if result.reason:
                log.warning("reason: %s", result.told or result.reason)
        finally:
            if status == Procedure.FINISHED:
                self.monitor_queue.put(("progress", 100.0))
            self._status(status)
            self.monitor_queue.put(None)


class RunManager(Manager):
    """pymeasure's Manager, starting a ``RunWorker`` instead of its CSV ``Worker``."""

    config: BenchConfig

    def next(self) -> None:
        from pymeasure.display.listeners import Monitor

        if self.is_running():
            raise RuntimeError("another procedure is already running")
        if not self.experiments.has_next():
            return
        experiment = self.experiments.next()
        self._running_experiment = experiment
        self._worker = RunWorker(experiment.results, self.config)
        self._worker.is_last = lambda: not self.experiments.has_next()
        self._monitor = Monitor(self._worker.monitor_queue)
        self._monitor.worker_running.connect(self._running)
        self._monitor.worker_failed.connect(self._failed)
        self._monitor.worker_abort_returned.connect(self._abort_returned)
        self._monitor.worker_finished.connect(self._finish)
        self._monitor.progress.connect(self._update_progress)
        self._monitor.status.connect(self._update_status)
        self._monitor.log.connect(self._update_log)
        self._monitor.start()
        self._worker.start()

    def _finished_file(self, experiment) -> None:
        """Show the run file's name in the browser once the runner has named it, and
        every row in the plot (its timer only redraws while a run goes on)."""
        experiment.data_filename = experiment.results.data_filename
        experiment.browser_item.setText(1, Path(experiment.results.data_filename).name)
        for curve in experiment.curve_list:
            if curve is not None:  # a widget without curves (pymeasure's own check)
                curve.update_data()

    def _finish(self) -> None:
        self._finished_file(self._running_experiment)
        super()._finish()

    def _failed(self) -> None:
        self._finished_file(self._running_experiment)
        super()._failed()

    def _abort_returned(self) -> None:
        self._finished_file(self._running_experiment)
        super()._abort_returned()


class LabrigWindow(ManagedWindow):
    """The pymeasure window for one labrig procedure on one bench config."""

    def __init__(self, procedure_class: type[LabrigProcedure], config: BenchConfig, output_dir):
        self.config = config
        self.output_dir = Path(output_dir)
        columns = list(procedure_class.DATA_COLUMNS)
        x_axis = procedure_class.AXIS or columns[0]
        y_axis = procedure_class.SIGNAL or columns[min(1, len(columns) - 1)]
        super().__init__(
            procedure_class,
            # labrig's declaration order (pymeasure's own parameter_objects is
            # alphabetical: stop_voltage would sit far from start_voltage)
            inputs=list(parameter_objects(procedure_class)),
            displays=(),
            x_axis=x_axis,
            y_axis=y_axis,
            enable_file_input=False,  # the store names the files
        )
        self.setWindowTitle(
            f"labrig {procedure_class.NAME} — {config.name} ({config.device.sample}) -> {self.output_dir}"
        )
        self._label_axes_with_units(procedure_class)

    def new_curve(self, wdg, results, color=None, **kwargs):
        """One curve per plotted group (every lifetime channel), each in its own colour;
        pymeasure's single curve for a run with one group."""
        groups = getattr(results, "groups", ())
        if len(groups) <= 1:
            return super().new_curve(wdg, results, color=color, **kwargs)
        import pyqtgraph as pg

        return [
            super(LabrigWindow, self).new_curve(
                wdg, GroupRows(results, group), color=pg.intColor(i, hues=len(groups)), **kwargs
            )
            for i, group in enumerate(groups)
        ]

    def open_experiment(self) -> None:
        """The browser's Open button: past labrig run files (not pymeasure CSVs)."""
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self,
            "Open labrig run files",
            str(self.output_dir),
            "labrig run files (*.h5 *.hdf5 *.nxs);;all files (*)",
        )
        self.open_runs([Path(p) for p in paths])

    def open_runs(self, paths: Sequence[Path]) -> None:
        """Show each run file in the browser and the plot; a file that is not a run of
        this procedure is refused with one line in the log."""
        for path in paths:
            if str(path) in self.manager.experiments:  # pymeasure compares the file names
                log.warning("%s is open already", path)
                continue
            try:
                results = FileResults(self.procedure_class, path)
            except LabrigError as exc:
                log.error("not opened: %s", exc)
                continue
            experiment = self.new_experiment(results)
            for curve in experiment.curve_list:
                if curve is not None:
                    curve.update_data()
            experiment.browser_item.progressbar.setValue(100)
            self.manager.load(experiment)
            log.info("opened %s (%s)", path, results.status)

    def _label_axes_with_units(self, procedure_class: type[LabrigProcedure]) -> None:
        """Axis titles with units from the procedure's columns, now and whenever the user
        picks another column (pymeasure only finds units written into a column name)."""
        from labrig.report.style import axis_label

        names = {c.name: axis_label(c.long_name, c.units) for c in procedure_class.COLUMNS}
        frame = self.plot_widget.plot_frame

        def relabel(side: str, column: str) -> None:
            frame.plot.setLabel(side, names.get(column, column), **frame.LABEL_STYLE)

        frame.x_axis_changed.connect(lambda column: relabel("bottom", column))
        frame.y_axis_changed.connect(lambda column: relabel("left", column))
        relabel("bottom", frame.x_axis)
        relabel("left", frame.y_axis)

    def _setup_ui(self) -> None:
        super()._setup_ui()
        manager = RunManager(self.widget_list, self.browser, log_level=self.log_level, parent=self)
        manager.config = self.config
        manager.abort_returned.connect(self.abort_returned)
        manager.queued.connect(self.queued)
        manager.running.connect(self.running)
        manager.finished.connect(self.finished)
        manager.failed.connect(self.finished)  # a failed run ends like a finished one
        manager.log.connect(self.log.handle)
        self.manager = manager

    def queue(self, procedure: LabrigProcedure | None = None) -> None:
        """Queue a run, refused in one logged line if its parameters do not fit the bench
        (validated now too: the plot's groups, e.g. lifetime channels, follow the config)."""
        procedure = procedure if procedure is not None else self.make_procedure()
        try:
            procedure.validate(self.config)
        except UserInputError as exc:
            log.error("not queued: %s", exc)
            return
        procedure.status = Procedure.QUEUED
        experiment = self.new_experiment(RunResults(procedure, self.output_dir))
        self.manager.queue(experiment)


def runnable_procedures(config: BenchConfig) -> list[str]:
    """Procedures whose required instruments and device kind the config has."""
    from labrig import registry

    names = []
    for entry in registry.measurements():
        roles = entry.procedure_class().REQUIRED_ROLES
        if entry.fits(config) and all(role in config.instruments for role in roles):
            names.append(entry.name)
    return names


def check_display(environ: Mapping[str, str] | None = None) -> None:
    """Refuse, in one line, to start Qt where it would abort the process: on Linux without
    an X11 or Wayland display and no other Qt platform chosen (QT_QPA_PLATFORM)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        raise UserInputError(
            "gui: no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset); "
            "run it in a desktop session or over ssh -X, or use labrig run"
        )


def launch(config: BenchConfig, procedure: str | None, output_dir: Path) -> int:
    """Open the window (asking which procedure when none is given) and run Qt's loop."""
    from labrig import registry
    from labrig.store import check_output_dir

    check_display()  # before anything is created: Qt would abort the process
    output_dir = check_output_dir(Path(output_dir))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    names = runnable_procedures(config)
    if procedure is None:
        if not names:
            raise UserInputError(f"config {config.name}: no procedure can run on its instruments")
        procedure, ok = QtWidgets.QInputDialog.getItem(
            None, "labrig", "Procedure:", names, 0, False
        )
        if not ok:
            return 0
    measurement = registry.measurement(procedure)
    procedure = measurement.name
    if procedure not in names:
        raise UserInputError(
            f"procedure {procedure!r} needs instruments config {config.name!r} does not have; "
            f"runnable here: {', '.join(names) or 'none'}"
        )
    window = LabrigWindow(measurement.procedure_class(), config, output_dir)
    window.show()
    return app.exec()
