"""The simulated USB2000+ as a python-seabreeze backend: code written for
``seabreeze.spectrometers`` runs unchanged against the simulated physics.

seabreeze's ``Spectrometer`` is a thin layer over a backend (``cseabreeze`` or
``pyseabreeze``): a module with ``SeaBreezeAPI`` (``list_devices``), ``SeaBreezeDevice``
(``serial_number``, ``model``, ``is_open``, ``open``/``close``, ``features`` and the
``.f`` accessor) and ``SeaBreezeError``.  This module is such a backend, over the
simulated detector of :mod:`labrig.simulators.spectrometer`; :func:`use` plugs it into
seabreeze through the backend slot seabreeze keeps for switching backends
(``Spectrometer._backend``, and the module's ``_lib``).  So ``list_devices()``,
``Spectrometer.from_serial_number`` / ``from_first_available`` give real
``seabreeze.spectrometers.Spectrometer`` objects, and the dark-pixel and nonlinearity
corrections, ``spectrum()``, ``features``, ``.f.<feature>`` are seabreeze's own code.

Switching it on:

- in Python, before opening a spectrometer: ``labrig.simulators.seabreeze.use()`` (the
  simulated bench of the ``sim`` config, or ``use(physics)`` for a bench of your own);
- for a script that must stay unchanged: ``python -m labrig.simulators.seabreeze
  [--config sim] [--drive-voltage V | --drive-current A] script.py [args]`` runs the
  script with the backend on, the bench's device driven at that level, so the light is
  the device's electroluminescence;
- labrig's own driver: ``LABRIG_SEABREEZE=simulated`` in the environment makes
  ``labrig.drivers.usb2000plus.connect`` open the simulated unit through seabreeze.

labrig's simulated bench itself opens its unit with :func:`spectrometer` (a seabreeze
``Spectrometer`` bound to this backend), which switches nothing process-wide.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from typing import Any

import numpy as np
import seabreeze.spectrometers as sb
from seabreeze._exc import SeaBreezeError
from seabreeze.types import SeaBreezeFeatureAccessor

from labrig.simulators.spectrometer import (
    ELECTRIC_DARK_PIXELS,
    INTEGRATION_LIMITS_US,
    MAX_INTENSITY,
    MODEL,
    NONLINEARITY_A,
    PIXELS,
    SimulatedSpectrometer,
)

__all__ = ["SeaBreezeAPI", "SeaBreezeDevice", "SeaBreezeError", "spectrometer", "use"]

#: the bench config the simulated unit belongs to when none is given (default ``sim``)
ENV_CONFIG = "LABRIG_SEABREEZE_CONFIG"

_api_kwargs: dict[str, Any] = {}  # what seabreeze.spectrometers.list_devices passes on
_devices: list[SeaBreezeDevice] = []  # the "attached" simulated units


# --------------------------------------------------------------------------- features
class _Feature:
    """Base of the simulated features: seabreeze features carry an ``identifier``."""

    identifier = ""

    def __init__(self, unit: SimulatedSpectrometer) -> None:
        self._unit = unit

    def __repr__(self) -> str:
        return f"<SimulatedSeaBreezeFeature {self.identifier}>"


class SpectrometerFeature(_Feature):
    """seabreeze's ``spectrometer`` feature: the raw detector (corrections are done by
    ``seabreeze.spectrometers.Spectrometer`` itself)."""

    identifier = "spectrometer"
    _spectrum_length = PIXELS

    def get_wavelengths(self) -> np.ndarray:
        return self._unit.wavelengths()

    def get_intensities(self) -> np.ndarray:
        return self._unit.intensities()

    def set_integration_time_micros(self, integration_time_micros: int) -> None:
        self._unit.integration_time_micros(integration_time_micros)

    def get_integration_time_micros_limits(self) -> tuple[int, int]:
        return INTEGRATION_LIMITS_US

    def get_maximum_intensity(self) -> float:
        return MAX_INTENSITY

    def get_electric_dark_pixel_indices(self) -> list[int]:
        return list(ELECTRIC_DARK_PIXELS)

    def set_trigger_mode(self, mode: int) -> None:
        self._unit.trigger_mode(mode)


class NonlinearityCoefficientsFeature(_Feature):
    """The EEPROM's nonlinearity coefficients (c0, c1, ...) that undo the sensor's
    compression."""

    identifier = "nonlinearity_coefficients"

    def get_nonlinearity_coefficients(self) -> list[float]:
        return [1.0, -NONLINEARITY_A]


#: every feature name seabreeze knows; the simulated unit has the two above
FEATURE_NAMES = tuple(SeaBreezeFeatureAccessor.__annotations__)


class _FeatureAccess:
    """``device.f.<name>``: the first feature of that name, ``None`` if the device has
    none (as pyseabreeze does)."""

    def __init__(self, features: dict[str, list[Any]]) -> None:
        for name, found in features.items():
            setattr(self, name, found[0] if found else None)


# ----------------------------------------------------------------------------- device
class SeaBreezeDevice:
    """A simulated USB2000+ as seabreeze lists it (the ``device`` of a ``Spectrometer``)."""

    model = MODEL

    def __init__(self, unit: SimulatedSpectrometer) -> None:
        self._unit = unit
        self.serial_number = unit.serial_number
        self.is_open = False
        self.features: dict[str, list[Any]] = {name: [] for name in FEATURE_NAMES}
        self.features["spectrometer"] = [SpectrometerFeature(unit)]
        self.features["nonlinearity_coefficients"] = [NonlinearityCoefficientsFeature(unit)]

    @property
    def f(self) -> _FeatureAccess:
        return _FeatureAccess(self.features)

    def open(self) -> None:
        self._unit.open()
        self.is_open = True

    def close(self) -> None:
        self._unit.close()
        self.is_open = False

    def __repr__(self) -> str:
        return f"<SeaBreezeDevice {self.model}:{self.serial_number}>"


class SeaBreezeAPI:
    """The backend's device discovery: the simulated units registered by :func:`use`."""

    def __init__(self, initialize: bool = True, **_kwargs: Any) -> None:
        pass

    def initialize(self) -> None:
        pass

    def shutdown(self) -> None:
        for device in _devices:
            if device.is_open:
                device.close()

    def add_rs232_device_location(self, device_type: str, bus_path: str, baudrate: int) -> None:
        raise SeaBreezeError("the simulated backend has only its USB2000+")

    def add_ipv4_device_location(self, device_type: str, ip_address: str, port: int) -> None:
        raise SeaBreezeError("the simulated backend has only its USB2000+")

    def list_devices(self) -> list[SeaBreezeDevice]:
        return list(_devices)

    @staticmethod
    def supported_models() -> list[str]:
        return [MODEL]


class BoundSpectrometer(sb.Spectrometer):
    """seabreeze's own ``Spectrometer``, bound to this backend instead of the process's
    (``_backend`` is set below): labrig's simulated bench opens its unit through it, so
    its spectra go through seabreeze's code without switching seabreeze for anyone else."""


def spectrometer(unit: SimulatedSpectrometer) -> sb.Spectrometer:
    """The simulated ``unit`` as a real (opened) ``seabreeze.spectrometers.Spectrometer``."""
    return BoundSpectrometer(SeaBreezeDevice(unit))


# ---------------------------------------------------------------------------- switch
def use(physics: Any = None, serial_number: str = "SIM2K0001") -> SeaBreezeDevice:
    """Make ``seabreeze.spectrometers`` see the simulated USB2000+ on ``physics`` (default:
    a new simulated bench of the ``LABRIG_SEABREEZE_CONFIG`` config, else ``sim``);
    returns the device seabreeze will list.  Call it before opening a spectrometer."""
    if physics is None:
        from labrig.config import load_config
        from labrig.simulators.physics import CoupledPhysics

        physics = CoupledPhysics(load_config(os.environ.get(ENV_CONFIG, "sim")))
    device = SeaBreezeDevice(SimulatedSpectrometer(physics, serial_number=serial_number))
    _devices[:] = [device]
    backend = sys.modules[__name__]
    # the slot seabreeze keeps on Spectrometer for switching backends (a descriptor)
    vars(sb.Spectrometer)["_backend"].__set__(None, backend)
    vars(sb).update(_lib=backend, SeaBreezeDevice=SeaBreezeDevice)
    # list_devices() keeps its API object here (and would load the default backend to
    # make one): give it this backend's
    sb.list_devices._api = SeaBreezeAPI()  # type: ignore[attr-defined]
    return device


def main(argv: list[str] | None = None) -> None:
    """``python -m labrig.simulators.seabreeze [options] SCRIPT [ARGS]``."""
    parser = argparse.ArgumentParser(
        prog="python -m labrig.simulators.seabreeze",
        description="Run an unchanged seabreeze script against the simulated USB2000+.",
    )
    parser.add_argument("--config", default=os.environ.get(ENV_CONFIG, "sim"))
    drive = parser.add_mutually_exclusive_group()
    drive.add_argument("--drive-voltage", type=float, metavar="V", help="device bias (V)")
    drive.add_argument("--drive-current", type=float, metavar="A", help="device current (A)")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    from labrig.config import load_config
    from labrig.simulators.physics import CoupledPhysics

    config = load_config(args.config)
    physics = CoupledPhysics(config)
    limit_a, limit_v = config.limits.default_compliance_a, config.limits.max_voltage_v
    if args.drive_voltage is not None:
        physics.source_voltage(args.drive_voltage, compliance_a=limit_a)
    elif args.drive_current is not None:
        physics.source_current(args.drive_current, compliance_v=limit_v)
    use(physics)
    sys.argv = [args.script, *args.args]
    runpy.run_path(args.script, run_name="__main__")


BoundSpectrometer._backend = sys.modules[__name__]  # type: ignore[assignment]

if __name__ == "__main__":
    # run the importable module's main, so the backend seabreeze sees is that module
    from labrig.simulators.seabreeze import main as _main

    _main()
