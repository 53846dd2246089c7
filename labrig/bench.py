"""The bench: the instruments a procedure needs, opened from the config and always left safe.

``Bench`` is a context manager.  Entering it checks that every role asked for is
configured, starts the simulated lab when a role is simulated, and opens each instrument
(undoing everything if one fails part-way).  Leaving it -- normally, through an exception,
an instrument time-out, Ctrl-C or SIGTERM -- turns every source off (ramped unless told
otherwise; sources first), closes every connection and stops the simulators.  One
instrument failing to shut down never stops the others from being shut down, and the
exception that ended the run is never replaced by one from the shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from labrig import registry
from labrig.clock import Clock, WallClock
from labrig.config import BenchConfig, InstrumentConfig
from labrig.errors import ConfigError, InstrumentError, RunAborted, first_line
from labrig.interfaces import (
    Instrument,
    InstrumentIdentity,
    LifetimeRig,
    Picoammeter,
    SourceMeter,
    Spectrometer,
    Switch,
)
from labrig.limits import Requested
from labrig.terminal import say

if TYPE_CHECKING:
    from labrig.config import Calibration
    from labrig.limits import Limits

log = logging.getLogger(__name__)

Opener = Callable[[str, InstrumentConfig, BenchConfig, Any], Instrument]


def _is_source(instrument: Instrument) -> bool:
    return isinstance(instrument, (SourceMeter, LifetimeRig))


class Bench:
    """The instruments of one run, opened from ``config`` for ``roles``.

    ``opener(role, inst_cfg, config, lab)`` returns an open instrument (default:
    ``labrig.instruments.open_instrument``); tests pass their own.
    """

    def __init__(
        self,
        config: BenchConfig,
        roles: Iterable[str],
        *,
        opener: Opener | None = None,
    ) -> None:
        self.config = config
        self.roles = list(dict.fromkeys(roles))
        self._opener = opener
        self._instruments: dict[str, Instrument] = {}
        self._identities: dict[str, tuple[InstrumentIdentity, str, str]] = {}
        self._lab: Any = None
        self._clock: Clock | None = None
        #: the run file (``labrig.store.RunData``) a resumed run continues: simulated
        #: instruments take up the state it records (set by the runner before ``open``)
        self.resumed: Any = None
        #: problems met during the last shutdown, as "role: message" lines
        self.shutdown_errors: list[str] = []
        #: the same problems as the terminal says them (no Python class names)
        self.shutdown_told: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Bench:
        self.open()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.close(ramp=True)
        if exc is None and self.shutdown_errors:
            raise InstrumentError("safe shutdown incomplete: " + "; ".join(self.shutdown_errors))
        return False  # never swallow (or mask) the exception that ended the run

    def open(self) -> None:
        """Start the simulators (if any) and open every instrument; all or nothing."""
        known = registry.roles()
        unknown = [r for r in self.roles if r not in known]
        if unknown:
            raise ConfigError(f"unknown role(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
        self.roles = registry.with_parts(self.config, self.roles)
        missing = [r for r in self.roles if r not in self.config.instruments]
        if missing:
            configured = ", ".join(self.config.instruments) or "none"
            raise ConfigError(
                f"instruments: this run needs the role(s) {', '.join(missing)}, which the config "
                f"does not define (configured: {configured})"
            )
        try:
            if any(self.config.instruments[r].simulated for r in self.roles):
                from labrig.simulators.lab import start_lab

                self._lab = start_lab(self.config, self.roles, resumed=self.resumed)
            for role in self.roles:
                inst_cfg = self.config.instruments[role]
                instrument = self._open_one(role, inst_cfg)
                self._instruments[role] = instrument
                resource = getattr(instrument, "resource", "") or inst_cfg.resource or ""
                self._identities[role] = (instrument.identity(), str(resource), inst_cfg.driver)
                log.info("opened %s: %s", role, self._identities[role][0])
        except BaseException:
            self.close(ramp=False)
            raise

    def _open_one(self, role: str, inst_cfg: InstrumentConfig) -> Instrument:
        if self._opener is not None:
            return self._opener(role, inst_cfg, self.config, self._lab)
        from labrig.instruments import open_instrument

        return open_instrument(role, inst_cfg, self.config, self._lab, opened=self._instruments)

    def shutdown(self, ramp: bool = True) -> list[str]:
        """Turn every source off (ramped unless ``ramp`` is False), sources first.

        Each instrument is handled on its own: a failure is logged and recorded in
        ``shutdown_errors`` and the next instrument is still shut down.  A ``RunAborted``
        arriving during a ramp (a second Ctrl-C) switches to turning outputs off at once.
        Returns the problems met (empty when every instrument is safe).
        """
        self.shutdown_errors = []
        self.shutdown_told = []
        pending = sorted(self._instruments.items(), key=lambda kv: not _is_source(kv[1]))
        while pending:
            role, instrument = pending[0]
            try:
                if isinstance(instrument, SourceMeter):
                    instrument.shutdown(ramp=ramp)
                else:
                    instrument.shutdown()
            except RunAborted:
                if ramp:
                    log.warning("second stop request: skipping the ramp, outputs off now")
                    ramp = False
                    continue  # the same instrument again, without the ramp
                self._shutdown_failed(role, "interrupted while turning the output off")
            except Exception as exc:  # noqa: BLE001 - the next instrument must still go off
                self._shutdown_failed(role, f"{type(exc).__name__}: {exc}", first_line(exc))
            pending.pop(0)
        return list(self.shutdown_errors)

    def _shutdown_failed(self, role: str, message: str, told: str | None = None) -> None:
        log.error("shutdown of %s failed: %s", role, message)
        self.shutdown_errors.append(f"{role}: {message}")
        self.shutdown_told.append(f"{role}: {told or message}")

    def close(self, ramp: bool = True) -> None:
        """Shut down (see ``shutdown``), close every connection and stop the simulators.
        Idempotent."""
        try:
            if self._instruments:
                try:
                    self.shutdown(ramp=ramp)
                except RunAborted:  # landed between two instruments: finish, fast
                    self.shutdown(ramp=False)
        finally:
            while self._instruments:
                role, instrument = self._instruments.popitem()
                try:
                    try:
                        instrument.close()
                    except RunAborted:  # a stop request while closing: not a failure
                        instrument.close()
                except Exception as exc:  # noqa: BLE001 - close the others regardless
                    log.error("closing %s failed: %s: %s", role, type(exc).__name__, exc)
            if self._lab is not None:
                lab, self._lab = self._lab, None
                try:
                    lab.stop()
                except Exception as exc:  # noqa: BLE001
                    log.error("stopping the simulated lab failed: %s", exc)

    # ------------------------------------------------------------------ what procedures see
    def _role(self, role: str) -> Any:
        return self._instruments.get(role)

    @property
    def smu(self) -> SourceMeter:
        return self._role("smu")

    @property
    def photometer(self) -> Picoammeter:
        return self._role("photometer")

    @property
    def spectrometer(self) -> Spectrometer:
        return self._role("spectrometer")

    @property
    def lifetime(self) -> LifetimeRig:
        return self._role("lifetime")

    @property
    def switch(self) -> Switch:
        return self._role("switch")

    def has(self, role: str) -> bool:
        """True when ``role`` is open on this bench (optional roles may be absent)."""
        return role in self._instruments

    @property
    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    @property
    def clock(self) -> Clock:
        """The simulated lab's clock on a simulated bench, else the wall clock."""
        if self._lab is not None:
            return self._lab.clock
        if self._clock is None:
            self._clock = WallClock()
        return self._clock

    @property
    def limits(self) -> Limits:
        return self.config.limits

    @property
    def calibration(self) -> Calibration:
        return self.config.calibration

    @property
    def simulation(self) -> Any:
        """The running SimulatedLab (ground truth for tests only), or None."""
        return self._lab

    def identities(self) -> dict[str, tuple[InstrumentIdentity, str, str]]:
        """``{role: (identity, resource, driver)}`` of every open instrument."""
        return dict(self._identities)

    # ------------------------------------------------------------------ safety and set-up
    def check_drive(self, volts: float | None = None, amps: float | None = None) -> None:
        """Raise ``SafetyLimitError`` if a drive level exceeds the configured limits
        (``Limits.check``; the current also against the current density on the device)."""
        area = self.config.device.active_area_cm2
        if volts is not None:
            self.config.limits.check(Requested("voltage", volts), area)
        if amps is not None:
            self.config.limits.check(Requested("current", amps), area)

    def set_illumination(self, on: bool, mw_cm2: float = 100.0) -> None:
        """Light on the sample (solar cells).  Simulated: set it; real bench: there is no
        shutter driver yet, so tell the operator what to do."""
        if self._lab is not None:
            self._lab.physics.set_illumination(mw_cm2 if on else 0.0)
            return
        what = f"ON at {mw_cm2:g} mW/cm² (AM1.5G)" if on else "OFF (dark)"
        message = f"OPERATOR: switch the illumination {what} now"
        log.info(message)  # python logging's fall-back would print it a second time
        say(message)
