"""``labrig gui``: pymeasure's ``ManagedWindow`` driving labrig's runner.

pymeasure's window is a good front end (parameter inputs, a queue, live plot, log,
abort) but its back end is not ours: its ``Worker`` runs ``startup``/``execute``
itself and records rows into a CSV ``Results``.  A run from the GUI must be the same
run as ``labrig run``: validated first, the bench opened and shut down safely by
``labrig.bench``, one HDF5 file written by ``labrig.store`` through
``labrig.runner.run_procedure``.  So three pymeasure pieces are replaced by adapters:

* ``RunResults`` stands where the window expects a ``Results``: it holds the
  procedure, the run file's name (known once the runner has created it) and the rows
  received so far as the ``data`` DataFrame the live plot polls.  Nothing is written by
  it; the store writes the file.
* ``RunWorker`` stands where the manager expects a ``Worker`` (a thread with a
  ``monitor_queue`` of status/progress messages).  It calls ``run_procedure``; through
  the runner's ``bench_factory`` hook (called after the runner has wired the
  procedure's ``emit`` and ``should_stop``) it tees every emitted record to
  ``RunResults`` and makes the window's Abort end the run as *aborted*: once the
  worker is asked to stop, the procedure's next ``should_stop()`` raises ``RunAborted``
  which the runner records like a Ctrl-C (outputs ramped off, file closed ``aborted``).
* ``RunManager`` is pymeasure's ``Manager`` starting a ``RunWorker``.

Qt comes from the optional ``gui`` extra (PySide6-Essentials); this module imports it,
so ``labrig.cli`` imports this module only inside the ``gui`` command.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from queue import Queue
from typing import Any

from pymeasure.display.manager import Manager
from pymeasure.display.Qt import QtWidgets
from pymeasure.display.windows.managed_window import ManagedWindow
from pymeasure.experiment import Procedure
from pymeasure.thread import StoppableThread

from labrig.config import BenchConfig
from labrig.errors import LabrigError, RunAborted, UserInputError
from labrig.parameters import parameter_objects
from labrig.procedure import GROUP_KEY, LabrigProcedure

log = logging.getLogger(__name__)

STATUS = {
    "finished": Procedure.FINISHED,
    "aborted": Procedure.ABORTED,
    "failed": Procedure.FAILED,
}
GUI_STOP_REASON = "stopped from the GUI"


class RunResults:
    """What the window reads while a run goes on (see the module docstring)."""

    def __init__(self, procedure: LabrigProcedure, output_dir: Path) -> None:
        self.procedure = procedure
        self.output_dir = Path(output_dir)
        self.data_filename = str(self.output_dir / f"{procedure.NAME}: starting…")
        self.path: Path | None = None
        self.status: str | None = None
        self.reason: str | None = None
        groups = list(procedure.data_groups())
        #: the group the live plot shows: the default one, or the first extra group
        #: (a lifetime run's channels); the file holds them all
        self.group = None if not groups else groups[0]
        self._columns = [c.name for c in procedure.COLUMNS]
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, topic: str, record: Any) -> int:
        """Keep the rows of the plotted group; return how many rows arrived."""
        if topic not in ("results", "batch results"):
            return 0
        record = dict(record)
        group = record.pop(GROUP_KEY, None)
        if topic == "results":
            rows = [record]
        else:
            n = max((len(v) for v in record.values()), default=0)
            rows = [{k: v[i] for k, v in record.items()} for i in range(n)]
        if group == self.group:
            with self._lock:
                self._rows.extend(rows)
        return len(rows)

    @property
    def data(self):
        import pandas as pd

        with self._lock:
            return pd.DataFrame(list(self._rows), columns=self._columns)

    def reload(self) -> None:
        """pymeasure's curves may ask for a reload; the rows are already in memory."""


class RunWorker(StoppableThread):
    """Runs one procedure through ``labrig.runner.run_procedure`` in a thread."""

    def __init__(self, results: RunResults, config: BenchConfig) -> None:
        super().__init__()
        self.results = results
        self.config = config
        self.monitor_queue: Queue = Queue()
        self.is_last = lambda: True

    def _status(self, status: int) -> None:
        self.results.procedure.status = status
        self.monitor_queue.put(("status", status))

    def _bench_factory(self, config: BenchConfig, roles: list[str]):
        """The runner's bench hook: tee the runner-wired ``emit`` to the window and let
        Abort stop the run (the runner has already set both when it builds the bench)."""
        from labrig.bench import Bench

        proc = self.results.procedure
        runner_emit, runner_should_stop = proc.emit, proc.should_stop
        expected = proc.estimated_points()
        counted = {"rows": 0, "explicit": False}

        def emit(topic: str, record: Any) -> None:
            runner_emit(topic, record)
            rows = self.results.record(topic, record)
            if topic == "progress":
                counted["explicit"] = True
                self.monitor_queue.put(("progress", float(record)))
            elif rows and expected and not counted["explicit"]:
                counted["rows"] += rows
                self.monitor_queue.put(("progress", min(100.0, 100.0 * counted["rows"] / expected)))

        def should_stop() -> bool:
            if self.should_stop():
                raise RunAborted(GUI_STOP_REASON)
            return runner_should_stop()

        proc.emit = emit  # type: ignore[method-assign]
        proc.should_stop = should_stop  # type: ignore[method-assign]
        return Bench(config, roles)

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
                progress=False,
                bench_factory=self._bench_factory,
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
                log.warning("reason: %s", result.reason)
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
        """Show the run file's name in the browser once the runner has named it."""
        experiment.data_filename = experiment.results.data_filename
        experiment.browser_item.setText(1, Path(experiment.results.data_filename).name)

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
        self.browser_widget.open_button.setEnabled(False)  # opens pymeasure CSVs only
        self._label_axes_with_units(procedure_class)

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
        procedure = procedure if procedure is not None else self.make_procedure()
        procedure.status = Procedure.QUEUED
        experiment = self.new_experiment(RunResults(procedure, self.output_dir))
        self.manager.queue(experiment)


def runnable_procedures(config: BenchConfig) -> list[str]:
    """Procedures whose required instruments and device kind the config has."""
    from labrig import procedures as registry

    names = []
    for name in registry.available():
        cls = registry.load(name)
        kinds_fit = not cls.DEVICE_KINDS or config.device.kind in cls.DEVICE_KINDS
        if kinds_fit and all(role in config.instruments for role in cls.REQUIRED_ROLES):
            names.append(name)
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
    from labrig import procedures as registry
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
    procedure = registry.resolve(procedure)
    if procedure not in names:
        raise UserInputError(
            f"procedure {procedure!r} needs instruments config {config.name!r} does not have; "
            f"runnable here: {', '.join(names) or 'none'}"
        )
    window = LabrigWindow(registry.load(procedure), config, output_dir)
    window.show()
    return app.exec()
