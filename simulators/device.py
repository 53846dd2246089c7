"""The contract between the simulated bench and a device-under-test model.

The simulated 2400 drives the device through ``CoupledPhysics``; the bench asks the device
for its I–V, lets it evolve (heating, degradation) along the shared clock, and asks it
how much light it emits and with which spectrum.  LED, solar-cell and single-carrier
models all implement this protocol, so the bench never cares which device it holds.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ElectricalDevice(Protocol):
    """A two-terminal device.  Currents in A (positive = forward injection), volts in V."""

    area_cm2: float

    def current_at(self, volts: float) -> float:
        """Current through the device at terminal voltage ``volts`` in its present state."""

    def voltage_at(self, amps: float) -> float:
        """Terminal voltage that drives ``amps`` through the device in its present state."""

    def advance(self, dt_s: float, volts: float, amps: float) -> None:
        """Let ``dt_s`` seconds pass at this operating point (heating, degradation).
        Static devices do nothing."""

    def optical_power_w(self, amps: float) -> float:
        """Radiant flux emitted into the forward hemisphere now (0 for non-emitters)."""

    def spectrum_shape(self, wavelength_nm: np.ndarray, amps: float) -> np.ndarray:
        """Normalised emission spectrum on ``wavelength_nm`` (integral over nm = 1); zeros
        for non-emitters."""
