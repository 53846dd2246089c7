"""One labrig bench shared by the ophyd-async devices on it (``BenchLink``).

The devices never talk SCPI themselves: ``BenchLink`` opens labrig's own ``Bench`` (the
drivers through ``labrig.instruments``, the simulated lab for a simulated config) once,
for every device of that bench, and runs each driver call in a worker thread so the
RunEngine's event loop stays free to pause or abort.  The drivers are not thread safe,
so one lock serialises every conversation.  Closing the link is labrig's safe shutdown:
every source ramped down and off, confirmed by the instrument.

A real source (a 2400 or lifetime rig reached over a resource, not simulated in this
process) is also watched by a guard process (``labrig.bluesky.guard``) that turns it off
if this process dies without closing the link -- a ``kill -9`` of the RunEngine.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from labrig import registry
from labrig.bench import Bench
from labrig.config import BenchConfig, load_config
from labrig.interfaces import Instrument

T = TypeVar("T")


class BenchLink:
    """The instruments of one bench config, opened once and closed safely."""

    def __init__(
        self,
        config: BenchConfig | str | Path,
        roles: Iterable[str] | None = None,
        *,
        guard: bool = True,
    ) -> None:
        self.config = config if isinstance(config, BenchConfig) else load_config(config)
        wanted = roles if roles is not None else self.config.instruments
        self.roles = [r for r in registry.roles() if r in set(wanted)]
        self.bench = Bench(self.config, self.roles)
        self._guard_wanted = guard
        self.guard: Any = None  # labrig.bluesky.guard.Guard once armed
        self._lock = threading.RLock()
        self._open = False

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Open every role (idempotent, all or nothing); arm the guard for real sources."""
        with self._lock:
            if self._open:
                return
            self.bench.open()
            self._open = True
            if self._guard_wanted:
                from labrig.bluesky.guard import Guard, watched_roles

                roles = watched_roles(self.config, self.roles)
                if roles:
                    self.guard = Guard.start(self.config, roles)

    def close(self) -> list[str]:
        """labrig's safe shutdown of every instrument, then release them; the problems
        met (empty when every output was confirmed off).  Disarms the guard only then."""
        with self._lock:
            if not self._open:
                return []
            self._open = False
            self.bench.close(ramp=True)
            problems = list(self.bench.shutdown_errors)
            if self.guard is not None and not problems:
                self.guard.disarm()
                self.guard = None
            return problems

    @property
    def is_open(self) -> bool:
        return self._open

    # ------------------------------------------------------------------ driver calls
    def instrument(self, role: str) -> Instrument:
        """The open driver of ``role``; the link must be open."""
        if not self._open:
            raise RuntimeError(f"the bench is not connected (role {role})")
        return self.bench.instruments[role]

    def call_now(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one driver call in this thread, alone on the bench."""
        with self._lock:
            return fn(*args, **kwargs)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """The bench to this thread alone for the block (a labrig run's whole procedure)."""
        with self._lock:
            yield

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Inside ``held``: the bench free for other callers for the block (a paused
        run, so ``output_state`` can ask the instruments)."""
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one driver call in a worker thread, alone on the bench."""
        return await asyncio.to_thread(self.call_now, fn, *args, **kwargs)

    def check_drive(self, volts: float | None = None, amps: float | None = None) -> None:
        """The config's safety limits, before anything is sent (``SafetyLimitError``)."""
        self.bench.check_drive(volts=volts, amps=amps)

    @property
    def simulation(self) -> Any:
        """The simulated lab running in this process (tests' ground truth), or None."""
        return self.bench.simulation
