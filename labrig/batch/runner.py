"""Run a plan: every planned pixel, one at a time, through the switch, each measurement
into its own run file (``labrig.runner.run_procedure``, exactly as ``labrig run``
writes it), the batch file (``labrig.batch.file``) updated after every run.

* **Switching.**  Each run's bench is a ``PixelBench``: once its instruments are open it
  selects the pixel's channel through ``labrig.switching.select_channel`` (output off,
  break before make, confirmed by asking the switch) before the procedure may enable
  anything, and its shutdown (sources first) opens every relay.
* **Defects.**  Whether a pixel is shorted or open is the J-V-L sweep's own contact check
  (``labrig.analysis.contact``, the one rule): its run ends early with the
  ``contact_defect`` / ``contact_note`` figures.  The batch reads those figures and skips
  the pixel's remaining measurements, with the note as the reason; the run file stays as
  the evidence, and the pixel counts against the yield.
* **Stopping.**  A run that ends aborted (Ctrl-C, any termination signal) or failed (an
  instrument fault, a switch that does not confirm, an output not confirmed off) stops
  the batch with that status: the run itself left every output off, the bench's shutdown
  every relay open.
* **Resume.**  ``resume=True`` continues the batch file of the same plan: a row whose run
  file closed ``finished`` is kept (also one the batch file had not yet recorded as
  such); an unfinished one is measured again into a new file, the old one kept on record
  (``/batch/superseded``).
* **Progress.**  One display for the batch (``labrig.subscribers.ProgressDisplay``, fed by
  each run's ``Progress`` records): device k of n, and an ETA over the runs still to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from labrig.batch.file import BatchFile, DeviceResult, read_batch, read_batch_record
from labrig.batch.plan import Plan, Step
from labrig.bench import Bench
from labrig.config import BenchConfig
from labrig.dispatch import Subscriber
from labrig.errors import UserInputError
from labrig.records import Progress, Record, RunStarted
from labrig.store import check_output_dir, load_run, sanitize
from labrig.subscribers import LoggingSubscriber, ProgressDisplay
from labrig.switching import select_channel

log = logging.getLogger(__name__)

#: statuses of a row that is done with (not measured again on resume)
DONE = ("finished", "skipped")


class PixelBench(Bench):
    """The bench of one pixel's run: the roles the procedure needs plus the switch; once
    open, ``channel`` alone is connected (``select_channel``) with every output off."""

    def __init__(self, config: BenchConfig, roles: Sequence[str], *, channel: str) -> None:
        super().__init__(config, [*roles, "switch"])
        self.channel = channel

    def open(self) -> None:
        super().open()
        select_channel(self.smu if self.has("smu") else None, self.switch, self.channel)


class BatchProgress:
    """The batch's one progress display: named after the device being measured (k of n)
    and moved by each run's ``Progress`` over the runs this session measures, so its ETA
    is the time the rest of the batch will take at the pace so far."""

    kinds = (RunStarted, Progress)

    def __init__(self, mode: bool | None, runs: int) -> None:
        self.display = ProgressDisplay("batch", mode)
        self.runs = max(runs, 1)
        self.done = 0

    def device(self, k: int, n: int, label: str) -> None:
        self.display.rename(f"batch: device {k} of {n} ({label})")

    def run_done(self) -> None:
        self.done += 1
        self.display.update(100.0 * self.done / self.runs)

    def __call__(self, record: Record) -> None:
        if isinstance(record, Progress):
            self.display.update(100.0 * (self.done + record.percent / 100.0) / self.runs)

    def close(self) -> None:
        self.display.close()


class _RunFile:
    """Notes the run file a run creates (``RunStarted``) and hands it on at once, so the
    batch file names it before the run can crash."""

    kinds = (RunStarted,)

    def __init__(self, on_started: Callable[[Path], None]) -> None:
        self.on_started = on_started

    def __call__(self, record: Record) -> None:
        if isinstance(record, RunStarted):
            self.on_started(Path(record.path))


@dataclass(frozen=True)
class BatchResult:
    """How a batch ended: its file, status and reason, and its rows."""

    path: Path
    status: str
    reason: str
    devices: tuple[DeviceResult, ...]

    @property
    def pixels(self) -> dict[tuple[str, str], str]:
        """(substrate, pixel) -> "finished" (every measurement), "skipped", or why not
        (``labrig.analysis.statistics.pixel_status``, the yield's own rule)."""
        from labrig.analysis.statistics import pixel_states

        return {key: status for key, (status, _) in pixel_states(self.devices).items()}


def batch_file_path(plan: Plan) -> Path:
    """Where the plan's batch file lives: ``<output_dir>/<name>_batch.h5``."""
    return plan.output_dir / f"{sanitize(plan.name, 'batch')}_batch.h5"


def headline_figures(step: Step, analysis: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """The numeric headline figures of a run (its registry entry's keys), as the batch
    file tables them."""
    from labrig.headline import shown_names

    own = {k: v for k, v in analysis.items() if "/" not in k}
    figures = {}
    for name in shown_names(own, step.measurement.headline):
        value, units = own[name]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            figures[name] = (float(value), units)
    return figures


def _outcome(
    step: Step, row: DeviceResult, status: str, reason: str, analysis: dict
) -> DeviceResult:
    """A row after its run: a contact defect makes a finished run a skipped pixel."""
    defect = analysis.get("contact_defect")
    if status == "finished" and defect is not None:
        note = analysis.get("contact_note", (f"{defect[0]}", ""))[0]
        status, reason = "skipped", str(note)
    return DeviceResult(
        row.substrate,
        row.pixel,
        row.condition,
        row.measurement,
        status,
        reason if status != "finished" else "",
        row.run_file,
        headline_figures(step, analysis),
    )


def _plan_rows(plan: Plan) -> list[DeviceResult]:
    return [DeviceResult(s, p, c, m, "pending", "", None, {}) for s, p, c, m in plan.rows]


def _resumed(plan: Plan, path: Path) -> BatchFile:
    """The batch file of ``plan`` to continue, its rows checked against their run files."""
    batch = read_batch(path)
    record = read_batch_record(path)
    planned = [(s, p, m) for s, p, _, m in plan.rows]
    found = [(d.substrate, d.pixel, d.measurement) for d in batch.devices]
    if planned != found:
        raise UserInputError(
            f"--resume {path}: it was started from another plan ({len(found)} runs, the "
            f"plan now has {len(planned)}); resume with the plan it began with"
        )
    steps = {s.name: s for s in plan.steps}
    rows = list(batch.devices)
    superseded = list(record.superseded)
    for i, row in enumerate(rows):
        if row.run_file is None or row.status == "skipped":
            continue
        loaded = load_run(row.run_file) if row.run_file.exists() else None
        if loaded is not None and loaded.run.status == "finished":
            if row.status != "finished":  # the batch file had not caught up
                rows[i] = _outcome(steps[row.measurement], row, "finished", "", loaded.figures())
            continue
        superseded.append((i, row.run_file))
        rows[i] = replace(row, status="pending", reason="", run_file=None, figures={})
    bf = BatchFile(path, plan.name, plan.text, rows)
    bf.superseded = superseded
    return bf


def _skip_rest(bf: BatchFile, indices: list[int], reason: str) -> None:
    for i in indices:
        if bf.devices[i].status not in DONE:
            bf.devices[i] = replace(bf.devices[i], status="skipped", reason=reason)
    bf.write()


def run_batch(
    plan: Plan,
    *,
    resume: bool = False,
    progress: bool | None = None,
    mount: Callable[[str], None] | None = None,
    subscribers: Sequence[Subscriber] = (),
    bench_factory: Callable[..., Bench] = PixelBench,
) -> BatchResult:
    """Run ``plan`` (see the module docstring); returns how the batch ended.

    ``mount(substrate)`` is called before the first run on each further substrate of a
    bench with real instruments (the operator mounts it; the simulated bench needs no
    one), and on resuming before the first run.
    ``subscribers`` receive every run's records as well (a stable entry point for
    benchmarks and other programs); ``bench_factory(config, roles, channel=...)``.
    """
    output_dir = check_output_dir(plan.output_dir)
    path = batch_file_path(plan)
    if resume:
        if not path.exists():
            raise UserInputError(f"--resume: no batch file {path} to continue")
        bf = _resumed(plan, path)
    else:
        if path.exists():
            raise UserInputError(
                f"batch file {path} exists: --resume to continue it, or give the plan "
                "another name or output_dir"
            )
        bf = BatchFile(path, plan.name, plan.text, _plan_rows(plan))
    bf.status, bf.reason = "running", ""
    bf.write()
    per_pixel = len(plan.steps)
    pixels = [(s, p) for s in plan.samples for p in s.pixels]
    todo = sum(d.status not in DONE for d in bf.devices)
    shown = BatchProgress(progress, todo)
    real = not plan.config.simulated
    # a new batch starts on the substrate the operator mounted; a resumed one asks
    mounted = None if resume else plan.samples[0].substrate
    try:
        for k, (sample, pixel) in enumerate(pixels):
            indices = list(range(k * per_pixel, (k + 1) * per_pixel))
            if all(bf.devices[i].status in DONE for i in indices):
                continue
            found = [bf.devices[i] for i in indices if bf.devices[i].status == "skipped"]
            if found:  # a resumed batch whose file had not caught up with a defect
                _skip_rest(bf, indices, found[0].reason)
                continue
            if real and mount is not None and mounted != sample.substrate:
                mount(sample.substrate)
            mounted = sample.substrate
            config = plan.device_config(sample.substrate, pixel)
            channel = config.substrate.pixels[pixel].channel  # type: ignore[union-attr]
            for i, step in zip(indices, plan.steps, strict=True):
                if bf.devices[i].status in DONE:
                    continue
                shown.device(k + 1, len(pixels), f"{sample.substrate}/{pixel} {step.name}")
                row = _measure(
                    bf, i, step, config, channel, output_dir, shown, subscribers, bench_factory
                )
                shown.run_done()
                if row.status == "skipped":
                    _skip_rest(bf, indices, row.reason)
                    break
                if row.status != "finished":
                    bf.end(row.status, f"{sample.substrate}/{pixel} {step.name}: {row.reason}")
                    return _result(bf)
    except KeyboardInterrupt:
        bf.end("aborted", "interrupted between runs")
        return _result(bf)
    except BaseException as exc:
        bf.end("failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        shown.close()
    bf.end("finished")
    return _result(bf)


def _measure(
    bf: BatchFile,
    index: int,
    step: Step,
    config: BenchConfig,
    channel: str,
    output_dir: Path,
    shown: BatchProgress,
    subscribers: Sequence[Subscriber],
    bench_factory: Callable[..., Bench],
) -> DeviceResult:
    """One run of one pixel; its row (with run file and figures) is written as it starts
    and when it ends."""
    from labrig.runner import run_procedure

    row = bf.devices[index]
    procedure = step.measurement.procedure_class()()
    procedure.set_parameters(dict(step.values))

    def started(run_file: Path) -> None:
        bf.set(index, replace(row, status="pending", run_file=run_file))

    result = run_procedure(
        procedure,
        config,
        output_dir=output_dir,
        sample=f"{row.substrate}-{row.pixel}",
        bench_factory=lambda cfg, roles: bench_factory(cfg, roles, channel=channel),
        subscribers=[shown, LoggingSubscriber(), _RunFile(started), *subscribers],
    )
    reason = result.told or result.reason or ""
    done = _outcome(
        step, replace(row, run_file=result.path), result.status, reason, result.analysis
    )
    bf.set(index, done)
    log.info("%s/%s %s: %s", row.substrate, row.pixel, step.name, done.status)
    return done


def _result(bf: BatchFile) -> BatchResult:
    return BatchResult(bf.path, bf.status, bf.reason, tuple(bf.devices))
