"""labrig's measurements as Bluesky plans, generated from the registry.

Every ``labrig.registry.measurements()`` entry is a plan here, named as on the command
line with ``-`` as ``_`` (``jvl``, ``spectrum``, ``pulsed_el``, ``lifetime``,
``solar_jv``, ``sclc``), taking the procedure's parameters as keywords with the same
defaults, units and ranges (``labrig procedures NAME``)::

    RE = RunEngine()
    link = BenchLink("bench.yaml")
    plans.install(RE, link, output_dir="runs")
    RE(plans.jvl("dev1", stop_voltage=6.0, spectra="none"))

A plan runs ``labrig run``'s own runner on the bench link's instruments: the same checks
first (``check_request``: the parameters as ``--set`` checks them, the device kind,
``procedure.validate`` with the config's limits; one line, nothing touched), then the
same HDF5 run file, and the run's records as event-model documents
(``DocumentEmitter``) handed to the RunEngine's subscribers.  The RunEngine sees the run
as one object (``MeasurementRun``): a pause holds the run at its next point with every
source ramped off (confirmed by the instrument) and the bench free for other callers,
a resume turns them back on and goes on; an abort or a halt stops the run (outputs
ramped off, the file ``aborted``).

``install`` registers the plans' RunEngine command (``labrig_measure``): it is what hands
the run the bench and the RunEngine's subscribers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import threading
import typing
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

from bluesky.utils import InvalidCommand, Msg
from bluesky_queueserver import parameter_annotation_decorator
from event_model import DocumentNames
from pymeasure.experiment.parameters import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
)

from labrig import registry
from labrig.bench import Bench
from labrig.bluesky.documents import DocumentEmitter
from labrig.bluesky.link import BenchLink
from labrig.config import BenchConfig
from labrig.errors import OutputStateUnknownError, UserInputError
from labrig.interfaces import LifetimeRig, SourceMeter
from labrig.parameters import parameter_objects
from labrig.procedure import LabrigProcedure
from labrig.run_state import RunState, StopControl
from labrig.runner import RunResult, preflight, procedure_for, run_procedure

COMMAND = "labrig_measure"


def plan_name(measurement: registry.Measurement) -> str:
    """The plan's name: the command-line name with ``-`` as ``_`` (a Python name)."""
    return measurement.name.replace("-", "_")


def measurement_plans(config: BenchConfig | None = None) -> dict[str, registry.Measurement]:
    """The registered measurements by plan name; with ``config``, those its bench can
    run (its device's kind, every role the procedure needs configured)."""
    return {
        plan_name(m): m
        for m in registry.measurements()
        if config is None
        or (
            m.fits(config)
            and all(r in config.instruments for r in m.procedure_class().REQUIRED_ROLES)
        )
    }


def check_request(
    measurement: registry.Measurement,
    config: BenchConfig,
    values: Mapping[str, Any],
    sample: str = "",
) -> LabrigProcedure:
    """The procedure of one requested run with its values set, checked as ``labrig run``
    checks it before anything is touched (the queue server's submission check and the
    plan's start both call this); ``UserInputError`` naming the plan, one line."""
    try:
        procedure = procedure_for(measurement, config, values)
        preflight(procedure, config, sample=sample or None)
    except UserInputError as exc:
        raise type(exc)(f"{plan_name(measurement)}: {exc}") from None
    return procedure


# --------------------------------------------------------------------------- the run
def hold_outputs(bench: Bench) -> list[tuple[Any, Any]]:
    """Ramp every source that is on down and off, confirmed by the instrument; returns
    what to turn back on (``(instrument, channel or None)``)."""
    held: list[tuple[Any, Any]] = []
    for instrument in bench.instruments.values():
        if isinstance(instrument, SourceMeter) and instrument.output_enabled:
            instrument.shutdown(ramp=True)  # OutputStateUnknownError unless confirmed
            held.append((instrument, None))
        elif isinstance(instrument, LifetimeRig):
            for channel in range(1, instrument.channels + 1):
                if instrument.status(channel) != "OFF":
                    instrument.set_output(channel, False)
                    if instrument.status(channel) != "OFF":
                        raise OutputStateUnknownError(f"lifetime channel {channel}: still on")
                    held.append((instrument, channel))
    return held


def restore_outputs(held: list[tuple[Any, Any]]) -> None:
    """Turn back on what ``hold_outputs`` turned off (a source at 0: the procedure's
    next point sets its level; a lifetime channel at its set current)."""
    for instrument, channel in held:
        if channel is None:
            instrument.enable_output()
        else:
            instrument.set_output(channel, True)


class _LentBench(Bench):
    """The bench link's open instruments lent to one run: opening adopts them, closing
    is labrig's safe shutdown (every source off, confirmed) without letting go of them."""

    def __init__(self, link: BenchLink, roles: list[str]) -> None:
        super().__init__(link.config, roles)
        self.link = link

    def open(self) -> None:
        self.link.open()
        lender = self.link.bench
        self.roles = registry.with_parts(self.config, self.roles)
        missing = [r for r in self.roles if not lender.has(r)]
        if missing:
            raise UserInputError(f"the bench link has no open {', '.join(missing)}")
        self._instruments = {r: lender.instruments[r] for r in self.roles}
        identities = lender.identities()
        self._identities = {r: identities[r] for r in self.roles}
        self._lab = lender.simulation

    def close(self, ramp: bool = True) -> None:
        try:
            self.shutdown(ramp=ramp)
        finally:
            self._instruments, self._lab = {}, None


class _PausableStop(StopControl):
    """A run's state with the RunEngine's pause: ``should_stop`` -- asked by the
    procedure between points -- holds the run there while a pause is requested, its
    outputs off and the bench link free for other callers."""

    def __init__(self, link: BenchLink) -> None:
        super().__init__()
        self.link = link
        self.bench: Bench | None = None
        self._pause = threading.Event()
        self._resume = threading.Event()
        self.held = threading.Event()
        self.hold_error: BaseException | None = None

    def should_stop(self) -> bool:
        if self._pause.is_set() and self.bench is not None and self.state is RunState.RUNNING:
            self._hold(self.bench)
        return super().should_stop()

    def requested(self) -> bool:
        return self._pause.is_set() or super().requested()

    def _hold(self, bench: Bench) -> None:
        try:
            held = hold_outputs(bench)
        except BaseException as exc:
            self.hold_error = exc
            self.held.set()
            raise
        with self.link.released():
            self.held.set()
            while not self._resume.wait(0.1) and self.reason is None:
                pass
        self.held.clear()
        if self.reason is None:
            restore_outputs(held)

    def request_pause(self) -> None:
        self._resume.clear()
        self._pause.set()

    def request_resume(self) -> None:
        self._pause.clear()
        self._resume.set()


class MeasurementRun:
    """One labrig run as the RunEngine sees it: ``Pausable`` (its outputs held off while
    paused) and ``Stageable`` (unstaging -- after an abort or a halt too -- stops it and
    waits until its outputs are off and its file is closed)."""

    def __init__(
        self,
        measurement: registry.Measurement,
        values: Mapping[str, Any],
        sample: str,
        md: Mapping[str, Any] | None,
    ) -> None:
        self.measurement = measurement
        self.values = dict(values)
        self.sample = sample
        self.md = dict(md or {})
        self.name = plan_name(measurement)
        self.parent = None
        self.result: concurrent.futures.Future[RunResult] = concurrent.futures.Future()
        self._control: _PausableStop | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the command
    def start(self, link: BenchLink, output_dir: Path, emit: Callable[[str, dict], None]) -> None:
        """Check the request, then run it in a worker thread (once: a replay after a
        resume finds it started)."""
        if self._thread is not None:
            return
        procedure = check_request(self.measurement, link.config, self.values, self.sample)
        control = _PausableStop(link)
        self._control = control

        def lend(config: BenchConfig, roles: list[str]) -> Bench:
            control.bench = _LentBench(link, roles)
            return control.bench

        def run() -> None:
            try:
                with link.held():
                    result = run_procedure(
                        procedure,
                        link.config,
                        output_dir=output_dir,
                        sample=self.sample or None,
                        progress=False,
                        bench_factory=lend,
                        subscribers=[DocumentEmitter(emit, self.md)],
                        stop=control,
                    )
            except BaseException as exc:  # noqa: BLE001 - handed to the plan
                self.result.set_exception(exc)
            else:
                self.result.set_result(result)

        self._thread = threading.Thread(target=run, name=f"labrig {self.name}", daemon=True)
        self._thread.start()

    def stop(self, reason: str) -> None:
        if self._control is not None:
            self._control.request_stop(reason)

    # ------------------------------------------------------------------ Pausable
    async def pause(self) -> None:
        """Returns once the run is held with its outputs off (or has ended)."""
        control = self._control
        if control is None or self.result.done():
            return
        control.request_pause()
        await asyncio.to_thread(self._wait_held, control)

    def _wait_held(self, control: _PausableStop) -> None:
        done = concurrent.futures.wait([self.result], timeout=0)
        while not done.done and not control.held.wait(0.05):
            done = concurrent.futures.wait([self.result], timeout=0)
        if control.hold_error is not None:
            raise control.hold_error

    def resume(self) -> None:
        if self._control is not None:
            self._control.request_resume()

    # ------------------------------------------------------------------ Stageable
    def stage(self) -> list:
        return []

    def unstage(self) -> list:
        self.stop("stopped by the RunEngine")
        if self._thread is not None:
            self._thread.join()
        return []


def install(RE: Any, link: BenchLink, output_dir: Path | str = "runs") -> None:
    """Register the plans' command on ``RE``: runs go on ``link``'s bench, their files
    into ``output_dir``, their documents to ``RE``'s subscribers."""
    output_dir = Path(output_dir)

    async def measure(msg: Msg) -> RunResult:
        run: MeasurementRun = msg.obj

        def emit(name: str, doc: dict) -> None:
            # straight from the run's thread, in order: while this command runs the
            # RunEngine has no run of its own open and emits nothing itself, so the
            # subscribers never see two threads at once (and the loop never wakes per row)
            RE.emit_sync(DocumentNames[name], doc)

        run.start(link, output_dir, emit)
        # a pause cancels this wait, not the run; the replay after a resume waits again
        return await asyncio.shield(asyncio.wrap_future(run.result))

    RE.register_command(COMMAND, measure)


def _measure(
    measurement: registry.Measurement, sample: str, values: Mapping[str, Any], md: Any
) -> Generator[Msg, Any, str]:
    """Run one measurement; returns its run file's path."""
    run = MeasurementRun(measurement, values, sample, md)
    # staged, so the RunEngine unstages it (stops it, outputs off) however the plan ends:
    # an exception, an abort, a halt (which closes this generator without cleanup)
    yield Msg("stage", run)
    try:
        result = yield Msg(COMMAND, run)
        while result is None:  # a pause cut the wait short; the run went on after it
            result = yield Msg(COMMAND, run)
    except InvalidCommand:
        raise UserInputError(
            f"{run.name}: this RunEngine has no labrig bench: "
            "labrig.bluesky.plans.install(RE, link) first"
        ) from None
    yield Msg("unstage", run)
    if result.status != "finished":
        raise RuntimeError(f"{run.name}: {result.status}: {result.told or result.reason}")
    return str(result.path)


# --------------------------------------------------------------------------- plans
def _annotation(name: str, param: Parameter) -> tuple[Any, dict[str, Any]]:
    """The Python annotation of a parameter and its queue-server annotation (units and
    allowed values in the description; ranges; the choices as an enum)."""
    units = getattr(param, "units", None) or ""
    doc: dict[str, Any] = {"description": f"{param.name}" + (f" [{units}]" if units else "")}
    kind: Any = str
    if isinstance(param, BooleanParameter):
        kind = bool
    elif isinstance(param, IntegerParameter):
        kind = int
        doc.update(min=param.minimum, max=param.maximum)
    elif isinstance(param, FloatParameter):
        kind = float
        doc.update(min=param.minimum, max=param.maximum)
    elif isinstance(param, ListParameter) and all(isinstance(c, str) for c in param.choices):
        enum = "".join(w.title() for w in name.split("_")) + "Choice"
        doc.update(annotation=enum, enums={enum: list(param.choices)})
    if param.default is None:
        kind = typing.Optional[kind]  # noqa: UP045 - the queue server reads typing names
    return kind, doc


def make_plan(measurement: registry.Measurement) -> Callable[..., Generator]:
    """The plan of one measurement: ``sample`` first, then the procedure's parameters as
    keywords with their defaults, annotated for the queue server."""
    name = plan_name(measurement)
    cls = measurement.procedure_class()
    params = parameter_objects(cls)

    def plan(sample: str = "", md: dict | None = None, **values: Any) -> Generator:
        return (yield from _measure(measurement, sample, values, md))

    signature = [
        inspect.Parameter(
            "sample", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="", annotation=str
        )
    ]
    annotations: dict[str, Any] = {"sample": {"description": "the sample (default: the config's)"}}
    for pname, param in params.items():
        kind, doc = _annotation(pname, param)
        signature.append(
            inspect.Parameter(
                pname, inspect.Parameter.KEYWORD_ONLY, default=param.default, annotation=kind
            )
        )
        annotations[pname] = doc
    signature.append(
        inspect.Parameter(
            "md",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=typing.Optional[dict],  # noqa: UP045
        )
    )
    plan.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    plan.__name__ = plan.__qualname__ = name
    plan.__module__ = __name__
    plan.__doc__ = f"labrig {measurement.name}: {cls.SUMMARY}"
    return parameter_annotation_decorator({"description": plan.__doc__, "parameters": annotations})(
        plan
    )


@functools.cache
def plans() -> dict[str, Callable[..., Generator]]:
    """Every registered measurement's plan, by plan name."""
    return {name: make_plan(m) for name, m in measurement_plans().items()}


def __getattr__(name: str) -> Any:
    """``plans.jvl`` and the rest, made from the registry when first asked for."""
    found = plans().get(name)
    if found is None:
        raise AttributeError(name)
    return found
