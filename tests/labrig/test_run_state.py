"""The run-state table: every allowed transition, refused ones, and what the signal
handler and the GUI's stop request turn into (the real-signal runs are in test_runner)."""

from __future__ import annotations

import logging
import signal

import pytest

from labrig.errors import RunAborted
from labrig.run_state import TRANSITIONS, RunState, RunStateMachine, StopControl, TransitionError

S = RunState
ALLOWED = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)


def _at(state: RunState) -> RunStateMachine:
    """A machine brought to ``state`` through allowed transitions only."""
    paths = {
        S.IDLE: [],
        S.RUNNING: [S.RUNNING],
        S.STOPPING: [S.RUNNING, S.STOPPING],
        S.STOPPING_NOW: [S.RUNNING, S.STOPPING, S.STOPPING_NOW],
        S.CLOSING: [S.RUNNING, S.STOPPING, S.CLOSING],
        S.FINISHED: [S.RUNNING, S.STOPPING, S.CLOSING, S.FINISHED],
        S.ABORTED: [S.RUNNING, S.STOPPING, S.CLOSING, S.ABORTED],
        S.FAILED: [S.RUNNING, S.STOPPING, S.CLOSING, S.FAILED],
    }
    machine = RunStateMachine()
    for step in paths[state]:
        machine.transition(step)
    assert machine.state is state
    return machine


def test_the_table_is_exactly_the_designed_one():
    assert ALLOWED == sorted(
        [
            (S.IDLE, S.RUNNING),
            (S.IDLE, S.STOPPING),
            (S.RUNNING, S.STOPPING),
            (S.STOPPING, S.STOPPING_NOW),
            (S.STOPPING, S.CLOSING),
            (S.STOPPING_NOW, S.CLOSING),
            (S.CLOSING, S.FINISHED),
            (S.CLOSING, S.ABORTED),
            (S.CLOSING, S.FAILED),
        ]
    )


@pytest.mark.parametrize(("start", "end"), ALLOWED, ids=lambda s: s.value)
def test_every_allowed_transition_is_taken_and_logged(start, end, caplog):
    machine = _at(start)
    caplog.clear()  # getting there logs too, when an earlier test left the root at INFO
    with caplog.at_level(logging.INFO, logger="labrig.run_state"):
        machine.transition(end, "why")
    assert machine.state is end and machine.history[-2:] == [start, end]
    assert caplog.messages == [f"run state {start.value} -> {end.value} (why)"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (S.IDLE, S.FINISHED),  # a run that never ran cannot have finished
        (S.RUNNING, S.FINISHED),  # no end without the shutdown
        (S.RUNNING, S.CLOSING),  # outputs are not off before the shutdown
        (S.STOPPING_NOW, S.STOPPING),  # a skipped ramp does not come back
        (S.CLOSING, S.RUNNING),
        (S.FINISHED, S.ABORTED),  # an ending is final
        (S.ABORTED, S.IDLE),
    ],
    ids=lambda s: s.value,
)
def test_impossible_transitions_are_refused(start, end):
    machine = _at(start)
    with pytest.raises(TransitionError, match=f"run state {start.value} cannot become {end.value}"):
        machine.transition(end)
    assert machine.state is start


def test_signals_request_stop_then_skip_the_ramp_then_only_patience(capsys):
    control = StopControl()
    control.start()
    with pytest.raises(RunAborted, match="interrupted by SIGTERM"):
        control._handle(signal.SIGTERM, None)
    assert control.state is S.STOPPING and control.ramp
    assert control.reason == "interrupted by SIGTERM"
    control.enter_shutdown()  # already stopping: stays, with the ramp
    assert control.state is S.STOPPING and control.ramp
    with pytest.raises(RunAborted):
        control._handle(signal.SIGINT, None)
    assert control.state is S.STOPPING_NOW and not control.ramp
    control._handle(signal.SIGHUP, None)  # no exception: the outputs are going off
    control._handle(signal.SIGHUP, None)
    control.finishing()
    control.end("aborted")
    assert control.history == [S.IDLE, S.RUNNING, S.STOPPING, S.STOPPING_NOW, S.CLOSING, S.ABORTED]
    assert control.reason == "interrupted by SIGTERM"  # the first signal is the one recorded
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "labrig: SIGTERM: stopping, ramping outputs down (again to skip the ramp)",
        "labrig: SIGINT: skipping the ramp, outputs off now",
        "labrig: SIGHUP: finishing safely, please wait",
    ]


def test_a_signal_inside_a_deferred_block_waits_for_its_end():
    control = StopControl()
    control.start()
    with pytest.raises(RunAborted), control.deferred():
        control._handle(signal.SIGINT, None)  # no exception here: a write is under way
        assert control.state is S.STOPPING
    assert control.should_stop()


def test_a_signal_during_a_normal_shutdown_skips_the_ramp():
    control = StopControl()
    control.start()
    control.enter_shutdown()
    assert control.state is S.STOPPING and control.reason is None
    with pytest.raises(RunAborted, match="interrupted by SIGINT during shutdown"):
        control._handle(signal.SIGINT, None)
    assert control.state is S.STOPPING_NOW


def test_request_stop_from_another_thread_does_not_raise():
    control = StopControl()
    control.start()
    assert control.request_stop("stopped from the GUI")
    assert control.state is S.STOPPING and control.should_stop()
    assert not control.request_stop("again")  # already stopping
    assert control.reason == "stopped from the GUI"
