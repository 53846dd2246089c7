"""Open the driver for one configured instrument, real or simulated.

How a driver connects is its entry in ``labrig.registry``; this module applies it to one
config entry.  A simulated role gets the same driver as a real one, pointed at the
simulator's resource, so procedures cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labrig import registry
from labrig.config import BenchConfig, InstrumentConfig
from labrig.errors import ConfigError
from labrig.interfaces import Instrument


def driver_class(driver: str) -> type[Instrument]:
    """The class of the configured ``driver`` (for the limits it owns, asked before
    anything is opened: ``labrig.limits.check_drives``), not connected."""
    return registry.resolve_ref(_driver_entry(driver, "driver").instrument)


def _driver_entry(driver: str, where: str) -> registry.Driver:
    """The registry's entry for ``driver``; a ``ConfigError`` naming ``where`` and the
    allowed names otherwise (config validation refuses those first: this is for a
    config built in code)."""
    try:
        return registry.driver(driver)
    except KeyError:
        known = ", ".join(d.name for d in registry.drivers())
        raise ConfigError(f"{where} {driver!r} is not known; allowed: {known}") from None


def open_instrument(
    role: str,
    cfg: InstrumentConfig,
    config: BenchConfig,
    lab: Any = None,
    opened: Mapping[str, Instrument] | None = None,
) -> Instrument:
    """Connect the driver ``cfg.driver`` for ``role``; raise InstrumentError if it fails.

    ``opened`` holds the instruments already open on this bench (a driver ``built_from``
    other roles, such as the one-channel lifetime rig, is made of them).
    """
    entry = _driver_entry(cfg.driver, f"instruments.{role}.driver")
    connect = registry.resolve_ref(entry.connect)
    if entry.built_from:
        opened = opened or {}
        missing = [r for r in entry.built_from if r not in opened]
        if missing:
            raise ConfigError(
                f"instruments.{role}.driver {cfg.driver} needs the "
                f"{' and '.join(entry.built_from)} roles"
            )
        return connect(*(opened[r] for r in entry.built_from))
    options = {k: getattr(cfg, k) for k in entry.options if getattr(cfg, k) is not None}
    if not cfg.simulated:
        if entry.needs_resource and not cfg.resource:
            raise ConfigError(f"instruments.{role}.resource is required for a real instrument")
        return connect(cfg.resource, **options)
    if lab is None or role not in lab.resources:
        raise ConfigError(f"instruments.{role}: simulated, but no simulator was started")
    if entry.in_process:
        attach = registry.resolve_ref(entry.attach)
        return attach(lab.handles[role], resource=f"sim:{lab.resources[role]}")
    return connect(lab.resources[role], **options)
