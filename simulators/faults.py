"""Fault injection for the simulated SCPI instruments.

A fault is armed from the config (``FaultSpec(kind, after)``) or at run time
(``instrument.inject_fault(kind, after)``) and fires once its counter passes ``after``:

- ``timeout``: the instrument keeps obeying commands but stops replying (the client's
  VISA read times out).  It still obeys, so a driver's ``:OUTP OFF`` during shutdown
  takes effect — like a real instrument whose talker stopped but whose listener works.
  Counts program messages.  Stays until ``clear_faults()``.
- ``garbled``: every reply is replaced by random bytes (never a newline inside, so the
  client gets one unparsable message).  Counts program messages.  Stays.
- ``disconnect``: the server closes the connection in the middle of a reading burst
  (after ``after`` readings, so ``after=100`` drops a 201-point sweep at point 100).
  One-shot: a reconnect works, so the bench can still switch the output off.
- ``short`` / ``open``: the device under test fails (``physics.set_device_fault``) after
  ``after`` readings; the 2400 then sits at compliance (short) or reads ~0 A (open).
- ``overrange`` (6485): readings after ``after`` readings are +9.9E37.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labrig.config import FaultKind, FaultSpec

COMM_FAULTS = ("timeout", "garbled")


class ConnectionDropped(Exception):
    """Raised through the engine to make the server close the client connection."""


@dataclass
class _Armed:
    kind: str
    at: int  # counter value at which it fires


class FaultInjector:
    """Counts messages and readings and says which faults are active."""

    def __init__(self, faults: list[FaultSpec] | None, physics: Any, supported: tuple[str, ...]):
        self._physics = physics
        self._supported = supported
        self.messages = 0
        self.readings = 0
        self._armed: list[_Armed] = []
        self._rng = np.random.default_rng(0xFA17)
        self.active: set[str] = set()
        for spec in faults or []:
            self.inject(spec.kind, spec.after)

    def inject(self, kind: FaultKind | str, after: int = 0) -> None:
        if kind not in self._supported:
            raise ValueError(
                f"fault kind {kind!r} is not supported here; allowed: {', '.join(self._supported)}"
            )
        if after < 0:
            raise ValueError(f"fault 'after' must be >= 0, got {after}")
        base = self.messages if kind in COMM_FAULTS else self.readings
        self._armed.append(_Armed(str(kind), base + int(after)))
        self._fire()

    def clear(self) -> None:
        """Remove every armed and active fault; repair the device."""
        had_device_fault = bool(self.active & {"short", "open"})
        self._armed.clear()
        self.active.clear()
        if had_device_fault:
            self._physics.set_device_fault(None)

    def on_message(self) -> None:
        self._fire()
        self.messages += 1

    def on_reading(self) -> None:
        """Call before each reading: fires reading faults whose time has come.
        Raises ``ConnectionDropped`` for a due ``disconnect`` (consumed once)."""
        self._fire()
        self.readings += 1
        if "disconnect" in self.active:
            self.active.discard("disconnect")
            raise ConnectionDropped("simulated connection drop")

    def _fire(self) -> None:
        for armed in list(self._armed):
            count = self.messages if armed.kind in COMM_FAULTS else self.readings
            if count >= armed.at:
                self._armed.remove(armed)
                self.active.add(armed.kind)
                if armed.kind in ("short", "open"):
                    self._physics.set_device_fault(armed.kind)

    def is_active(self, kind: str) -> bool:
        return kind in self.active

    def garble(self, reply: bytes) -> bytes:
        """Random bytes of about the reply's length, newline-free, newline-terminated."""
        n = max(4, len(reply) - 1)
        junk = self._rng.integers(0, 256, size=n, dtype=np.uint8)
        junk[junk == 0x0A] = 0x3F  # no newline inside: one unparsable message
        junk[0] = 0xA5  # never valid ASCII, never a number
        return junk.tobytes() + b"\n"
