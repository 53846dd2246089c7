"""Resuming a batch whose file lags its run files (a crash between a run closing and the
batch file's rewrite): a run file that closed finished is kept, with its figures and its
contact verdict; an unfinished one is measured again into a new file, the old one kept
on record; nothing finished is measured again."""

from __future__ import annotations

import h5py
import pytest

from labrig.batch.file import read_batch, read_batch_record, write_batch
from labrig.batch.plan import load_plan
from labrig.batch.runner import run_batch
from labrig.errors import UserInputError
from labrig.store import load_run

from .batch_plans import substrate_bench, write_plan


def test_resume_trusts_the_run_files_not_the_lagging_batch_file(tmp_path, switch_configs):
    bench = substrate_bench(switch_configs, defects={"B": "short"})
    samples = [{"substrate": "S1", "pixels": ["A", "B", "C"]}]
    plan = load_plan(write_plan(tmp_path, bench, samples=samples))
    first = run_batch(plan, progress=False)
    assert [d.status for d in first.devices] == ["finished", "skipped", "finished"]
    a, b, c = first.devices
    # the crash: the batch file still says every row is under way, and C's run never
    # closed (its file says aborted)
    lagging = [
        type(d)(d.substrate, d.pixel, d.condition, d.measurement, "pending", "", d.run_file, {})
        for d in first.devices
    ]
    write_batch(first.path, plan.name, "running", lagging, plan_text=plan.text)
    with h5py.File(c.run_file, "r+") as f:
        f["entry/status"][()] = "aborted"
    kept = {d.pixel: d.run_file.stat().st_mtime_ns for d in (a, b)}

    again = run_batch(plan, resume=True, progress=False)
    assert again.status == "finished"
    rows = read_batch(again.path).devices
    assert [d.status for d in rows] == ["finished", "skipped", "finished"]
    assert rows[0].run_file == a.run_file and rows[0].figures == a.figures
    assert rows[1].run_file == b.run_file and rows[1].reason == b.reason
    assert rows[1].reason.startswith("shorted: ")
    assert {p: r.run_file.stat().st_mtime_ns for p, r in zip("AB", rows[:2], strict=True)} == kept
    assert rows[2].run_file != c.run_file
    assert load_run(rows[2].run_file).run.status == "finished"
    assert read_batch_record(again.path).superseded == ((2, c.run_file),)
    assert load_run(c.run_file).run.status == "aborted"  # the old one kept
    assert len(list((tmp_path / "runs").glob("S1-*_jvl_*.h5"))) == 4


def test_resume_refuses_a_changed_plan_and_a_missing_batch(tmp_path, switch_configs):
    bench = substrate_bench(switch_configs)
    plan = load_plan(write_plan(tmp_path, bench, samples=[{"substrate": "S1", "pixels": ["A"]}]))
    with pytest.raises(UserInputError, match=r"--resume: no batch file .*NSA_series_batch.h5"):
        run_batch(plan, resume=True, progress=False)
    write_batch(tmp_path / "runs" / "NSA_series_batch.h5", plan.name, "aborted", [])
    with pytest.raises(UserInputError, match=r"exists: --resume to continue it"):
        run_batch(plan, progress=False)
    with pytest.raises(
        UserInputError, match=r"started from another plan \(0 runs, the plan now has 1\)"
    ):
        run_batch(plan, resume=True, progress=False)
