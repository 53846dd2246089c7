"""``labrig batch run PLAN``: the command's body (``labrig.cli`` keeps only the click
declaration).  Prints the batch file, how the devices ended (the yield per substrate) and
why each skipped pixel was skipped; returns the exit status."""

from __future__ import annotations

from pathlib import Path

import click

#: exit status by how the batch ended (as ``labrig run``'s by the run's)
STATUS_EXIT = {"finished": 0, "failed": 1, "aborted": 130}


def _mount(substrate: str) -> None:
    """Ask the operator to mount the next substrate (a bench with real instruments)."""
    click.prompt(
        f"OPERATOR: mount substrate {substrate}, then press Enter",
        default="",
        show_default=False,
        prompt_suffix=" ",
    )


def batch_run(plan_path: Path, resume: bool, progress: bool | None) -> int:
    from labrig.analysis.statistics import substrate_yield
    from labrig.batch.plan import load_plan
    from labrig.batch.runner import run_batch

    plan = load_plan(plan_path)
    result = run_batch(plan, resume=resume, progress=progress, mount=_mount)
    click.echo(f"{result.status}: {result.path}")
    if result.reason:
        click.echo(f"reason: {result.reason}")
    for y in substrate_yield(result):  # the report's yield, counted the same way
        skipped, left = sum(y.skipped.values()), sum(y.other.values())
        click.echo(
            f"  {y.substrate}: {y.measured} of {y.planned} pixels measured, {skipped} skipped"
            + (f", {left} not done" if left else "")
        )
    seen: set[tuple[str, str]] = set()
    for d in result.devices:
        if d.status == "skipped" and (d.substrate, d.pixel) not in seen:
            seen.add((d.substrate, d.pixel))
            click.echo(f"  skipped {d.substrate}/{d.pixel}: {d.reason}")
    if result.status == "aborted":
        click.echo(f"resume with: labrig batch run {plan_path} --resume")
    return STATUS_EXIT.get(result.status, 1)
