"""One notion of time shared by procedures and simulators.

The bench runs on the wall clock.  The simulated bench can run on a ``SimulatedClock``
whose ``sleep`` advances simulated time (optionally also sleeping a scaled-down real
time), so a ten-hour lifetime test or a slow NPLC sweep finishes in seconds in CI while
every timestamp stays physically consistent.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from typing import Protocol

log = logging.getLogger(__name__)


class CommandLink(Protocol):
    """A served connection to a simulated instrument, as its clock sees it."""

    def in_flight(self, thread: threading.Thread) -> bool:
        """True while a command has reached this link (or is being read from it) and the
        instrument has not yet acted on it -- as seen by ``thread``, which is about to let
        time pass (an instrument's own thread spending time on a command is acting on it)."""


class Clock(ABC):
    """Source of time for procedures and simulated instruments."""

    @abstractmethod
    def time(self) -> float:
        """Seconds since the Unix epoch (simulated clocks start at a chosen epoch)."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of this clock's time pass."""

    @property
    def simulated(self) -> bool:
        return False


class WallClock(Clock):
    """Real time: what the bench uses."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock(Clock):
    """Simulated time that advances only when someone sleeps on it.

    ``speed`` is simulated seconds per real second: ``math.inf`` (the default) makes
    sleeps instant, ``3600`` turns an hour into a real second, ``1`` behaves like the
    wall clock.  Thread-safe: the simulated instruments sleep on it from server threads.

    Time never passes while a command is in flight to a simulated instrument served on
    this clock (``watch``): a sleep first waits, in real time, until every watched link
    has acted on what it was sent.  Otherwise a client that writes a level and then
    sleeps would let device time pass at the old level for as long as the server thread
    took to be scheduled -- a different amount on every run.
    """

    #: real time a sleep waits for in-flight commands before giving up (and saying so)
    SETTLE_TIMEOUT_S = 5.0
    #: real-time poll of the watched links while a command is in flight
    SETTLE_POLL_S = 50e-6

    #: how far real time may run behind the schedule before the schedule is reset (s):
    #: small overshoots of ``time.sleep`` are paid back by the next sleeps; a longer
    #: stretch of real time spent elsewhere is not "owed" to later sleeps
    CATCH_UP_S = 0.005

    def __init__(self, start: float | None = None, speed: float = math.inf) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        # a whole second: every timestamp start + x then rounds as on any other run, so
        # seeded runs store bit-identical times (relative to their start)
        self._now = float(math.floor(time.time())) if start is None else float(start)
        self.speed = float(speed)
        self._lock = threading.Lock()
        # real-time schedule for finite speeds: simulated ``_anchor_sim`` was due at
        # real ``_anchor_real`` (monotonic); sleeps wait for the schedule, not per call
        # (none until the first sleep: time before it is not owed to anyone)
        self._anchor_sim = self._now
        self._anchor_real = -math.inf
        self._links: list[CommandLink] = []

    @property
    def simulated(self) -> bool:
        return True

    def watch(self, link: CommandLink) -> None:
        """Hold time while ``link`` has a command in flight (see the class docstring)."""
        with self._lock:
            self._links.append(link)

    def unwatch(self, link: CommandLink) -> None:
        with self._lock:
            if link in self._links:
                self._links.remove(link)

    def _settle(self) -> None:
        """Wait (real time) until no watched link has a command in flight."""
        links = list(self._links)
        if not links:
            return
        me = threading.current_thread()
        deadline = time.monotonic() + self.SETTLE_TIMEOUT_S
        while any(link.in_flight(me) for link in links):
            if time.monotonic() > deadline:
                log.warning(
                    "simulated clock: a command stayed in flight for %g s; time goes on",
                    self.SETTLE_TIMEOUT_S,
                )
                return
            time.sleep(self.SETTLE_POLL_S)

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move simulated time forward without any real waiting (once nothing is in
        flight to a watched instrument)."""
        if seconds > 0:
            self._settle()
            with self._lock:
                self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._settle()
        if not math.isfinite(self.speed):
            with self._lock:
                self._now += seconds
            return
        with self._lock:
            real_now = time.monotonic()
            due = self._anchor_real + (self._now - self._anchor_sim) / self.speed
            if due < real_now - self.CATCH_UP_S:  # time was spent elsewhere: re-anchor
                self._anchor_sim, self._anchor_real = self._now, real_now
                due = real_now
            self._now += seconds
            wake = due + seconds / self.speed
        # sleeping to a deadline, not for an interval, keeps a run of short sleeps (an
        # instrument's cycles) from adding up each call's overshoot
        delay = wake - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class RunningClock(Clock):
    """Simulated time that runs by itself: real time x ``speed`` from ``start``.

    What a served simulator runs on: an instrument in another process keeps its own time
    (a rig's clock, a device ageing under drive) whether or not any client sleeps on it.
    ``sleep`` waits the scaled real time -- or, with ``instant_sleeps``, none at all:
    the slept time is added to the clock at once (an instrument's own waits take no real
    time, as ``clock_speed: .inf`` promises, while time between commands still runs).
    """

    def __init__(
        self, start: float | None = None, speed: float = 1.0, *, instant_sleeps: bool = False
    ) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"a running clock needs a finite speed > 0, got {speed}")
        self.speed = float(speed)
        self.instant_sleeps = instant_sleeps
        self._start = time.time() if start is None else float(start)
        self._real0 = time.monotonic()
        self._skipped = 0.0
        self._lock = threading.Lock()

    @property
    def simulated(self) -> bool:
        return True

    def time(self) -> float:
        with self._lock:
            return self._start + self._skipped + (time.monotonic() - self._real0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.instant_sleeps:
            with self._lock:
                self._skipped += seconds
            return
        time.sleep(seconds / self.speed)
