"""Open the driver for one configured instrument, real or simulated.

The single place that maps a config's ``driver`` name to a driver module; the bench
calls it for each role.  A simulated role gets the same driver as a real one, pointed at
the simulator's resource, so procedures cannot tell them apart.
"""

from __future__ import annotations

from typing import Any

from labrig.config import BenchConfig, InstrumentConfig
from labrig.errors import ConfigError
from labrig.interfaces import Instrument


def _resource(role: str, cfg: InstrumentConfig, lab: Any) -> str:
    if cfg.simulated:
        if lab is None or role not in lab.resources:
            raise ConfigError(f"instruments.{role}: simulated, but no simulator was started")
        return lab.resources[role]
    if not cfg.resource:
        raise ConfigError(f"instruments.{role}.resource is required for a real instrument")
    return cfg.resource


#: driver name -> "module:class" of the driver (its class-level limit checks are asked
#: before anything is opened: ``labrig.limits.check_drives``)
_DRIVER_CLASSES = {
    "keithley2400": "labrig.drivers.keithley2400:Keithley2400",
    "keithley6485": "labrig.drivers.keithley6485:Keithley6485",
    "usb2000plus": "labrig.drivers.usb2000plus:USB2000Plus",
    "lifetime_rig": "labrig.drivers.lifetime_rig:SerialLifetimeRig",
    "smu_photometer": "labrig.drivers.smu_photometer_rig:SMUPhotometerRig",
}


def driver_class(driver: str) -> type[Instrument]:
    """The class of the configured ``driver`` (for the limits it owns), not connected."""
    import importlib

    if driver not in _DRIVER_CLASSES:
        raise ConfigError(f"driver {driver!r} is not known; allowed: {', '.join(_DRIVER_CLASSES)}")
    module, name = _DRIVER_CLASSES[driver].split(":")
    return getattr(importlib.import_module(module), name)


def open_instrument(
    role: str,
    cfg: InstrumentConfig,
    config: BenchConfig,
    lab: Any = None,
    opened: dict[str, Instrument] | None = None,
) -> Instrument:
    """Connect the driver ``cfg.driver`` for ``role``; raise InstrumentError if it fails.

    ``opened`` holds the instruments already open on this bench (the single-channel
    lifetime backend is built from the bench's SMU and photometer).
    """
    if cfg.driver == "keithley2400":
        from labrig.drivers.keithley2400 import connect

        return connect(_resource(role, cfg, lab), timeout_s=cfg.timeout_s)
    if cfg.driver == "keithley6485":
        from labrig.drivers.keithley6485 import connect

        return connect(_resource(role, cfg, lab), timeout_s=cfg.timeout_s)
    if cfg.driver == "usb2000plus":
        from labrig.drivers import usb2000plus

        if cfg.simulated:
            device = lab.instruments[role] if lab is not None else None
            if device is None:
                raise ConfigError(f"instruments.{role}: simulated, but no simulator was started")
            from labrig.simulators.seabreeze import spectrometer

            # seabreeze's own Spectrometer over the simulated unit (its corrections run)
            return usb2000plus.USB2000Plus(
                spectrometer(device), resource=f"sim:{device.serial_number}"
            )
        return usb2000plus.connect(cfg.resource, backend=cfg.backend or "cseabreeze")
    if cfg.driver == "lifetime_rig":
        from labrig.drivers.lifetime_rig import connect

        return connect(
            _resource(role, cfg, lab),
            timeout_s=cfg.timeout_s,
            baud_rate=cfg.baud_rate or 115200,
        )
    if cfg.driver == "smu_photometer":
        from labrig.drivers.smu_photometer_rig import SMUPhotometerRig

        opened = opened or {}
        if "smu" not in opened or "photometer" not in opened:
            raise ConfigError(
                f"instruments.{role}.driver smu_photometer needs the smu and photometer roles"
            )
        return SMUPhotometerRig(opened["smu"], opened["photometer"])
    raise ConfigError(f"instruments.{role}.driver {cfg.driver!r} is not known")
