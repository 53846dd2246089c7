"""The states of a run, the transitions allowed between them, and the signals that ask
for them.

Modelled on bluesky's ``RunEngineStateMachine``: the state is one value, the allowed
transitions are one table, and a transition the table does not allow raises
``TransitionError`` instead of leaving the run in a state nobody designed::

    idle ──► running ──► stopping ──► stopping_now ──► closing ──► finished
      │                    ▲  │                          ▲   └───► aborted
      └────────────────────┘  └──────────────────────────┘   └───► failed

* ``running``: the procedure's startup/execute;
* ``stopping``: the shutdown, ramping every source down before turning it off (a normal
  end, or the first stop request, which may arrive before the bench even opened);
* ``stopping_now``: the shutdown skipping the ramp (a second stop request): every output
  still goes off;
* ``closing``: every output is off; the file takes its ending;
* ``finished`` / ``aborted`` / ``failed``: the run file's status.

Signals (``SIGNALS``: Ctrl-C, SIGTERM, SIGHUP, ...) only *request* transitions: the first
moves ``running`` to ``stopping`` and raises ``RunAborted`` in the main thread (so even an
instrument call blocked on I/O is interrupted), recording which signal; the next moves
``stopping`` to ``stopping_now`` and raises again (a ramp under way is cut short; the
bench then turns the outputs off at once); any later one only asks for patience.  Store
writes are never torn by a signal: inside ``deferred()`` the exception waits until the
write is done.  The GUI's Abort asks for the same first transition (``request_stop``).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from labrig.errors import RunAborted
from labrig.terminal import say

log = logging.getLogger(__name__)

#: every signal that would end the process and that a handler can catch (SIGKILL and
#: SIGSTOP cannot be); SIGALRM and SIGPROF are left to timers and profilers
SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGXCPU",
        "SIGPWR",
    )
    if hasattr(signal, name)
)


class RunState(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPING_NOW = "stopping_now"
    CLOSING = "closing"
    FINISHED = "finished"
    ABORTED = "aborted"
    FAILED = "failed"


_S = RunState
#: the allowed transitions; everything else is refused
TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    _S.IDLE: frozenset({_S.RUNNING, _S.STOPPING}),
    _S.RUNNING: frozenset({_S.STOPPING}),
    _S.STOPPING: frozenset({_S.STOPPING_NOW, _S.CLOSING}),
    _S.STOPPING_NOW: frozenset({_S.CLOSING}),
    _S.CLOSING: frozenset({_S.FINISHED, _S.ABORTED, _S.FAILED}),
    _S.FINISHED: frozenset(),
    _S.ABORTED: frozenset(),
    _S.FAILED: frozenset(),
}


class TransitionError(RuntimeError):
    """A transition the table does not allow (a bug in the caller, never a user error)."""


class RunStateMachine:
    """One run's state; ``transition`` checks the table and logs each change."""

    def __init__(self) -> None:
        self.state = RunState.IDLE
        #: every state passed through, in order (for the tests and a post-mortem)
        self.history: list[RunState] = [self.state]

    def can(self, new: RunState) -> bool:
        return new in TRANSITIONS[self.state]

    def transition(self, new: RunState, why: str = "") -> None:
        if not self.can(new):
            raise TransitionError(
                f"run state {self.state.value} cannot become {new.value}; allowed: "
                + (", ".join(sorted(s.value for s in TRANSITIONS[self.state])) or "none")
            )
        log.info("run state %s -> %s%s", self.state.value, new.value, f" ({why})" if why else "")
        self.state = new
        self.history.append(new)


class StopControl(RunStateMachine):
    """The state machine of one run with its stop requests: termination signals while
    installed, and ``request_stop`` from another thread (the GUI's Abort)."""

    def __init__(self) -> None:
        super().__init__()
        #: why the run was asked to stop ("interrupted by SIGINT"), or None
        self.reason: str | None = None
        self._depth = 0
        self._pending = False
        self._previous: dict[int, Any] = {}
        self._patience_asked = False
        self._deferred = _Deferred(self)

    # ------------------------------------------------------------------ queries
    def should_stop(self) -> bool:
        return self.reason is not None

    def requested(self) -> bool:
        """Whether a stop (or, where the run can be paused, a pause) is asked for; unlike
        a pausable run's ``should_stop``, never holds the run."""
        return self.reason is not None

    @property
    def ramp(self) -> bool:
        """Whether the shutdown ramps the sources down (only ``stopping`` does)."""
        return self.state is RunState.STOPPING

    # ------------------------------------------------------------------ the runner's steps
    def start(self) -> None:
        """The bench is about to open; a stop requested before then stays requested."""
        if self.state is RunState.IDLE:
            self.transition(RunState.RUNNING)

    def enter_shutdown(self) -> None:
        """The procedure is done (or stopped): the shutdown begins, with the ramp unless a
        second request already asked to skip it."""
        self._pending = False
        if self.state in (RunState.IDLE, RunState.RUNNING):
            self.transition(RunState.STOPPING, "shutdown")

    def finishing(self) -> None:
        """Outputs are off; from now on signals only ask for patience (the file closes)."""
        self._pending = False
        if self.state is not RunState.CLOSING:
            self.transition(RunState.CLOSING, "outputs off")

    def end(self, status: str) -> None:
        self.transition(RunState(status))

    # ------------------------------------------------------------------ requests
    def request_stop(self, reason: str) -> bool:
        """Ask the run to stop (ramp down, outputs off) without interrupting the caller's
        thread; False when it is already stopping or over."""
        if self.state not in (RunState.IDLE, RunState.RUNNING):
            return False
        self.reason = reason
        self.transition(RunState.STOPPING, reason)
        return True

    def _interrupt(self) -> None:
        """Raise ``RunAborted`` now, or when the deferred block ends."""
        if self._depth:
            self._pending = True
            return
        raise RunAborted(self.reason or "stopped")

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.state in (RunState.IDLE, RunState.RUNNING):
            self.reason = f"interrupted by {name}"
            self.transition(RunState.STOPPING, name)
            say(f"labrig: {name}: stopping, ramping outputs down (again to skip the ramp)")
            self._interrupt()
        elif self.state is RunState.STOPPING:
            if self.reason is None:  # the run was ending by itself
                self.reason = f"interrupted by {name} during shutdown"
            self.transition(RunState.STOPPING_NOW, name)
            say(f"labrig: {name}: skipping the ramp, outputs off now")
            if not self._depth:  # a write under way finishes; the shutdown reads the state
                raise RunAborted(self.reason)
        elif not self._patience_asked:  # once: a storm of signals is not a storm of lines
            self._patience_asked = True
            say(f"labrig: {name}: finishing safely, please wait")

    # ------------------------------------------------------------------ context managers
    @contextlib.contextmanager
    def installed(self, restore: bool = True) -> Iterator[StopControl]:
        """Own every termination signal for the duration (main thread only), then restore
        the previous handlers; with ``restore`` False ignore them instead (the process is
        about to exit: a late signal must not kill it with -SIG, even while Python
        finalises, which resets handlers written in Python but keeps SIG_IGN)."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            while self._previous:
                sig, handler = self._previous.popitem()
                signal.signal(sig, handler if restore else signal.SIG_IGN)

    def deferred(self) -> _Deferred:
        """No RunAborted inside this block (a half-written row would misalign columns);
        a stop that arrived meanwhile is raised when the block ends normally.  The block
        keeps its state on this control (a depth), so one object serves every record."""
        return self._deferred


class _Deferred:
    """``StopControl.deferred``'s block, as a plain context manager: it wraps every
    record a run delivers, so it costs no generator per row."""

    __slots__ = ("control",)

    def __init__(self, control: StopControl) -> None:
        self.control = control

    def __enter__(self) -> None:
        self.control._depth += 1

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        control = self.control
        control._depth -= 1
        if exc_type is None and control._depth == 0 and control._pending:
            control._pending = False
            raise RunAborted(control.reason or "stopped")
