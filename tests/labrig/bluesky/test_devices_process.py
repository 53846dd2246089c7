"""kill -9 of a RunEngine process driving a served 2400: nothing can run in the killed
process, so the bench link's guard turns the output off; the simulated 2400 itself is
asked afterwards (``:OUTP?`` -> 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from labrig.simulators.served import ask

from .served_bench import served_bench

CHILD = textwrap.dedent(
    """
    import sys
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp
    import bluesky.preprocessors as bpp
    from bluesky import RunEngine
    from ophyd_async.core import init_devices
    from labrig.bluesky.devices import BenchLink, Picoammeter6485, SourceMeter2400

    RE = RunEngine()
    link = BenchLink(sys.argv[1])
    with init_devices():
        smu = SourceMeter2400(link)
        photodiode = Picoammeter6485(link)
    print("guard", link.guard.pid, flush=True)
    RE.subscribe(lambda name, doc: name == "event" and print("row", flush=True))

    def plan():
        yield from bps.mv(smu.level, 2.8)
        yield from bp.count([photodiode, smu], num=None, delay=0.02)

    RE(bpp.stage_wrapper(plan(), [smu, photodiode]))
    """
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_9_of_the_runengine_process_leaves_the_served_2400_off(tmp_path: Path):
    with served_bench(tmp_path) as (served, config):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(config)], stdout=subprocess.PIPE, text=True
        )
        try:
            guard = int(child.stdout.readline().split()[1])
            rows = 0
            while rows < 5:
                assert child.stdout.readline() == "row\n"
                rows += 1
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while not _gone(guard):
            assert time.monotonic() < deadline, "the guard did not finish"
            time.sleep(0.1)
        assert ask(served.resources["smu"], ":OUTP?") == "0"
        assert float(ask(served.resources["smu"], ":SOUR:VOLT?")) == 0.0  # ramped down
