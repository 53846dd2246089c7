"""`labrig queue serve` end to end: a real redis-server on a free loopback port, a real
RE Manager process driving the simulated 2400 and 6485 served by ``labrig sim serve``
in a third process, and a client in this one using bluesky-queueserver-api.  Output
states are asked of the instrument: through ``output_state`` (``:OUTP?`` over the
worker's connection, the only one the 2400 takes) while the worker holds it, and
directly over pyvisa once the environment is closed."""

from __future__ import annotations

import shutil
import time

import pytest
from bluesky_queueserver_api import BPlan

from labrig.simulators.served import ask

from .queue_manager import history, output_state, re_manager, run_queue, running_redis
from .served_bench import served_bench

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs Debian's redis-server (.ci/run)"
)


@pytest.fixture(scope="module")
def queue(tmp_path_factory):
    """The RE Manager for a served simulated bench, its environment open; yields
    (client, served instruments); checks the 2400 is off once the worker let go of it."""
    tmp = tmp_path_factory.mktemp("queue")
    with running_redis(tmp) as redis_addr, served_bench(tmp) as (served, config):
        with re_manager(redis_addr, tmp, config) as RM:
            yield RM, served
        # the worker has let go of the 2400: ask it directly
        assert ask(served.resources["smu"], ":OUTP?") == "0"


def _output(RM) -> bool:
    """The 2400's output, asked of the instrument by the worker."""
    return output_state(RM)["smu"]


def test_a_queue_of_three_plans_runs_on_the_served_bench(queue):
    RM, served = queue
    RM.history_clear()
    run_queue(
        RM,
        [
            BPlan("count", ["photodiode", "smu"], num=3),
            BPlan("scan", ["photodiode", "smu"], "smu.level", 0, 3, num=7),
            BPlan("rel_scan", ["photodiode", "smu"], "smu.level", -0.5, 0.5, num=3),
        ],
    )
    items = history(RM)
    assert [i["name"] for i in items] == ["count", "scan", "rel_scan"]
    assert [i["result"]["exit_status"] for i in items] == ["completed"] * 3
    assert _output(RM) is False


def test_pause_resume_abort_through_the_api_with_the_output_asked(queue):
    RM, served = queue
    RM.history_clear()
    RM.item_add(BPlan("count", ["photodiode", "smu"], num=100000, delay=0.01))
    RM.queue_start()
    deadline = time.monotonic() + 60
    while not _output(RM):  # the count has staged the 2400: its output is on
        assert time.monotonic() < deadline, "the output never went on"
    RM.re_pause(option="immediate")
    RM.wait_for_condition(lambda s: s["manager_state"] == "paused", timeout=60)
    assert _output(RM) is False  # the default on pause: off
    RM.re_resume()
    RM.wait_for_condition(lambda s: s["manager_state"] == "executing_queue", timeout=60)
    assert _output(RM) is True  # back on for the rest of the count
    RM.re_pause(option="immediate")
    RM.wait_for_condition(lambda s: s["manager_state"] == "paused", timeout=60)
    RM.re_abort()
    RM.wait_for_idle(timeout=30)
    assert _output(RM) is False
    assert [i["result"]["exit_status"] for i in history(RM)] == ["aborted"]
    RM.queue_clear()  # a failed or aborted plan is put back at the front of the queue


def test_bad_plans_are_refused_at_submission_or_before_any_output(queue):
    RM, served = queue
    with pytest.raises(
        RM.RequestFailedError,
        match=r"unknown plan 'jvll' \(did you mean 'jvl'\?\); allowed: count, scan, rel_scan, jvl, pulsed_el$",
    ):
        RM.item_add(BPlan("jvll", ["smu"]))
    with pytest.raises(
        RM.RequestFailedError,
        match=r"count: unknown device 'photodiod' \(did you mean 'photodiode'\?\); "
        "allowed: photodiode, smu",
    ):
        RM.item_add(BPlan("count", ["photodiod", "smu"]))
    with pytest.raises(RM.RequestFailedError, match="(?s)num.*Input should be a valid integer"):
        RM.item_add(BPlan("scan", ["photodiode", "smu"], "smu.level", 0, 3, num="many"))
    assert RM.queue_get()["items"] == []
    # what only the bench knows at the level: labrig's one line, before the output is on there
    RM.history_clear()
    (beyond,) = run_queue(RM, [BPlan("scan", ["photodiode", "smu"], "smu.level", 0, 15, num=4)])
    assert beyond["result"]["exit_status"] == "failed"
    assert "voltage 15 V exceeds limits.max_voltage_v (12 V)" in beyond["result"]["msg"]
    assert _output(RM) is False
