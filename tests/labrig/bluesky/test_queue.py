"""`labrig queue serve` end to end: a real redis-server on a free loopback port, a real
RE Manager process driving the simulated 2400 and 6485 served by ``labrig sim serve``
in a third process, and a client in this one using bluesky-queueserver-api.  Output
states are asked of the instrument: through ``output_state`` (``:OUTP?`` over the
worker's connection, the only one the 2400 takes) while the worker holds it, and
directly over pyvisa once the environment is closed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest
import redis
from bluesky_queueserver_api import BFunc, BPlan
from bluesky_queueserver_api.zmq import REManagerAPI

from labrig.simulators.served import ask

from .served_bench import served_bench

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs Debian's redis-server (.ci/run)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_addr(tmp_path_factory):
    """redis-server on a free loopback port, nothing persisted."""
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and server.poll() is None, "redis did not start"
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def queue(redis_addr, tmp_path_factory):
    """The RE Manager for a served simulated bench, its environment open; yields
    (client, served instruments); closes the environment and checks the 2400 is off."""
    tmp = tmp_path_factory.mktemp("queue")
    control, info = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    with served_bench(tmp) as (served, config):
        log = (tmp / "manager.log").open("w")
        manager = subprocess.Popen(
            [sys.executable, "-m", "labrig", "queue", "serve", "--config", str(config)]
            + ["--state-dir", str(tmp / "state"), "--", "--redis-addr", redis_addr]
            + ["--zmq-control-addr", control, "--zmq-info-addr", info]
            + ["--zmq-publish-console", "OFF", "--redis-name-prefix", tmp.name],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        RM = REManagerAPI(zmq_control_addr=control, zmq_info_addr=info, timeout_recv=30)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    RM.status()
                    break
                except RM.RequestTimeoutError:
                    assert manager.poll() is None, (tmp / "manager.log").read_text()
                    assert time.monotonic() < deadline, (tmp / "manager.log").read_text()
            RM.environment_open()
            RM.wait_for_idle(timeout=60)
            assert RM.status()["worker_environment_exists"], (tmp / "manager.log").read_text()
            yield RM, served
            RM.environment_close()
            RM.wait_for_idle(timeout=60)
            # the worker has let go of the 2400: ask it directly
            assert ask(served.resources["smu"], ":OUTP?") == "0"
        finally:
            RM.close()
            manager.terminate()
            try:
                manager.wait(timeout=60)
            except subprocess.TimeoutExpired:
                manager.kill()
                manager.wait()
            log.close()


def _output(RM) -> bool:
    """The 2400's output, asked of the instrument by the worker."""
    task = RM.function_execute(BFunc("output_state"), run_in_background=True)["task_uid"]
    RM.wait_for_completed_task(task, timeout=30)
    result = RM.task_result(task)["result"]
    assert result["success"], result
    return result["return_value"]["smu"]


def _run_queue(RM, plans: list[BPlan]) -> None:
    """Submit ``plans``, start the queue and wait until they are all in the history."""
    done = len(_history(RM)) + len(plans)
    RM.item_add_batch(plans)
    RM.queue_start()
    RM.wait_for_condition(
        lambda s: s["items_in_history"] == done and s["manager_state"] == "idle", timeout=60
    )
    RM.queue_clear()  # a failed or aborted plan is put back at the front of the queue


def _history(RM) -> list[dict]:
    return RM.history_get()["items"]


def test_a_queue_of_three_plans_runs_on_the_served_bench(queue):
    RM, served = queue
    RM.history_clear()
    _run_queue(
        RM,
        [
            BPlan("count", ["photodiode", "smu"], num=3),
            BPlan("scan", ["photodiode", "smu"], "smu.level", 0, 3, num=7),
            BPlan("rel_scan", ["photodiode", "smu"], "smu.level", -0.5, 0.5, num=3),
        ],
    )
    items = _history(RM)
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
    assert [i["result"]["exit_status"] for i in _history(RM)] == ["aborted"]
    RM.queue_clear()  # a failed or aborted plan is put back at the front of the queue


def test_bad_plans_are_refused_at_submission_or_before_any_output(queue):
    RM, served = queue
    with pytest.raises(RM.RequestFailedError, match="'jvl_typo' is not in the list of allowed"):
        RM.item_add(BPlan("jvl_typo", ["smu"]))
    with pytest.raises(RM.RequestFailedError, match="(?s)num.*Input should be a valid integer"):
        RM.item_add(BPlan("scan", ["photodiode", "smu"], "smu.level", 0, 3, num="many"))
    # what only the bench knows: labrig's one line, before the output is on at that level
    RM.history_clear()
    for plan in (
        BPlan("count", ["photodiod", "smu"]),
        BPlan("scan", ["photodiode", "smu"], "smu.level", 0, 15, num=4),
    ):
        _run_queue(RM, [plan])  # one at a time: a failed plan stops the queue
    unknown, beyond = (item["result"] for item in _history(RM))
    assert unknown["exit_status"] == "failed"
    assert (
        "count: unknown device 'photodiod' (did you mean 'photodiode'?); "
        "allowed: photodiode, smu" in unknown["msg"]
    )
    assert beyond["exit_status"] == "failed"
    assert "voltage 15 V exceeds limits.max_voltage_v (12 V)" in beyond["msg"]
    assert _output(RM) is False
