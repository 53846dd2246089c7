"""Run one ``LabrigProcedure`` against the bench and the run store.

The order matters and is the point of this module:

1. ``procedure.validate(config)``, the roles and the output directory are checked before
   anything is opened or written (a user mistake touches no instrument);
2. the run file is created (status ``running``), then the bench is opened and the
   instrument identities recorded;
3. ``startup``/``execute`` run with ``emit`` wired to the store, the progress display and
   python logging, and ``should_stop`` wired to the signal handlers;
4. whatever happens, ``procedure.shutdown`` and then the bench's safe shutdown run, and
   the file is closed with status ``finished``, ``aborted`` (SIGINT/SIGTERM) or ``failed``
   (an exception, recorded with its type and message).

Signals: every catchable termination signal (``SIGNALS``: SIGINT, SIGTERM, SIGHUP when
the terminal or SSH session goes, SIGQUIT, ...) is handled alike.  The first raises
``RunAborted`` in the main thread, so even an instrument call blocked on I/O is
interrupted, and ``should_stop()`` turns True; the file records which signal.  A second one
while outputs are being ramped down skips the ramp (outputs go off at once); further ones
are ignored until the outputs are off.  Store writes are never torn by a signal: the
handler defers its exception until the write is done.  SIGKILL cannot be caught: after one,
``labrig safe-off`` turns the outputs off.

A shutdown that cannot confirm every output is off outranks every other ending: the run is
``failed`` with the problem first in its reason, whatever stopped it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrig.bench import Bench
from labrig.config import BenchConfig, resolved_configuration
from labrig.errors import (
    ConfigError,
    LabrigError,
    ParameterError,
    RunAborted,
    UserInputError,
)
from labrig.procedure import GROUP_KEY, LabrigProcedure
from labrig.storable import check_storable
from labrig.store import RunData, RunStore, check_output_dir, read_run
from labrig.terminal import say

log = logging.getLogger(__name__)

#: every signal that would end the process and that a handler can catch (SIGKILL and
#: SIGSTOP cannot be); SIGALRM and SIGPROF are left to timers and profilers
SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGXCPU",
        "SIGPWR",
    )
    if hasattr(signal, name)
)


@dataclass
class RunResult:
    """Where the run went and how it ended."""

    path: Path
    status: str
    reason: str | None
    #: figures of the main data group ``{name: (value, units)}``; other groups as "group/name"
    analysis: dict[str, tuple[Any, str]] = field(default_factory=dict)
    #: what the safe shutdown could not do ("role: problem"); empty when every output is
    #: confirmed off.  Non-empty means the status is "failed": someone must check the bench.
    unsafe: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- signals
class StopControl:
    """Termination-signal handling for one run: abort, then hurry, then ignore."""

    RUN, RAMP, FAST = "run", "ramp", "fast"

    def __init__(self) -> None:
        self.phase = self.RUN
        self.reason: str | None = None
        self.hurry = False
        self._depth = 0
        self._pending = False
        self._previous: dict[int, Any] = {}
        self._patience_asked = False

    def should_stop(self) -> bool:
        return self.reason is not None

    @contextlib.contextmanager
    def installed(self, restore: bool = True) -> Iterator[StopControl]:
        """Own every termination signal for the duration (main thread only), then restore
        the previous handlers; with ``restore`` False ignore them instead (the process is
        about to exit: a late signal must not kill it with -SIG, even while Python
        finalises, which resets handlers written in Python but keeps SIG_IGN)."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            while self._previous:
                sig, handler = self._previous.popitem()
                signal.signal(sig, handler if restore else signal.SIG_IGN)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """No RunAborted inside this block (a half-written row would misalign columns);
        a stop that arrived meanwhile is raised when the block ends normally."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self._pending:
            self._pending = False
            raise RunAborted(self.reason or "stopped")

    def finishing(self) -> None:
        """Outputs are off; from now on signals only ask for patience (the file closes)."""
        self._pending = False
        self.phase = self.FAST

    def enter_shutdown(self) -> None:
        self._pending = False
        self.phase = self.FAST if self.hurry else self.RAMP

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.phase == self.RUN:
            if self.reason is None:
                self.reason = f"interrupted by {name}"
                say(f"labrig: {name}: stopping, ramping outputs down (again to skip the ramp)")
                if self._depth:
                    self._pending = True
                    return
                raise RunAborted(self.reason)
            # again before the shutdown began (the first was swallowed or is still being
            # handled): stop again, and skip the ramp when the shutdown comes
            self.hurry = True
            if self._depth:
                self._pending = True
                return
            raise RunAborted(self.reason)
        if self.phase == self.RAMP:
            if self.reason is None:
                self.reason = f"interrupted by {name} during shutdown"
            self.hurry = True
            self.phase = self.FAST
            say(f"labrig: {name}: skipping the ramp, outputs off now")
            if not self._depth:
                raise RunAborted(self.reason)
            return
        if not self._patience_asked:  # once: a storm of signals is not a storm of lines
            self._patience_asked = True
            say(f"labrig: {name}: finishing safely, please wait")


# --------------------------------------------------------------------------- progress
class ProgressDisplay:
    """Progress of a run on stderr: a tqdm bar on a terminal; plain lines otherwise (a
    log file, a pipe), at each tenth of the run and otherwise at most every
    ``line_interval(elapsed)``; nothing at all when ``mode`` is False (``--no-progress``).
    Times are h:mm:ss (tqdm's own formatting), so a 30-hour lifetime run reads as such."""

    def __init__(self, name: str, mode: bool | None) -> None:
        """``mode``: True bar, False silent, None bar on a terminal else lines."""
        from tqdm import tqdm

        self.name = name
        self._format = tqdm.format_interval
        self._bar = None
        self._lines = mode is None and not sys.stderr.isatty()
        self._start = time.monotonic()
        self._last_line = (-100.0, 0.0)
        if mode or (mode is None and sys.stderr.isatty()):
            self._bar = tqdm(
                total=100.0,
                desc=name,
                unit="%",
                file=sys.stderr,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
            )

    @staticmethod
    def line_interval(elapsed: float) -> float:
        """Seconds between plain progress lines: 10 s early on, then a tenth of the time
        run so far, at most 15 min (a day-long run logs ~100 lines, not 8640)."""
        return min(max(10.0, elapsed / 10), 900.0)

    def update(self, percent: float) -> None:
        percent = min(max(float(percent), 0.0), 100.0)
        if self._bar is not None:
            self._bar.update(percent - self._bar.n)
            return
        if not self._lines:
            return
        now = time.monotonic()
        last_pct, last_t = self._last_line
        elapsed = now - self._start
        new_decile = int(percent // 10) > int(last_pct // 10)
        if new_decile or (now - last_t >= self.line_interval(elapsed) and percent > last_pct):
            say(self.line(percent, elapsed))
            self._last_line = (percent, now)

    def line(self, percent: float, elapsed: float) -> str:
        eta = self._format(elapsed * (100 - percent) / percent) if percent > 0 else "unknown"
        return (
            f"labrig: {self.name}: {percent:.0f}% done, {self._format(elapsed)} elapsed, ETA {eta}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# --------------------------------------------------------------------------- the run
def _parameters(
    procedure: LabrigProcedure, config: BenchConfig
) -> tuple[dict[str, tuple[Any, str]], dict[str, Any]]:
    """Every parameter as used ``{name: (value, units)}``, and ``{name: value asked}`` for
    those the procedure resolved to another value (``resolved_parameters``)."""
    used = {
        name: (param.value, getattr(param, "units", None) or "")
        for name, param in procedure.parameter_objects().items()
    }
    requested = {}
    for name, value in procedure.resolved_parameters(config).items():
        asked, units = used[name]
        if value != asked:
            requested[name] = asked
            used[name] = (value, units)
    return used, requested


def _roles(procedure: LabrigProcedure, config: BenchConfig) -> list[str]:
    missing = [r for r in procedure.REQUIRED_ROLES if r not in config.instruments]
    if missing:
        configured = ", ".join(config.instruments) or "none"
        raise ConfigError(
            f"instruments: procedure {procedure.NAME or type(procedure).__name__} needs the "
            f"role(s) {', '.join(missing)}, which the config does not define "
            f"(configured: {configured})"
        )
    optional = [r for r in procedure.OPTIONAL_ROLES if r in config.instruments]
    return list(dict.fromkeys([*procedure.REQUIRED_ROLES, *optional]))


def _check_numbers(procedure: LabrigProcedure) -> None:
    """No NaN parameter reaches ``validate``: pymeasure's range check passes NaN (every
    comparison is False), and a procedure's arithmetic on it fails with a traceback."""
    for pname in procedure.parameter_objects():
        value = getattr(procedure, pname, None)
        if isinstance(value, float) and math.isnan(value):
            raise ParameterError(f"{pname}=nan: not a number; give a finite value")


def run_procedure(
    procedure: LabrigProcedure,
    config: BenchConfig,
    *,
    output_dir: Path,
    sample: str | None = None,
    operator: str = "",
    progress: bool | None = None,
    bench_factory: Callable[[BenchConfig, list[str]], Bench] = Bench,
    resume: Path | None = None,
    hold_signals: bool = False,
) -> RunResult:
    """Run ``procedure`` on the bench described by ``config``; see the module docstring.

    User mistakes (``UserInputError``) found before the run starts propagate and nothing
    is written; once the file exists every ending is recorded in it and returned.
    ``hold_signals``: ignore termination signals afterwards (for a process that exits
    right after the run: its exit status must not turn into -SIG under a signal storm).
    """
    name = procedure.NAME or type(procedure).__name__
    if resume is not None:
        if not procedure.SUPPORTS_RESUME:
            raise UserInputError(f"--resume: procedure {name!r} cannot resume a run")
        # the procedure reads what was written before the store reopens (and locks) it
        procedure.resume_from = Path(resume)
    for what, text in (("--sample", sample), ("--operator", operator)):
        try:
            check_storable(text or "", what)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
    _check_numbers(procedure)
    procedure.validate(config)
    roles = _roles(procedure, config)
    resumed = None
    if resume is not None:
        resumed = _check_resumable(Path(resume), name, procedure)
    else:
        output_dir = check_output_dir(Path(output_dir))
    control = StopControl()
    with control.installed(restore=not hold_signals):
        store = _open_store(
            procedure, config, roles, name, output_dir, sample, operator, resume, control
        )
        return _run(
            procedure, config, roles, name, store, control, progress, bench_factory, resumed
        )


def interrupt_on_signals() -> None:
    """Until a run owns them, every termination signal raises ``KeyboardInterrupt`` (a
    command line then exits 130 with nothing touched, as for Ctrl-C, instead of dying)."""

    def interrupt(signum: int, frame: Any) -> None:
        for sig in SIGNALS:  # the process is leaving: later ones must not kill it
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in SIGNALS:
        signal.signal(sig, interrupt)


def _check_resumable(path: Path, name: str, procedure: LabrigProcedure) -> RunData:
    """Only a run of the same procedure with the same columns can be continued; its
    contents (read before the store locks the file for writing)."""
    previous = read_run(path)  # NotARunFileError (one line) if it is not a run file
    if previous.procedure != name:
        raise UserInputError(f"resume {path}: it is a {previous.procedure!r} run, not {name!r}")
    expected = [c.name for c in procedure.COLUMNS]
    found = list(previous.columns.get("data", {}))
    if found != expected:
        raise UserInputError(f"resume {path}: its columns {found} differ from {name}'s {expected}")
    if previous.status == "finished":
        raise UserInputError(f"resume {path}: the run already finished; start a new one")
    return previous


def _procedure_shutdown(procedure: LabrigProcedure, store: RunStore, control: StopControl) -> None:
    """The procedure's own shutdown; a failure there must not keep the bench on."""
    try:
        procedure.shutdown()
    except RunAborted:
        log.warning("procedure shutdown interrupted; the bench turns the outputs off")
    except Exception as exc:  # noqa: BLE001
        message = f"procedure shutdown failed: {type(exc).__name__}: {exc}"
        log.error(message)
        with control.deferred():
            store.log("error", message, logging.ERROR)


def _bench_shutdown(bench: Bench, control: StopControl) -> list[str]:
    """Every source off and every connection closed, whatever arrives meanwhile; returns
    what could not be done (empty: every output is confirmed off)."""
    for _ in range(10):
        try:
            bench.close(ramp=not control.hurry)
            return list(bench.shutdown_errors)
        except RunAborted:
            control.hurry = True  # a stop request landed between two instruments
    log.error("bench shutdown was interrupted repeatedly; outputs may still be on")
    return [*bench.shutdown_errors, "bench: shutdown interrupted repeatedly"]


def _open_store(
    procedure: LabrigProcedure,
    config: BenchConfig,
    roles: list[str],
    name: str,
    output_dir: Path,
    sample: str | None,
    operator: str,
    resume: Path | None,
    control: StopControl,
) -> RunStore:
    """Create (or resume) the run file with signals deferred: a Ctrl-C now still leaves
    a closed file, and aborts the run before any instrument is opened."""
    try:
        with control.deferred():
            if resume is not None:
                store = RunStore.resume(Path(resume))
            else:
                parameters, requested = _parameters(procedure, config)
                store = RunStore.create(
                    output_dir,
                    procedure=name,
                    sample=sample or config.device.sample,
                    columns=procedure.columns(),
                    signal=procedure.SIGNAL,
                    axis=procedure.AXIS,
                    parameters=parameters,
                    requested_parameters=requested,
                    resolved_config=resolved_configuration(config),
                    default_plot=procedure.default_plot(),
                    config_text=config.source_text,
                    simulated=any(config.instruments[r].simulated for r in roles),
                    operator=operator,
                    groups=procedure.data_groups(),
                    expected_rows=procedure.estimated_points(),
                )
    except RunAborted:
        pass  # the file exists; control.reason makes the run end as aborted at once
    return store


def _ending(
    control: StopControl, status: str, reason: str | None, unsafe: list[str]
) -> tuple[str, str | None]:
    """The run's status and reason; an unconfirmed shutdown comes first, whatever else
    happened (an abort or a failure must never hide an output that may still be on)."""
    if control.reason is not None and status != "aborted":
        status, reason = "aborted", control.reason
    if not unsafe:
        return status, reason
    first = "safe shutdown incomplete: " + "; ".join(unsafe)
    if status == "aborted":
        first += f" (the run was aborted: {reason})"
    elif status == "failed":
        first += f" (the run had failed: {reason})"
    return "failed", first


def _run(
    procedure: LabrigProcedure,
    config: BenchConfig,
    roles: list[str],
    name: str,
    store: RunStore,
    control: StopControl,
    progress: bool | None,
    bench_factory: Callable[[BenchConfig, list[str]], Bench],
    resumed: RunData | None = None,
) -> RunResult:
    """Open the bench, run the procedure, shut everything down; return how it ended."""
    display = ProgressDisplay(name, progress)
    analysis: dict[str, tuple[Any, str]] = {}
    proc_log = logging.getLogger(f"labrig.procedures.{name}")
    expected_rows = procedure.estimated_points()
    rows = {"n": 0, "explicit": False}

    def emit(topic: str, record: Any) -> None:
        with control.deferred():
            if topic in ("results", "batch results"):
                record = dict(record)
                group = record.pop(GROUP_KEY, None)
                if topic == "results":
                    store.append_row(record, group)
                    rows["n"] += 1
                else:
                    store.append_rows(record, group)
                    rows["n"] += max((len(v) for v in record.values()), default=0)
                if expected_rows and not rows["explicit"]:
                    display.update(100.0 * rows["n"] / expected_rows)
            elif topic == "progress":
                rows["explicit"] = True
                display.update(record)
            elif topic == "spectrum":
                store.append_spectrum(record["step"], record["spectrum"], record.get("dark"))
            elif topic == "analysis":
                record = dict(record)
                group = record.pop(GROUP_KEY, None)
                store.set_analysis(record, group)
                prefix = "" if group is None else f"{group}/"
                analysis.update({prefix + k: tuple(v) for k, v in record.items()})
            elif topic == "log":
                level = int(record.get("level", logging.INFO))
                store.log(record.get("kind", "log"), record["message"], level)
                proc_log.log(level, "%s: %s", record.get("kind", "log"), record["message"])
            else:
                raise ValueError(f"unknown emit topic {topic!r}")

    procedure.emit = emit  # type: ignore[method-assign]
    # a file that takes no more rows (disk full) stops the run too, as a failure
    procedure.should_stop = lambda: control.should_stop() or store.write_error is not None  # type: ignore[method-assign]

    status, reason = "finished", None
    bench = bench_factory(config, roles)
    bench.resumed = resumed
    try:
        try:
            if control.reason is not None:
                raise RunAborted(control.reason)
            bench.open()
            with control.deferred():
                store.record_instruments(bench.identities())
                if bench.has("spectrometer"):
                    store.prepare_spectra(len(bench.spectrometer.wavelengths_nm))
            procedure.bench = bench
            procedure.startup()
            procedure.execute()
        finally:
            control.enter_shutdown()
            try:
                _procedure_shutdown(procedure, store, control)
            finally:
                _bench_shutdown(bench, control)
    except RunAborted as exc:
        status, reason = "aborted", control.reason or str(exc) or "stopped"
    except KeyboardInterrupt:
        status, reason = "aborted", control.reason or "interrupted by SIGINT"
    except Exception as exc:  # noqa: BLE001 - recorded in the file, then reported
        message = f"{type(exc).__name__}: {exc}"
        if control.reason is not None:  # e.g. a driver call that the stop broke into
            status, reason = "aborted", control.reason
            log.warning("after the stop request: %s", message)
        else:
            status, reason = "failed", message
            log.error("run failed: %s", reason, exc_info=not isinstance(exc, LabrigError))
    finally:
        control.finishing()
        # a no-op unless a signal cut the shutdown above short
        unsafe = _bench_shutdown(bench, control)
        display.close()
        status, reason = _ending(control, status, reason, unsafe)
        for problem in unsafe:
            store.log("shutdown", problem, logging.ERROR)
        if store.write_error is not None:  # whatever surfaced, the file could not grow
            status, reason = "failed", store.write_error
        if status == "failed":
            store.log("error", reason or "", logging.ERROR)
        store.close(status, reason)  # type: ignore[arg-type]
    return RunResult(store.path, status, reason, analysis, unsafe)
