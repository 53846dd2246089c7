"""labrig's measurements as queued plans, end to end: a real redis-server and RE Manager
(``labrig queue serve``) driving the 2400, 6485 and a two-channel lifetime rig served
by ``labrig sim serve``; the worker's documents published through a 0MQ proxy to a
``RemoteDispatcher`` here, as any Bluesky subscriber gets them; run files read back with
the store's reader; outputs asked of the instruments (through the worker's
``output_state`` while it holds them, directly once it let go)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from bluesky.callbacks.zmq import Proxy, RemoteDispatcher
from bluesky_queueserver_api import BPlan
from pytest import approx

from labrig.simulators.served import ask
from labrig.store import load_run

from .queue_manager import free_port, output_state, re_manager, run_queue, running_redis
from .served_bench import served_bench

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs Debian's redis-server (.ci/run)"
)

#: a J-V-L short enough for CI, as both the queue and `labrig run` take it
JVL = {"stop_voltage": 4.0, "step_voltage": 0.1, "source_delay": 0.0, "dark_readings": 3}
#: a device whose figures do not depend on when they were measured: no self-heating and
#: no burn-in over the seconds a run takes.  The served simulators' time runs in real
#: time between commands, so on the shipped device two identical runs differ by how
#: loaded the machine was (~3e-5 idle, 2e-4 under a full test suite); on this one the
#: queued run and `labrig run` must agree exactly.
TIMELESS_DEVICE = {
    "thermal_resistance_k_cm2_w": 0.0,
    "junction_thermal_resistance_k_cm2_w": 0.0,
    "degradation": {"tau1_h": 1.0e9, "tau2_h": 1.0e9},
}
LIFETIME = {
    "channels": "1,2",
    "drive": "current",
    "levels": "2",
    "max_duration": 0.0005,
    "settle_time": 0.0,
    "first_interval": 0.05,
    "ramp_dwell": 0.0,
}
ROLES = ("smu", "photometer", "lifetime")


class Documents:
    """Every document the worker published, by run (start uid), in order."""

    def __init__(self, address: str) -> None:
        self.runs: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        self._current: dict[str, str] = {}  # descriptor uid -> run uid
        self.dispatcher = RemoteDispatcher(address)
        self.dispatcher.subscribe(self._take)
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            self.dispatcher.start()

    def close(self) -> None:
        self.dispatcher.loop.call_soon_threadsafe(self.dispatcher._task.cancel)
        self.thread.join(timeout=10)

    def _take(self, name: str, doc: dict) -> None:
        run = doc.get("run_start") or doc.get("uid")
        if name == "event":
            run = self._current[doc["descriptor"]]
        if name == "descriptor":
            self._current[doc["uid"]] = run
        self.runs[run].append((name, doc))

    def by_sample(self, sample: str) -> list[tuple[str, dict]]:
        (docs,) = [d for d in self.runs.values() if d[0][1].get("sample") == sample]
        return docs

    def stopped(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(d[-1][0] == "stop" for d in list(self.runs.values())) < n:
            assert time.monotonic() < deadline, f"{len(self.runs)} runs, not {n} stopped"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """(client, served instruments, documents, run-file directory, tmp)."""
    tmp = tmp_path_factory.mktemp("queue_plans")
    proxy_in, proxy_out = free_port(), free_port()
    proxy = Proxy(proxy_in, proxy_out)
    threading.Thread(target=proxy.start, daemon=True).start()
    documents = Documents(f"127.0.0.1:{proxy_out}")
    publish = ["--documents", f"127.0.0.1:{proxy_in}"]
    with (
        running_redis(tmp) as redis_addr,
        # at instrument timing (clock speed 1): with instant instrument waits the paused
        # test's 1200-point sweep ran out in about a second and, on a loaded machine,
        # finished before the test's pause reached it
        served_bench(tmp, 1.0, ROLES, device_model=TIMELESS_DEVICE) as (served, config),
    ):
        with re_manager(redis_addr, tmp, config, publish) as RM:
            yield RM, served, documents, tmp / "runs", tmp
            assert output_state(RM) == {"smu": False, "lifetime_1": False, "lifetime_2": False}
        assert ask(served.resources["smu"], ":OUTP?") == "0"  # the worker let go of it
    documents.close()


def _cli_jvl(tmp: Path, config: Path, sample: str, *settings: str) -> subprocess.CompletedProcess:
    sets = [f"--set={k}={v}" for k, v in JVL.items()] + [f"--set={s}" for s in settings]
    return subprocess.run(
        [sys.executable, "-m", "labrig", "run", "jvl", "--config", str(config)]
        + ["--sample", sample, "-o", str(tmp / "cli"), *sets],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_queue_of_jvl_on_two_samples_and_a_lifetime_run(bench):
    """First on the bench (the figures' equality needs the served simulator fresh)."""
    RM, served, documents, runs, tmp = bench
    items = run_queue(
        RM,
        [
            BPlan("jvl", "dev1", **JVL),
            BPlan("jvl", "dev2", **JVL),
            BPlan("lifetime", "dev3", **LIFETIME),
        ],
    )
    assert [i["result"]["exit_status"] for i in items] == ["completed"] * 3, items
    files = sorted(runs.glob("*.h5"), key=lambda p: p.stat().st_mtime)
    loaded = [load_run(p) for p in files]
    assert [(r.run.procedure, r.run.sample, r.run.status) for r in loaded] == [
        ("jvl", "dev1", "finished"),
        ("jvl", "dev2", "finished"),
        ("lifetime", "dev3", "finished"),
    ]
    documents.stopped(3)
    for run in loaded:
        docs = documents.by_sample(run.run.sample)
        start, stop = docs[0][1], docs[-1][1]
        assert start["procedure"] == run.run.procedure and start["run_file"] == str(run.path)
        assert stop["exit_status"] == "success" and stop["reason"] == ""
    dev1 = documents.by_sample("dev1")
    primary = [d for n, d in dev1 if n == "descriptor" and d["name"] == "primary"][0]
    rows = [d for n, d in dev1 if n == "event" and d["descriptor"] == primary["uid"]]
    assert len(rows) == loaded[0].rows() == 41
    assert primary["data_keys"]["current"]["units"] == "A"
    # the same J-V-L through `labrig run`, on a fresh simulator with the same seed
    with served_bench(tmp, 1.0, name="fresh", device_model=TIMELESS_DEVICE) as (_, fresh):
        cli = _cli_jvl(tmp, fresh, "dev1")
    assert cli.returncode == 0, cli.stderr
    (cli_file,) = (tmp / "cli").glob("*.h5")
    queued, direct = loaded[0].figures(), load_run(cli_file).figures()
    assert queued["peak_eqe"][0] > 1.0  # a real J-V-L, not an empty one
    assert queued.keys() == direct.keys()
    for name, (value, units) in direct.items():  # exactly: see TIMELESS_DEVICE
        assert (queued[name][0], queued[name][1]) == (value, units), name


def _events_after(documents: Documents, sample: str, n: int, timeout: float = 30) -> list[dict]:
    """The sample's primary events once there are more than ``n``."""
    deadline = time.monotonic() + timeout
    while True:
        docs = documents.runs and [
            d
            for run in list(documents.runs.values())
            if run[0][1].get("sample") == sample
            for name, d in run
            if name == "event" and "current" in d["data"]
        ]
        if docs and len(docs) > n:
            return docs
        assert time.monotonic() < deadline, f"{sample}: no more than {n} events"
        time.sleep(0.02)


def test_pause_resume_abort_of_a_queued_jvl(bench):
    RM, served, documents, runs, tmp = bench
    slow = {**JVL, "stop_voltage": 6.0, "step_voltage": 0.005, "source_delay": 0.02}
    RM.item_add(BPlan("jvl", "paused", **slow))
    RM.queue_start()
    _events_after(documents, "paused", 10)
    RM.re_pause(option="immediate")
    RM.wait_for_condition(lambda s: s["manager_state"] == "paused", timeout=60)
    assert output_state(RM)["smu"] is False  # held at a point, ramped off
    before = len(_events_after(documents, "paused", 0))
    RM.re_resume()
    RM.wait_for_condition(lambda s: s["manager_state"] == "executing_queue", timeout=60)
    later = _events_after(documents, "paused", before + 20)
    # the sweep went on where it was held, each level read back at the 2400 (so sourced:
    # its output is back on), none lost or repeated across the pause
    volts = [e["data"]["voltage"] for e in later]
    assert volts == approx([k * slow["step_voltage"] for k in range(len(volts))], abs=1e-4)
    RM.re_pause(option="immediate")
    RM.wait_for_condition(lambda s: s["manager_state"] == "paused", timeout=60)
    RM.re_abort()
    RM.wait_for_idle(timeout=60)
    assert output_state(RM)["smu"] is False
    RM.queue_clear()  # an aborted plan is put back at the front of the queue
    assert RM.history_get()["items"][-1]["result"]["exit_status"] == "aborted"
    (paused,) = [r.run for r in map(load_run, runs.glob("*.h5")) if r.run.sample == "paused"]
    assert paused.status == "aborted"
    assert paused.abort_reason == "stopped by the RunEngine"
    docs = documents.by_sample("paused")
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "abort"


@pytest.mark.parametrize(
    "setting",
    ["stop_voltage=250", "stop_voltage=15", "spectra=some", "dark_readings=2.5"],
)
def test_a_bad_parameter_is_refused_at_submission_with_the_cli_message(bench, setting):
    RM, served, documents, runs, tmp = bench
    name, text = setting.split("=")
    value = {"250": 250, "15": 15, "2.5": 2.5}.get(text, text)
    with pytest.raises(RM.RequestFailedError) as refused:
        RM.item_add(BPlan("jvl", "dev1", **{**JVL, name: value}))
    assert RM.queue_get()["items"] == []
    cli = _cli_jvl(tmp, tmp / "bench.yaml", "dev1", setting)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    (said,) = cli.stderr.strip().splitlines()
    told = said.removeprefix("labrig: error: ").removeprefix("--set ")
    assert str(refused.value).endswith(f"Failed to add an item: jvl: {told}"), said
