"""SIGINT sent to a real ``labrig batch run`` process mid-batch: every output is off and
every relay open (asked of the simulated instruments, which this test serves over
loopback as a real bench's would be), every finished run file is intact, and
``--resume`` completes the batch without measuring a finished pixel again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from labrig.batch.file import read_batch, read_batch_record
from labrig.batch.plan import load_plan
from labrig.batch.runner import batch_file_path, run_batch
from labrig.simulators.lab import start_lab
from labrig.store import load_run

from .batch_plans import JVL, substrate_bench, write_plan

ROLES = ("smu", "photometer", "switch")


def _finished(path) -> int:
    try:
        return sum(d.status == "finished" for d in read_batch(path).devices)
    except Exception:  # noqa: BLE001 - not written yet
        return 0


def test_sigint_mid_batch_leaves_everything_off_and_the_batch_resumable(tmp_path, switch_configs):
    served = substrate_bench(switch_configs)
    with start_lab(switch_configs.parse_config(served), ROLES, served=True) as lab:
        bench = dict(served)
        bench["instruments"] = {
            role: {
                "driver": served["instruments"][role]["driver"],
                "resource": lab.resources[role],
                "timeout_s": 5,
            }
            for role in ROLES
        }
        sweep = {**JVL, "step_voltage": 0.1, "stop_voltage": 3.5}  # ~0.5 s a pixel
        plan_path = write_plan(tmp_path, bench, substrates=1, measurements=[{"jvl": sweep}])
        plan = load_plan(plan_path)
        assert not plan.config.simulated  # a real bench, as far as the batch can tell
        path = batch_file_path(plan)
        out = (tmp_path / "out.txt").open("w+")
        proc = subprocess.Popen(
            [sys.executable, "-m", "labrig", "batch", "run", str(plan_path), "--no-progress"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while _finished(path) < 2 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert proc.poll() is None, "the batch ended before it could be interrupted"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
        out.seek(0)
        said = out.read()
        assert "Traceback" not in said
        assert f"resume with: labrig batch run {plan_path} --resume" in said

        # the instruments themselves: output off, nothing connected
        assert lab.instruments["smu"].output is False
        assert lab.physics.operating_point.output_on is False
        assert lab.instruments["switch"].relays.closed() == ()

        stopped = read_batch(path)
        assert stopped.status == "aborted"
        done = {d.pixel: d for d in stopped.devices if d.status == "finished"}
        assert 2 <= len(done) < 8
        assert (
            f"  S1: {len(done)} of 8 pixels measured, 0 skipped, {8 - len(done)} not done" in said
        )
        for d in done.values():
            assert load_run(d.run_file).run.status == "finished"
        assert {d.status for d in stopped.devices} <= {"finished", "aborted", "pending"}
        before = {p: (d.run_file, d.run_file.stat().st_mtime_ns) for p, d in done.items()}
        files_before = set((tmp_path / "runs").glob("*_jvl_*.h5"))

        resumed = run_batch(load_plan(plan_path), resume=True, progress=False)
        assert resumed.status == "finished"
        after = read_batch(path)
        assert [d.status for d in after.devices] == ["finished"] * 8
        for pixel, (run_file, mtime) in before.items():  # not measured again
            row = next(d for d in after.devices if d.pixel == pixel)
            assert row.run_file == run_file and run_file.stat().st_mtime_ns == mtime
        new = set((tmp_path / "runs").glob("*_jvl_*.h5")) - files_before
        assert len(new) == 8 - len(done)
        superseded = read_batch_record(path).superseded
        for index, old in superseded:  # the interrupted run: kept, and measured anew
            assert old.exists() and load_run(old).run.status != "finished"
            assert after.devices[index].run_file != old
        assert len(superseded) <= 1
        assert lab.instruments["smu"].output is False
        assert lab.instruments["switch"].relays.closed() == ()
