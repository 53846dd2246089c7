"""The simulated clock: instant or scaled sleeps, and no drift over many short sleeps."""

from __future__ import annotations

import math
import threading
import time

import pytest

from labrig.clock import RunningClock, SimulatedClock, WallClock


def test_instant_clock_advances_without_waiting():
    clock = SimulatedClock(start=100.0)
    started = time.monotonic()
    clock.sleep(3600)
    assert clock.time() == 100.0 + 3600
    assert time.monotonic() - started < 1.0  # not the hour it sleeps
    assert clock.simulated and not WallClock().simulated


class _OvershootingTime:
    """Real time as the clock sees it, where every real sleep overshoots by 1 ms (an
    OS's wake-up latency), so the test pins the schedule, not this machine's load."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds + 1e-3

    def time(self) -> float:
        return 1.7e9


def test_scaled_clock_sleeps_scaled_real_time(monkeypatch):
    import labrig.clock

    fake = _OvershootingTime()
    monkeypatch.setattr(labrig.clock, "time", fake)
    clock = SimulatedClock(start=0.0, speed=100.0)
    started = fake.monotonic()
    clock.sleep(5.0)
    assert clock.time() == pytest.approx(5.0)
    assert fake.monotonic() - started == pytest.approx(0.05 + 1e-3)  # one real sleep
    assert fake.sleeps == 1


def test_many_short_sleeps_do_not_accumulate_overshoot(monkeypatch):
    """500 sleeps of 0.2 ms at real speed take ~0.1 s, not 500 x (0.2 ms + overshoot):
    the clock sleeps to a schedule, so a late wake-up is made up by the next sleeps."""
    import labrig.clock

    fake = _OvershootingTime()
    monkeypatch.setattr(labrig.clock, "time", fake)
    clock = SimulatedClock(start=0.0, speed=1.0)
    started = fake.monotonic()
    for _ in range(500):
        clock.sleep(2e-4)
    elapsed = fake.monotonic() - started
    assert clock.time() == pytest.approx(0.1)
    assert 0.1 <= elapsed < 0.1 + 2e-3, elapsed  # one overshoot at most, not 500
    assert fake.sleeps < 100  # the late ones are skipped, not slept


def test_time_spent_elsewhere_is_not_owed_to_later_sleeps():
    clock = SimulatedClock(start=0.0, speed=1.0)
    clock.sleep(0.01)
    time.sleep(0.1)  # the caller computes for a while
    started = time.monotonic()
    clock.sleep(0.05)
    assert time.monotonic() - started > 0.045


def test_threads_share_one_simulated_time():
    clock = SimulatedClock(start=0.0)

    def work():
        for _ in range(1000):
            clock.sleep(1.0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.time() == 4000.0


def test_speed_must_be_positive():
    with pytest.raises(ValueError):
        SimulatedClock(speed=0)
    assert math.isinf(SimulatedClock().speed)


def test_time_before_the_first_sleep_is_not_owed():
    clock = SimulatedClock(start=0.0, speed=1.0)
    time.sleep(0.004)  # less than the catch-up allowance
    started = time.monotonic()
    clock.sleep(0.02)
    assert time.monotonic() - started >= 0.0195


def test_running_clock_runs_by_itself_at_its_speed():
    """A served simulator's time: real time x speed, whether or not anyone sleeps on it."""
    clock = RunningClock(start=1000.0, speed=3600.0)
    outer0 = time.monotonic()
    first = clock.time()
    inner0 = time.monotonic()
    time.sleep(0.05)  # nobody sleeps on the clock: it runs all the same
    inner1 = time.monotonic()
    second = clock.time()
    outer1 = time.monotonic()
    assert first >= 1000.0
    assert (inner1 - inner0) * 3600 <= second - first + 1e-6
    assert second - first <= (outer1 - outer0) * 3600 + 1e-6
    started, before = time.monotonic(), clock.time()
    clock.sleep(360.0)  # 0.1 s of real time
    assert time.monotonic() - started >= 0.1
    assert clock.time() - before >= 360.0
    assert clock.simulated
    for bad in (0.0, math.inf):
        with pytest.raises(ValueError, match="finite speed"):
            RunningClock(speed=bad)


def test_simulated_clock_starts_on_a_whole_second():
    """So start + x rounds alike on every run: seeded runs store bit-identical times."""
    clock = SimulatedClock()
    assert clock.time() == math.floor(clock.time())


def test_running_clock_with_instant_sleeps_runs_and_skips_what_is_slept():
    """``labrig sim serve`` at clock_speed .inf: time runs between commands, an
    instrument's own waits take no real time."""
    clock = RunningClock(start=0.0, speed=1.0, instant_sleeps=True)
    started = time.monotonic()
    before = clock.time()
    clock.sleep(3600.0)
    after = clock.time()
    assert time.monotonic() - started < 1.0
    assert 3600.0 <= after - before <= 3600.0 + (time.monotonic() - started) + 1e-6
    time.sleep(0.02)
    assert clock.time() - after >= 0.02
