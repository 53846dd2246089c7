"""One notion of time shared by procedures and simulators.

The bench runs on the wall clock.  The simulated bench can run on a ``SimulatedClock``
whose ``sleep`` advances simulated time (optionally also sleeping a scaled-down real
time), so a ten-hour lifetime test or a slow NPLC sweep finishes in seconds in CI while
every timestamp stays physically consistent.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod


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
    """

    #: how far real time may run behind the schedule before the schedule is reset (s):
    #: small overshoots of ``time.sleep`` are paid back by the next sleeps; a longer
    #: stretch of real time spent elsewhere is not "owed" to later sleeps
    CATCH_UP_S = 0.005

    def __init__(self, start: float | None = None, speed: float = math.inf) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self._now = time.time() if start is None else float(start)
        self.speed = float(speed)
        self._lock = threading.Lock()
        # real-time schedule for finite speeds: simulated ``_anchor_sim`` was due at
        # real ``_anchor_real`` (monotonic); sleeps wait for the schedule, not per call
        # (none until the first sleep: time before it is not owed to anyone)
        self._anchor_sim = self._now
        self._anchor_real = -math.inf

    @property
    def simulated(self) -> bool:
        return True

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move simulated time forward without any real waiting."""
        if seconds > 0:
            with self._lock:
                self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if not math.isfinite(self.speed):
            self.advance(seconds)
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
