"""The ``labrig`` command line.

Kept fast on purpose: only click and labrig's own light modules are imported at start-up;
pymeasure, h5py, scipy and pyvisa are imported inside the commands that need them.
Exit codes: 0 success, 1 run failed, 2 usage or config error, 130 aborted by the user.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from labrig import __version__
from labrig.errors import InstrumentError, UserInputError, for_user

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED = 0, 1, 2, 130
STATUS_EXIT = {"finished": EXIT_OK, "failed": EXIT_FAILED, "aborted": EXIT_ABORTED}


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    for line in str(message).splitlines() or [""]:
        click.echo(f"labrig: error: {line}", err=True)
    sys.exit(code)


def summary(command: click.Command) -> str:
    """A command's one-line summary for the help listing, whole (click cuts it at ~45
    characters with "..."): its ``short_help``, else the first sentence of its help."""
    if command.short_help:
        return command.short_help
    paragraph = " ".join((command.help or "").split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]


#: click >= 8.2 raises this for a group called without a command: show the help
_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


class LabrigGroup(click.Group):
    """Turns labrig's user errors into one readable message and exit status 2, and lists
    its commands with their whole summaries."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """click's own usage errors (a bad option value, a missing argument) as one line
        naming the command, exit status 2, instead of usage + hint + error."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS as exc:  # plain `labrig`: the help itself, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "labrig"
            _fail(f"{where}: {exc.format_message()} (see {where} --help)", EXIT_USAGE)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_FAILED)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except UserInputError as exc:
            _fail(str(exc), EXIT_USAGE)
        except InstrumentError as exc:
            _fail(for_user(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            click.echo("labrig: interrupted", err=True)
            sys.exit(EXIT_ABORTED)


LabrigGroup.group_class = type  # calibrate, sim: the same listing and error handling


class RunCommand(click.Command):
    """``labrig run --help`` ends with the procedures that can be run, one line each."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from labrig import registry

        rows = [(m.name, m.procedure_class().SUMMARY) for m in registry.measurements()]
        with formatter.section("Procedures"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


config_option = click.option(
    "-c", "--config", metavar="FILE", help="Bench config (YAML), or a shipped name."
)


def output_dir_option(default: str, help_text: str):
    """The ``-o/--output-dir`` option shared by the commands that write files."""
    return click.option(
        "-o",
        "--output-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help=help_text,
    )


def _load_config(config: str | None, measurement: Any = None, simulate: bool = False):
    """The bench config given, or with ``--simulate`` the simulated bench of
    ``measurement`` (a ``labrig.registry.Measurement``; default ``sim``)."""
    from labrig.config import load_config

    if config is None:
        if not simulate:
            raise UserInputError(
                "no bench config: give --config FILE, or --simulate for the built-in simulated bench"
            )
        config = measurement.simulated_config if measurement is not None else "sim"
    cfg = load_config(config)
    if simulate and not cfg.simulated:
        raise UserInputError(
            f"--simulate: config {cfg.source_path} has real instruments "
            f"({', '.join(r for r, i in cfg.instruments.items() if not i.simulated)}); "
            "drop --config to use the built-in simulated bench"
        )
    return cfg


@click.group(cls=LabrigGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labrig")
def main() -> None:
    """labrig: drive an optoelectronics bench and write one self-describing HDF5 file per run.

    \b
    Start here:
      labrig run jvl --simulate          J–V–L sweep on the built-in simulated bench
      labrig procedures                  what can be run
      labrig procedures jvl              its parameters, units, defaults and ranges
      labrig check --config bench.yaml   connect each instrument and show who it is
      labrig inspect RUN.h5              what a run file holds
      labrig sim serve                   serve the simulated instruments to other programs
    """


# --------------------------------------------------------------------------- run
@main.command(cls=RunCommand, short_help="Run a procedure on the bench; one HDF5 file per run.")
@click.argument("procedure")
@config_option
@click.option("--simulate", is_flag=True, help="Use the built-in simulated bench (no hardware).")
@click.option(
    "-s",
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a procedure parameter (repeatable). See `labrig procedures NAME`.",
)
@click.option("--sample", help="Sample name for the file (default: the config's device.sample).")
@click.option("--operator", default="", help="Who ran it (stored in the file).")
@output_dir_option("runs", "Where the run file is written.")
@click.option(
    "--resume",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Continue an interrupted run in the same file (procedures that support it).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="A progress bar, or no progress output at all (default: a bar on a terminal, "
    "else a line at each tenth of the run).",
)
@click.option(
    "--documents",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the run's Bluesky event-model documents to FILE as they come, one "
    "[name, doc] JSON line each (bluesky extra).",
)
@click.option(
    "--publish",
    metavar="URI",
    default=None,
    help="Also send the run to the lab catalogue at URI as it goes (catalog extra; default: "
    "the config's `publish`; API key from LABRIG_CATALOG_API_KEY).",
)
@click.option(
    "--publish-wait",
    type=click.FloatRange(0, 3600),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="After the run, how long to wait for the catalogue to have all of it.",
)
def run(
    procedure,
    config,
    simulate,
    settings,
    sample,
    operator,
    output_dir,
    resume,
    progress,
    documents,
    publish,
    publish_wait,
):
    """Run PROCEDURE on the bench and write one HDF5 run file.

    \b
    Examples:
      labrig run jvl --simulate
      labrig run jvl --config bench.yaml --set stop_voltage=7 --set spectra=every_step
      labrig run lifetime --config rig.yaml --resume runs/dev1_lifetime_20261121-101500.h5

    Exit status: 0 finished, 1 failed, 2 bad input, 130 aborted (Ctrl-C / SIGTERM).
    """
    from labrig import registry
    from labrig.runner import interrupt_on_signals
    from labrig.terminal import keep_running_without_terminal

    keep_running_without_terminal()  # a closed terminal or pipe must not end the run
    interrupt_on_signals()  # SIGHUP/SIGTERM/... before the run: exit 130, nothing touched
    measurement = registry.measurement(procedure)
    cfg = _load_config(config, measurement, simulate)
    from labrig.parameters import split_settings
    from labrig.runner import procedure_for, run_procedure

    proc = procedure_for(measurement, cfg, split_settings(settings), prefix="--set ")
    extra = [] if documents is None else [_document_writer(documents)]
    publisher = None
    if publish or cfg.publish:
        from labrig.catalog.commands import publisher as catalog_publisher

        publisher = catalog_publisher(publish or cfg.publish)
        extra.append(publisher)
    subscribers = None
    if extra:
        from labrig.subscribers import standard_subscribers

        subscribers = [*standard_subscribers(progress), *extra]
    result = run_procedure(
        proc,
        cfg,
        output_dir=output_dir,
        sample=sample,
        operator=operator,
        progress=progress,
        resume=resume,
        hold_signals=True,
        subscribers=subscribers,
    )
    if result.unsafe:  # first, and on stderr: the one line that must not be missed
        click.echo(
            "labrig: CHECK THE INSTRUMENTS: an output could not be confirmed off ("
            + "; ".join(result.unsafe_told)
            + "); switch it off at the front panel or run `labrig safe-off --config FILE`",
            err=True,
        )
    click.echo(f"{result.status}: {result.path}")
    if publisher is not None:
        from labrig.catalog.commands import unpublished

        if (line := unpublished(publisher, publish_wait)) is not None:
            click.echo(line, err=True)
    if result.told:  # the file keeps the full reason (``labrig inspect``)
        click.echo(f"reason: {result.told}")
    from labrig.headline import headline

    for line in headline(result.analysis, result.path, measurement.headline):
        click.echo(line)
    sys.exit(STATUS_EXIT.get(result.status, EXIT_FAILED))


def _document_writer(path: Path):
    """The run's event-model documents into ``path`` (the bluesky extra's emitter)."""
    try:
        from labrig.bluesky.documents import DocumentEmitter, JsonLinesWriter
    except ImportError as exc:
        raise UserInputError(_needs_bluesky("--documents", exc)) from None
    try:
        return DocumentEmitter(JsonLinesWriter(path))
    except OSError as exc:
        raise UserInputError(f"--documents {path}: {exc.strerror}") from None


def _needs_bluesky(what: str, exc: ImportError) -> str:
    return f"{what} needs the bluesky extra ({exc.name} is missing): pip install 'labrig[bluesky]'"


# --------------------------------------------------------------------------- procedures
@main.command("procedures", short_help="List procedures, or one's parameters, units and ranges.")
@click.argument("name", required=False)
def procedures_cmd(name):
    """List the procedures, or show NAME's parameters with units, defaults and ranges."""
    from labrig import registry

    if name is None:
        for entry in registry.measurements():
            click.echo(f"{entry.name:12s} {entry.procedure_class().SUMMARY}")
        return
    measurement = registry.measurement(name)
    from labrig.parameters import describe

    cls = measurement.procedure_class()
    click.echo(f"{measurement.name}: {cls.SUMMARY}")
    click.echo(
        f"instruments: {', '.join(cls.REQUIRED_ROLES)}"
        + (f" (optional: {', '.join(cls.OPTIONAL_ROLES)})" if cls.OPTIONAL_ROLES else "")
    )
    click.echo("parameters (set with --set NAME=VALUE):")
    for info in describe(cls):
        default = "" if info.default is None else f"default {info.default}"
        units = f" [{info.units}]" if info.units else ""
        click.echo(f"  {info.name:24s} {info.label}{units}; {default}; allowed {info.allowed}")


# --------------------------------------------------------------------------- check
@main.command(short_help="Connect each instrument and say who answered (no output on).")
@config_option
@click.option("--simulate", is_flag=True, help="Check the built-in simulated bench.")
def check(config, simulate):
    """Connect each configured instrument and print, one line per role, who answered or
    what to do; enables no output.  Exit status 1 if any instrument failed."""
    if config is None and not simulate:
        click.echo("no --config given: checking the built-in simulated bench (sim)")
    cfg = _load_config(config, None, True if config is None else simulate)
    from labrig.check import check_roles

    failed = 0
    for result in check_roles(cfg):
        click.echo(result.line)
        failed += not result.ok
    total = len(cfg.instruments)
    if failed:
        click.echo(f"{failed} of {total} instruments failed; no output was enabled")
        sys.exit(EXIT_FAILED)
    click.echo(f"all {total} instruments answered; no output was enabled")


# --------------------------------------------------------------------------- safe-off
@main.command("safe-off")
@config_option
@click.option("--simulate", is_flag=True, help="The built-in simulated bench.")
def safe_off_cmd(config, simulate):
    """Ramp down and turn off every configured source output, and say what each role's
    output is now.  For after a run that could not do it itself: `kill -9` (SIGKILL can
    not be caught), a crash, or a run that reported the output state unknown.

    Exit status: 0 every output confirmed off, 1 otherwise.
    """
    from labrig.safe_off import safe_off
    from labrig.terminal import keep_running_without_terminal

    keep_running_without_terminal()
    cfg = _load_config(config, None, simulate)
    states = safe_off(cfg)
    for state in states:
        click.echo(state.line())
    if not states:
        click.echo("no source outputs configured")
    sys.exit(EXIT_OK if all(s.off for s in states) else EXIT_FAILED)


# --------------------------------------------------------------------------- inspect
@main.command(short_help="What a run file holds: status, parameters, columns, figures.")
@click.argument("file", type=click.Path(path_type=Path))
def inspect(file):
    """Print a run file's procedure, status, parameters, columns and analysis figures."""
    from labrig.describe import describe_run

    click.echo(describe_run(file))


# --------------------------------------------------------------------------- report
@main.command(short_help="Paper-style figures and a summary of one or more runs.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_dir_option("report", "Where the figures and summary.txt are written.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "pdf", "svg"]),
    default="png",
    show_default=True,
    help="Figure file format.",
)
def report(files, output_dir, fmt):
    """Figures of run FILES (one multi-panel figure per procedure; several files of a
    procedure overlay to compare devices) and a one-page summary.txt.  A batch file
    (from `labrig batch run`) gets the device statistics instead: distributions, box
    plots per condition, all devices' curves with the champion, yield, and the table
    of n, mean, s.d., median and champion per condition (printed and as CSV).

    \b
    Examples:
      labrig report runs/dev1_jvl_*.h5 runs/dev2_jvl_*.h5 -o figs
      labrig report runs/dev1_lifetime_*.h5 --format pdf
      labrig report runs/nsa/NSA_series_batch.h5 -o figs
    """
    from labrig.report import make_report

    result = make_report(files, output_dir, fmt)
    for loaded in result.runs:
        for problem in loaded.problems:
            click.echo(f"note: {loaded.path.name}: {problem}", err=True)
    for path in result.figures:
        click.echo(f"figure:  {path}")
    for path in result.tables:
        click.echo(f"table:   {path}")
    click.echo(f"summary: {result.summary}")
    if result.text:
        click.echo(result.text)


# --------------------------------------------------------------------------- watch
@main.command(short_help="Follow a run that is still being written.")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-i",
    "--interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--once", is_flag=True, help="Show one snapshot and exit.")
@click.option(
    "--figure",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also re-render the report figure to this image whenever data arrive.",
)
def watch(file, interval, once, figure):
    """Follow a run FILE that is still being written (from another terminal) until its
    status leaves "running": rows, last values, recent log events.

    Exit status: the run's (0 finished, 1 failed, 130 aborted); 0 with --once.
    """
    from labrig.watch import watch as follow

    try:
        status = follow(file, interval=interval, once=once, figure=figure)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)  # stopping the viewer does not stop the run
    if not once:
        sys.exit(STATUS_EXIT.get(status, EXIT_FAILED))


# --------------------------------------------------------------------------- export
@main.command(short_help="Write a run's data, spectra and figures as CSV files.")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the CSV files go (default: next to FILE).",
)
def export(file, fmt, output_dir):
    """Write a run FILE's data as CSV: one file per data group with rows (headers
    "name [units]"), the spectra as a matrix (wavelength_nm, then one column per spectrum
    headed by its drive, "V = 5.2 V; J = 12.31 mA/cm^2") and the analysis figures."""
    from labrig.export import export as export_run

    written = export_run(file, fmt, output_dir)
    for path in written:
        click.echo(str(path))
    if not written:
        click.echo(f"nothing to export: {file} holds no rows, spectra or figures", err=True)


# --------------------------------------------------------------------------- gui
@main.command(short_help="pymeasure's window on the same procedures (gui extra).")
@click.argument("procedure", required=False)
@config_option
@click.option("--simulate", is_flag=True, help="Use the built-in simulated bench (no hardware).")
@output_dir_option("runs", "Where the run files are written.")
def gui(procedure, config, simulate, output_dir):
    """pymeasure's ManagedWindow for PROCEDURE (asked for when omitted) on the bench;
    each queued run writes the same HDF5 file as `labrig run` (needs the `gui` extra)."""
    from labrig import registry

    measurement = registry.measurement(procedure) if procedure is not None else None
    cfg = _load_config(config, measurement, simulate)
    if measurement is not None:
        measurement.check_device(cfg)
        procedure = measurement.name
    try:
        from labrig.gui import launch
    except (ImportError, RuntimeError) as exc:  # qtpy: no Qt binding installed
        raise UserInputError(
            f"labrig gui needs Qt: pip install 'labrig[gui]' (PySide6-Essentials) ({exc})"
        ) from None
    sys.exit(launch(cfg, procedure, output_dir))


# --------------------------------------------------------------------------- calibrate
@main.group(short_help="Calibrations, written to a config (never a shipped one).")
def calibrate() -> None:
    """Calibrations, stored in a bench config (never in a shipped one)."""


@calibrate.command("luminance", short_help="Luminance-meter correction factor, into a config.")
@config_option
@click.option("--simulate", is_flag=True, help="Calibrate the built-in simulated bench.")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the calibrated config here (default: the --config file itself; a shipped "
    "config is never written, it is copied to the working directory).",
)
@click.option(
    "--current",
    "current_ma",
    type=float,
    default=1.0,
    show_default=True,
    help="Drive current in mA while the luminance meter is read.",
)
@click.option(
    "--meter",
    "meter_cd_m2",
    type=float,
    default=None,
    help="The meter reading in cd/m² (asked for interactively when omitted).",
)
def calibrate_luminance_cmd(config, simulate, output, current_ma, meter_cd_m2):
    """Compare labrig's luminance with a luminance meter's reading at a set current
    and store the correction factor, its date and the one it replaces in a config.

    \b
    Examples:
      labrig calibrate luminance --config bench.yaml --meter 512
      labrig calibrate luminance --simulate --meter 1000 --output sim_cal.yaml
    """
    cfg = _load_config(config, None, simulate)
    from labrig.bench import Bench
    from labrig.calibrate import (
        calibrate_luminance,
        calibration_target,
        check_current,
        check_meter_reading,
    )

    check_current(current_ma * 1e-3)
    if meter_cd_m2 is not None:
        check_meter_reading(meter_cd_m2)
    roles = [r for r in ("smu", "photometer", "spectrometer") if r in cfg.instruments]
    bench = Bench(cfg, roles)
    bench.check_drive(amps=current_ma * 1e-3)  # the limits, before anything is opened
    target, note = calibration_target(Path(cfg.source_path), output)
    if note:
        click.echo(note)

    def read_meter(prompt: str) -> float:
        if meter_cd_m2 is not None:
            click.echo(f"{prompt}: {meter_cd_m2:g}")
            return meter_cd_m2
        return click.prompt(prompt, type=float)

    with bench:
        result = calibrate_luminance(bench, current_ma * 1e-3, read_meter, target)
    click.echo(
        f"luminance correction {result.previous_factor:.4g} -> {result.factor:.4g} "
        f"({result.date.isoformat()}, {result.spectrum_used} spectrum)"
    )
    click.echo(
        f"luminance at {current_ma:g} mA: before {result.before_cd_m2:.4g} cd/m², "
        f"meter {result.meter_cd_m2:.4g} cd/m², after {result.after_cd_m2:.4g} cd/m²"
    )
    click.echo(f"written to {result.config_path}")


# --------------------------------------------------------------------------- sim
@main.group(short_help="The simulated bench, for use without hardware.")
def sim() -> None:
    """The simulated bench, for use without hardware."""


def _served_clock_line(cfg, clock) -> str:
    """How the served instruments' time runs, in one line."""
    line = f"clock: real time x {getattr(clock, 'speed', 1.0):g}"
    if getattr(clock, "instant_sleeps", False):
        line += ", instrument waits instant (simulation.clock_speed .inf)"
    return line


@sim.command("serve", short_help="Serve the simulated instruments on loopback.")
@click.option(
    "-c",
    "--config",
    metavar="FILE",
    default="sim",
    show_default=True,
    help="Simulated bench config (YAML), or a shipped name.",
)
def sim_serve(config):
    """Serve the simulated instruments on loopback until Ctrl-C.

    Prints the resource strings and the terminations a client must set: open them with
    pyvisa-py (`pyvisa.ResourceManager("@py").open_resource(resource,
    read_termination="\\n", write_termination="\\n")`), pymeasure (the same keywords), or
    a real-bench config (`resource: TCPIP::127.0.0.1::PORT::SOCKET`, `simulated: false`).
    One client per instrument at a time; a second is refused (logged here).  The
    spectrometer is USB (inside seabreeze) and cannot be served to another process.  The
    instruments' time runs by itself at real time x simulation.clock_speed (for .inf: at
    real time, the instruments' own waits instant).
    """
    import logging
    import signal
    import threading

    from labrig import registry
    from labrig.config import load_config
    from labrig.simulators.lab import start_lab
    from labrig.simulators.server import SCPIServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_config(config)
    roles = [  # what another process can reach: not USB, not made of other roles
        role
        for role, inst in cfg.instruments.items()
        if inst.simulated
        and (entry := registry.driver(inst.driver)).simulator is not None
        and not entry.in_process
    ]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with start_lab(cfg, roles, served=True) as lab:
        click.echo(f"simulated bench '{cfg.name}' ({cfg.device.sample}) serving:")
        scpi = {s.resource: s.terminations for s in lab.servers if isinstance(s, SCPIServer)}
        for role in roles:
            resource = lab.resources[role]
            extra = f"  ({scpi[resource]})" if resource in scpi else ""
            click.echo(f"  {role:12s} {resource}{extra}")
        click.echo(_served_clock_line(cfg, lab.clock))
        click.echo("Ctrl-C to stop", err=True)
        sys.stdout.flush()
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    click.echo("stopped", err=True)


# --------------------------------------------------------------------------- batch
@main.group(short_help="Many devices: a plan of substrates, pixels and measurements.")
def batch() -> None:
    """Measure many devices from one plan file: each pixel of each substrate is switched
    in (every output off while relays move), measured into its own run file, and one
    batch file links the run files and tables their headline figures.

    \b
    A plan (YAML; paths relative to it):
      name: NSA series
      bench: bench.yaml        # config with substrate.pixels (channel, area_cm2) and a switch
      output_dir: runs/nsa
      samples:
        - {substrate: S1, condition: NSA 0.6 M}        # every pixel of the layout
        - {substrate: S2, condition: control, pixels: [A, C]}
      measurements:            # per pixel, in order; parameters as `labrig procedures NAME`
        - jvl: {stop_voltage: 6}
        - spectrum

    \b
    Then:
      labrig batch run plan.yaml            runs/nsa/NSA_series_batch.h5 + one file per run
      labrig batch run plan.yaml --resume   after a Ctrl-C or crash: finished runs are kept
      labrig report runs/nsa/NSA_series_batch.h5
    """


@batch.command("run", short_help="Run a plan: every planned pixel, each into its own file.")
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the plan's batch file: runs that finished are kept, unfinished ones "
    "are measured again into new files (the old ones kept).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="One progress bar for the batch (device k of n, ETA), or none (default: a bar on "
    "a terminal, else a line at each tenth).",
)
def batch_run(plan, resume, progress):
    """Run PLAN: shorted or open pixels are found by the J-V-L sweep's first points,
    skipped with the reason and counted in the yield.  Everything in the plan (pixels,
    channels, areas, measurements, parameters, limits) is checked before anything is
    switched or enabled.

    Exit status: 0 finished, 1 failed, 2 bad plan, 130 aborted (then --resume).
    """
    from labrig.batch.command import batch_run as body
    from labrig.runner import interrupt_on_signals
    from labrig.terminal import keep_running_without_terminal

    keep_running_without_terminal()
    interrupt_on_signals()
    sys.exit(body(plan, resume, progress))


# --------------------------------------------------------------------------- queue
@main.group(short_help="bluesky-queueserver's RE Manager for a bench (bluesky extra).")
def queue() -> None:
    """Queues of Bluesky plans on a labrig bench, through bluesky-queueserver."""


@queue.command(
    "serve",
    short_help="Start the RE Manager for one bench.",
    context_settings={"ignore_unknown_options": True},
)
@click.option(
    "-c", "--config", metavar="FILE", required=True, help="Bench config (YAML), or a shipped name."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the permissions and the list of plans and devices are kept "
    "(default: labrig's app directory, one per config).",
)
@output_dir_option("runs", "Where the measurement plans write their run files.")
@click.option(
    "--documents",
    metavar="HOST:PORT",
    help="Publish every document to this bluesky 0MQ proxy (bluesky-0MQ-proxy's in port).",
)
@click.argument("manager_args", nargs=-1, type=click.UNPROCESSED)
def queue_serve(config, state_dir, output_dir, documents, manager_args):
    """Start bluesky-queueserver's RE Manager for the bench in FILE until Ctrl-C.

    Its worker holds the bench's instruments as ophyd-async devices (smu, photodiode,
    spectrometer, lifetime_N) and offers bluesky's count, scan and rel_scan and one plan
    per measurement (jvl, spectrum, pulsed_el, lifetime, solar_jv, sclc: the parameters
    of `labrig procedures NAME`), each writing the run file `labrig run` writes; clients
    submit with bluesky-queueserver-api or `qserver`.  Needs a running redis-server.
    Further arguments go to start-re-manager as they are, e.g.

    \b
      labrig queue serve --config bench.yaml -- --redis-addr localhost:6379
    """
    from labrig.config import load_config

    cfg = load_config(config)
    try:
        from labrig.bluesky import queue as bluesky_queue
    except ImportError as exc:
        raise UserInputError(_needs_bluesky("labrig queue", exc)) from None
    if state_dir is None:
        state_dir = Path(click.get_app_dir("labrig")) / "queue" / Path(cfg.source_path).stem
    bluesky_queue.serve(cfg, state_dir, output_dir, manager_args, documents)


# --------------------------------------------------------------------------- catalog
@main.group(short_help="The lab catalogue: serve, search and sync runs on Tiled (catalog extra).")
def catalog() -> None:
    """Run files searchable and readable over HTTP, through Tiled (catalog extra)."""


@catalog.command("serve", short_help="Serve a runs directory as a Tiled catalogue.")
@click.argument(
    "directory", required=False, default="runs", type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--database",
    metavar="URI",
    help="Catalogue database (default: SQLite in DIR/.labrig-catalog/); e.g. "
    "postgresql://user@host/labrig for a lab server.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--public", is_flag=True, help="Reads without the API key (writes still need it).")
def catalog_serve(directory, database, host, port, public):
    """Serve DIRECTORY (default: runs) until Ctrl-C: its run files, registered as they
    appear and updated while written, and the runs benches publish to it.  The API key
    writes need is printed at the first start (or set LABRIG_CATALOG_API_KEY)."""
    from labrig.catalog.commands import require_extra, serve

    require_extra("labrig catalog")
    serve(directory, database=database, host=host, port=port, public=public, echo=click.echo)


@catalog.command("search", short_help="Runs matching NAME OP VALUE terms.")
@click.argument("query")
@click.option("--uri", default=None, help="The catalogue (default: $LABRIG_CATALOG_URI or local).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, None))
def catalog_search(query, uri, limit):
    """Runs whose metadata match every term of QUERY, one line each, e.g.

    \b
      labrig catalog search "procedure=jvl peak_eqe>20 sample~NSA"

    OP: = != > >= < <= and ~ (contains).  A name that is not a field (procedure, sample,
    operator, status, bench, device_kind, start_time, ...) is a figure (peak_eqe)."""
    from labrig.catalog.commands import default_uri, require_extra, search

    require_extra("labrig catalog")
    found = search(query, uri or default_uri(), limit, click.echo)
    click.echo(f"{found} run(s)", err=True)


@catalog.command("sync", short_help="Send a directory's runs a catalogue lacks.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("uri")
def catalog_sync(directory, uri):
    """Send every run file in DIRECTORY that the catalogue at URI lacks or holds
    differently (after a run published while the catalogue was down)."""
    from labrig.catalog.commands import require_extra, sync

    require_extra("labrig catalog")
    sys.exit(EXIT_FAILED if sync(directory, uri, click.echo) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
