"""Run one ``LabrigProcedure`` against the bench and the run store.

The order matters and is the point of this module:

1. ``procedure.validate(config)``, the roles and the output directory are checked before
   anything is opened or written (a user mistake touches no instrument);
2. the run file is created (status ``running``), then the bench is opened and the
   instrument identities recorded;
3. ``startup``/``execute`` run with the procedure connected to the run's dispatcher
   (``labrig.dispatch``): every record it emits (``labrig.records``) goes to every
   subscriber as a peer: the file's writer (critical: a file that takes no more rows
   fails the run), then whatever the caller passes (by default the progress display and
   Python logging, ``labrig.subscribers.standard_subscribers``; the GUI its feed);
   ``should_stop`` asks the run state (``labrig.run_state``);
4. whatever happens, ``procedure.shutdown`` and then the bench's safe shutdown run, and
   the file is closed with status ``finished``, ``aborted`` (SIGINT/SIGTERM) or ``failed``
   (an exception, recorded with its type and message).

Signals: every catchable termination signal (``run_state.SIGNALS``: SIGINT, SIGTERM,
SIGHUP when the terminal or SSH session goes, SIGQUIT, ...) is handled alike, as a request
for the next run state (``labrig.run_state``): the first stops the run (``RunAborted`` in
the main thread, so even an instrument call blocked on I/O is interrupted) and ramps the
outputs down; the file records which signal.  A second one skips the ramp (outputs go
off at once); further ones are ignored until the outputs are off.  Record deliveries are
never torn by a signal: the handler defers its exception until the delivery is done.
SIGKILL cannot be caught: after one, ``labrig safe-off`` turns the outputs off.

A shutdown that cannot confirm every output is off outranks every other ending: the run is
``failed`` with the problem first in its reason, whatever stopped it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrig.bench import Bench
from labrig.config import BenchConfig, resolved_configuration
from labrig.dispatch import Dispatcher, Subscriber
from labrig.errors import (
    ConfigError,
    LabrigError,
    ParameterError,
    RunAborted,
    UserInputError,
    for_user,
)
from labrig.parameters import check_values
from labrig.procedure import LabrigProcedure, RunContext
from labrig.records import BenchOpened, Event, Record, RunEnded, RunStarted
from labrig.registry import Measurement
from labrig.run_state import SIGNALS, StopControl
from labrig.storable import check_storable
from labrig.store import RunData, RunStore, check_output_dir, read_run
from labrig.subscribers import HDF5Writer, collect_figures, standard_subscribers

log = logging.getLogger(__name__)


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
    #: the reason as the terminal says it: what happened and what to do, without the
    #: Python class names the file's reason keeps (``labrig.errors.for_user``)
    told: str | None = None
    #: ``unsafe`` as the terminal says it (no Python class names)
    unsafe_told: list[str] = field(default_factory=list)


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


def procedure_for(
    measurement: Measurement, config: BenchConfig, values: Mapping[str, Any], prefix: str = ""
) -> LabrigProcedure:
    """``measurement``'s procedure with ``values`` set (text as after ``--set``, or typed),
    for a bench whose device it measures; ``UserInputError`` (one line, messages
    starting ``prefix``) before anything is touched.  ``preflight`` checks the rest."""
    measurement.check_device(config)
    cls = measurement.procedure_class()
    procedure = cls()
    procedure.set_parameters(check_values(cls, values, prefix))
    return procedure


def preflight(
    procedure: LabrigProcedure,
    config: BenchConfig,
    *,
    sample: str | None = None,
    operator: str = "",
    resume: Path | None = None,
) -> list[str]:
    """Everything a run checks before it touches a file or an instrument: the text it
    stores, the parameters, the files it works from (read into ``procedure.context``),
    ``procedure.validate(config)`` (limits, combinations) and the roles; returns the
    roles to open.  ``UserInputError`` (one line) for the first problem.  The queue
    server's submission check runs this too, so a queued run is refused as ``run`` is."""
    name = procedure.NAME or type(procedure).__name__
    if resume is not None and not procedure.SUPPORTS_RESUME:
        raise UserInputError(f"--resume: procedure {name!r} cannot resume a run")
    for what, text in (("--sample", sample), ("--operator", operator)):
        try:
            check_storable(text or "", what)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
    _check_numbers(procedure)
    # what was written before is read now, before the store reopens (and locks) it
    procedure.context = read_context(procedure, resume)
    procedure.validate(config)
    return _roles(procedure, config)


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
    subscribers: Sequence[Subscriber] | None = None,
    stop: StopControl | None = None,
) -> RunResult:
    """Run ``procedure`` on the bench described by ``config``; see the module docstring.

    User mistakes (``UserInputError``) found before the run starts propagate and nothing
    is written; once the file exists every ending is recorded in it and returned.
    ``subscribers``: who receives the run's records besides its file (default:
    ``standard_subscribers(progress)``; ``progress`` is used for nothing else).
    ``stop``: the run's state machine, for a caller that requests the stop from another
    thread (the GUI's Abort: ``stop.request_stop(reason)``).
    ``hold_signals``: ignore termination signals afterwards (for a process that exits
    right after the run: its exit status must not turn into -SIG under a signal storm).
    """
    name = procedure.NAME or type(procedure).__name__
    roles = preflight(procedure, config, sample=sample, operator=operator, resume=resume)
    resumed = procedure.context.previous
    if resumed is not None:
        _check_resumable(resumed, name, procedure)
    else:
        output_dir = check_output_dir(Path(output_dir))
    if subscribers is None:
        subscribers = standard_subscribers(progress)
    control = stop if stop is not None else StopControl()
    sample = sample or config.device.sample
    parameters = _parameters(procedure, config)
    simulated = any(config.instruments[r].simulated for r in roles)
    with control.installed(restore=not hold_signals):
        store = _open_store(
            procedure,
            config,
            name,
            output_dir,
            sample,
            parameters,
            simulated,
            operator,
            resume,
            control,
        )
        started = RunStarted(
            procedure=name,
            parameters=parameters[0],
            config_name=config.name,
            config_sha256=hashlib.sha256(config.source_text.encode()).hexdigest(),
            sample=sample,
            path=store.path,
            columns=procedure.columns(),
            groups=["data", *procedure.data_groups()],
            expected_rows=procedure.estimated_points(),
            simulated=simulated,
            resumed=resume is not None,
        )
        return _run(
            procedure, config, roles, started, store, control, subscribers, bench_factory, resumed
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


def read_context(procedure: LabrigProcedure, resume: Path | None = None) -> RunContext:
    """The run files a procedure works from, read with the store's one reader: the run
    ``resume`` continues and the reference its parameters name (``reference_file``).
    ``NotARunFileError``/``RunFileDamagedError`` (one line) for a file that is not a
    whole run."""
    reference = procedure.reference_file()
    return RunContext(
        previous=read_run(Path(resume)) if resume is not None else None,
        reference=read_run(reference) if reference is not None else None,
    )


def _check_resumable(previous: RunData, name: str, procedure: LabrigProcedure) -> None:
    """Only an unfinished run of the same procedure with the same columns can be
    continued."""
    path = previous.path
    if previous.procedure != name:
        raise UserInputError(f"resume {path}: it is a {previous.procedure!r} run, not {name!r}")
    expected = [c.name for c in procedure.COLUMNS]
    found = list(previous.columns.get("data", {}))
    if found != expected:
        raise UserInputError(f"resume {path}: its columns {found} differ from {name}'s {expected}")
    if previous.status == "finished":
        raise UserInputError(f"resume {path}: the run already finished; start a new one")


def _procedure_shutdown(procedure: LabrigProcedure, publish: Callable[[Record], None]) -> None:
    """The procedure's own shutdown; a failure there must not keep the bench on."""
    try:
        procedure.shutdown()
    except RunAborted:
        log.warning("procedure shutdown interrupted; the bench turns the outputs off")
    except Exception as exc:  # noqa: BLE001
        message = f"procedure shutdown failed: {type(exc).__name__}: {exc}"
        log.error(message)
        publish(Event("error", message, logging.ERROR, logged=True))


def _bench_shutdown(bench: Bench, control: StopControl) -> list[str]:
    """Every source off and every connection closed, whatever arrives meanwhile; returns
    what could not be done (empty: every output is confirmed off)."""
    for _ in range(10):
        try:
            bench.close(ramp=control.ramp)
            return list(bench.shutdown_errors)
        except RunAborted:
            pass  # a second stop request (now stopping_now): again, without the ramp
    log.error("bench shutdown was interrupted repeatedly; outputs may still be on")
    return [*bench.shutdown_errors, "bench: shutdown interrupted repeatedly"]


def _open_store(
    procedure: LabrigProcedure,
    config: BenchConfig,
    name: str,
    output_dir: Path,
    sample: str,
    parameters: tuple[dict[str, tuple[Any, str]], dict[str, Any]],
    simulated: bool,
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
                used, requested = parameters
                store = RunStore.create(
                    output_dir,
                    procedure=name,
                    sample=sample,
                    columns=procedure.columns(),
                    signal=procedure.SIGNAL,
                    axis=procedure.AXIS,
                    parameters=used,
                    requested_parameters=requested,
                    resolved_config=resolved_configuration(config),
                    default_plot=procedure.default_plot(),
                    config_text=config.source_text,
                    simulated=simulated,
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


def run_dispatcher(
    store: RunStore, subscribers: Sequence[Subscriber], analysis: dict[str, tuple[Any, str]]
) -> Dispatcher:
    """A run's dispatcher: the file's writer first (critical: it is the run's record),
    the headline figures into ``analysis``, then the caller's subscribers."""
    dispatcher = Dispatcher()
    dispatcher.subscribe(HDF5Writer(store))
    dispatcher.subscribe(collect_figures(analysis))
    for subscriber in subscribers:
        dispatcher.subscribe(subscriber)
    return dispatcher


def _run(
    procedure: LabrigProcedure,
    config: BenchConfig,
    roles: list[str],
    started: RunStarted,
    store: RunStore,
    control: StopControl,
    subscribers: Sequence[Subscriber],
    bench_factory: Callable[[BenchConfig, list[str]], Bench],
    resumed: RunData | None = None,
) -> RunResult:
    """Open the bench, run the procedure, shut everything down; return how it ended."""
    analysis: dict[str, tuple[Any, str]] = {}
    dispatcher = run_dispatcher(store, subscribers, analysis)

    def publish(record: Record) -> None:
        with control.deferred():
            dispatcher.publish(record)

    # a critical subscriber that takes no more records (a full disk) stops the run too
    procedure.connect(
        publish,
        lambda: control.should_stop() or dispatcher.failure() is not None,
        dispatcher.wants,
        control.requested,
    )

    status, reason = "finished", None
    told: tuple[str, str] | None = None  # (the file's reason, the terminal's) of a failure
    bench = bench_factory(config, roles)
    bench.resumed = resumed
    try:
        try:
            publish(started)
            if control.reason is not None:
                raise RunAborted(control.reason)
            control.start()
            bench.open()
            pixels = len(bench.spectrometer.wavelengths_nm) if bench.has("spectrometer") else None
            publish(BenchOpened(bench.identities(), pixels))
            procedure.bench = bench
            procedure.startup()
            procedure.execute()
        finally:
            control.enter_shutdown()
            try:
                _procedure_shutdown(procedure, publish)
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
            told = (message, for_user(exc))
            log.error("run failed: %s", reason, exc_info=not isinstance(exc, LabrigError))
    finally:
        control.finishing()
        # a no-op unless a signal cut the shutdown above short
        unsafe = _bench_shutdown(bench, control)
        status, reason = _ending(control, status, reason, unsafe)
        for problem in unsafe:
            publish(Event("shutdown", problem, logging.ERROR, {"problem": problem}, logged=True))
        failure = dispatcher.failure()
        if failure is not None:  # whatever surfaced, the file could not grow
            status, reason = "failed", failure
        if status == "failed":
            publish(Event("error", reason or "", logging.ERROR, logged=True))
        control.end(status)
        publish(RunEnded(status, reason, unsafe))  # type: ignore[arg-type]
    said = told[1] if told is not None and reason == told[0] else reason
    unsafe_told = bench.shutdown_told + unsafe[len(bench.shutdown_errors) :]
    if unsafe:
        said = "safe shutdown incomplete: " + "; ".join(unsafe_told)
    return RunResult(store.path, status, reason, analysis, unsafe, said, unsafe_told)
