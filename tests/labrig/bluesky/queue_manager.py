"""A real redis-server and a real RE Manager (``labrig queue serve``) for a test module,
and a client's helpers (bluesky-queueserver-api) to drive them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis
from bluesky_queueserver_api import BFunc, BPlan
from bluesky_queueserver_api.zmq import REManagerAPI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_redis(tmp: Path) -> Iterator[str]:
    """redis-server on a free loopback port, nothing persisted; yields its address."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, "redis did not start"
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def re_manager(
    redis_addr: str, tmp: Path, config: Path, serve_args: Sequence[str] = ()
) -> Iterator[REManagerAPI]:
    """``labrig queue serve`` for ``config`` (and ``serve_args``) with its environment
    open (run files into ``tmp/runs``); closes the environment and stops the manager afterwards."""
    control, info = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    log_path = tmp / "manager.log"
    log = log_path.open("w")
    manager = subprocess.Popen(
        [sys.executable, "-m", "labrig", "queue", "serve", "--config", str(config)]
        + ["--state-dir", str(tmp / "state"), "--output-dir", str(tmp / "runs"), *serve_args]
        + ["--", "--redis-addr", redis_addr, "--zmq-control-addr", control]
        + ["--zmq-info-addr", info, "--zmq-publish-console", "OFF"]
        + ["--redis-name-prefix", tmp.name],
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
                assert manager.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
        RM.environment_open()
        RM.wait_for_idle(timeout=60)
        assert RM.status()["worker_environment_exists"], log_path.read_text()
        yield RM
        RM.environment_close()
        RM.wait_for_idle(timeout=60)
    finally:
        RM.close()
        manager.terminate()
        try:
            manager.wait(timeout=60)
        except subprocess.TimeoutExpired:
            manager.kill()
            manager.wait()
        log.close()


def output_state(RM: REManagerAPI) -> dict[str, bool]:
    """Each source's output, asked of the instrument by the worker."""
    task = RM.function_execute(BFunc("output_state"), run_in_background=True)["task_uid"]
    RM.wait_for_completed_task(task, timeout=30)
    result = RM.task_result(task)["result"]
    assert result["success"], result
    return result["return_value"]


def history(RM: REManagerAPI) -> list[dict]:
    return RM.history_get()["items"]


def run_queue(RM: REManagerAPI, plans: list[BPlan], timeout: float = 120) -> list[dict]:
    """Submit ``plans``, start the queue and wait until they are all in the history;
    returns their history items."""
    before = len(history(RM))
    RM.item_add_batch(plans)
    RM.queue_start()
    RM.wait_for_condition(
        lambda s: s["items_in_history"] == before + len(plans) and s["manager_state"] == "idle",
        timeout=timeout,
    )
    RM.queue_clear()  # a failed or aborted plan is put back at the front of the queue
    return history(RM)[before:]
