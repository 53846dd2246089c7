"""The simulated physics: one device, one clock, one optical path shared by every simulated
instrument.

The simulated 2400 sources through ``source_voltage``/``source_current`` (compliance
behaves like the real SMU: a voltage source whose current would exceed compliance becomes
a current limit), the simulated 6485 reads ``photodiode_current`` and the simulated
spectrometer reads ``spectral_flux_w_per_nm`` — all from the same device state, which
heats and degrades along the shared clock.  ``truth`` gives tests the ground truth the
analysis must recover.  Every public method takes the lock and calls ``update`` first,
so instruments served from different threads see one consistent device.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.constants import elementary_charge

from labrig.analysis import optics
from labrig.clock import Clock, SimulatedClock, WallClock
from labrig.config import BenchConfig, load_responsivity
from labrig.errors import ConfigError
from labrig.simulators.device import ElectricalDevice

#: device resistance under the injected faults (Ω)
SHORT_OHM = 0.5
OPEN_OHM = 1e12
#: photodiode noise when noise is on: relative (source/gain fluctuation) and a floor (A rms)
RELATIVE_NOISE = 2e-4
NOISE_FLOOR_A = 5e-15
#: integration time assumed for shot noise when the caller does not say (1 PLC at 50 Hz)
DEFAULT_INTEGRATION_S = 0.02
#: grid (nm) on which the photodiode's ∫R(λ)s(λ)dλ is taken
PHOTODIODE_GRID_NM = np.arange(250.0, 1200.0 + 0.1, 0.25)
#: temperature sub-steps per thermal time constant, and how many before the rest of a long
#: interval is taken in one (exact) step at the by-then steady operating point.  After a
#: change of drive the sub-step starts at the fastest time constant and grows with the time
#: since the change (so a ms film node and a s substrate node are both followed).
_SUBSTEPS_PER_TAU = 4
_MAX_SUBSTEPS = 128


@dataclass(frozen=True)
class OperatingPoint:
    """What is at the device's terminals now."""

    voltage: float  # V
    current: float  # A
    in_compliance: bool = False
    output_on: bool = False


class TriggerLink:
    """The Trigger Link cable between simulated instruments: an instrument that outputs a
    trigger on a line calls ``pulse(line)`` and every instrument listening on that line
    is called at once, in the caller's thread, at the present simulated time."""

    LINES = range(1, 7)

    def __init__(self) -> None:
        self._listeners: dict[int, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()

    def connect(self, line: int, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.setdefault(line, []).append(listener)

    def disconnect(self, line: int, listener: Callable[[], None]) -> None:
        with self._lock:
            listeners = self._listeners.get(line, [])
            if listener in listeners:
                listeners.remove(listener)

    def pulse(self, line: int) -> None:
        with self._lock:
            listeners = list(self._listeners.get(line, []))
        for listener in listeners:
            listener()


class _Resistor:
    """A faulted device: an ohmic short or open that emits nothing."""

    def __init__(self, ohms: float, area_cm2: float) -> None:
        self.ohms = ohms
        self.area_cm2 = area_cm2

    def current_at(self, volts: float) -> float:
        return volts / self.ohms

    def voltage_at(self, amps: float) -> float:
        return amps * self.ohms


def build_device(
    config: BenchConfig, model: Any = None, area_cm2: float | None = None
) -> ElectricalDevice:
    """The device model ``config.device.model`` describes (ConfigError if there is none);
    ``model`` / ``area_cm2`` replace the config's (one pixel of a substrate)."""
    dev = config.device
    model = dev.model if model is None else model
    area = dev.active_area_cm2 if area_cm2 is None else area_cm2
    if model is None:
        raise ConfigError(
            "device.model: missing; a bench without a device model (a real physics) cannot be "
            "simulated — give device.preset or a device.model section"
        )
    if model.kind != dev.kind:
        raise ConfigError(
            f"device.kind: {dev.kind!r} does not match device.model.kind {model.kind!r}"
        )
    try:
        if model.kind == "led":
            from labrig.simulators.led import LEDDevice

            return LEDDevice(model, area)
        if model.kind == "solar":
            from labrig.simulators.solar_cell import SolarCell

            return SolarCell(model, area)
        if model.kind == "single_carrier":
            from labrig.simulators.single_carrier import SingleCarrierDevice

            return SingleCarrierDevice(
                model,
                area,
                dev.thickness_nm,
                dev.relative_permittivity,
                dev.carrier,
            )
    except ImportError as exc:
        raise ConfigError(
            f"device.model: kind {model.kind!r} has no simulator available ({exc})"
        ) from None
    raise ConfigError(f"device.model: unknown kind {model.kind!r}")


#: the spread's random stream is its own (seed, this, substrate, pixel): drawing it leaves
#: the noise as it was
_SPREAD_STREAM = 0x5B1D


def _name_key(text: str) -> int:
    """A name as seed entropy, the same in every process (``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def draw_spread(
    spread: dict[str, Any], pixels: Sequence[str], seed: int, substrate: str = ""
) -> dict[str, np.ndarray]:
    """One value of each spread parameter (``Distribution``) per pixel, each pixel from
    its own stream keyed by (``seed``, ``substrate``, pixel name): the same seed gives
    the same substrate again, another substrate differs, and a pixel's draw does not
    depend on the other pixels of the layout.  Parameters are drawn in name order, so
    adding one does not move the others' draws."""
    drawn = {key: np.empty(len(pixels)) for key in spread}
    for i, pixel in enumerate(pixels):
        rng = np.random.default_rng([seed, _SPREAD_STREAM, _name_key(substrate), _name_key(pixel)])
        for key in sorted(spread):
            dist = spread[key]
            if dist.distribution == "lognormal":
                drawn[key][i] = math.exp(rng.normal(math.log(dist.mean), dist.sd))
            else:
                drawn[key][i] = rng.normal(dist.mean, dist.sd)
    return drawn


def pixel_models(config: BenchConfig) -> dict[str, Any]:
    """Each substrate pixel's device model: ``device.model`` with the configured spread
    drawn for it (seeded by ``simulation.seed``, the substrate ``device.sample`` and the
    pixel's name).  A draw outside a parameter's allowed range is a ConfigError naming
    the pixel (narrow the spread)."""
    from pydantic import ValidationError

    layout, model = config.substrate, config.device.model
    if layout is None or model is None:
        return {}
    names = list(layout.pixels)
    drawn = draw_spread(
        config.simulation.spread, names, config.simulation.seed, config.device.sample
    )
    models = {}
    for i, name in enumerate(names):
        values = {key: float(v[i]) for key, v in drawn.items()}
        try:
            models[name] = type(model).model_validate({**model.model_dump(), **values})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(
                f"simulation.spread: pixel {name} drew {err['loc'][0]} = "
                f"{err['input']:.4g}, {err['msg'].lower()}; narrow the spread"
            ) from None
    return models


def pixel_defects(config: BenchConfig) -> dict[str, str]:
    """The configured defects of the mounted substrate's pixels (``simulation.defects``:
    ``PIXEL`` on every substrate, ``SUBSTRATE/PIXEL`` where ``device.sample`` is it)."""
    found = {}
    for key, kind in config.simulation.defects.items():
        substrate, _, pixel = key.rpartition("/")
        if not substrate or substrate == config.device.sample:
            found[pixel] = kind
    return found


class _Parallel:
    """Two or more pixels closed at once: the SMU sees them in parallel (no light is
    modelled for this fault state; it must never be measured)."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self.area_cm2 = sum(p.area_cm2 for p in parts)

    def current_at(self, volts: float) -> float:
        return sum(p.current_at(volts) for p in self.parts)

    def voltage_at(self, amps: float) -> float:
        from scipy.optimize import brentq

        def excess(v: float) -> float:
            return self.current_at(v) - amps

        return float(brentq(excess, -200.0, 200.0)) if excess(-200) * excess(200) < 0 else 200.0


def _default_clock(config: BenchConfig) -> Clock:
    sim = config.simulation
    if sim.clock == "simulated":
        return SimulatedClock(speed=sim.clock_speed)
    return WallClock()


class CoupledPhysics:
    """The device, clock, seeded noise and photodiode optics every simulated instrument
    shares.  Thread-safe: instruments call it from their own server threads."""

    def __init__(self, config: BenchConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock if clock is not None else _default_clock(config)
        self.device: ElectricalDevice = build_device(config)
        self.rng = np.random.default_rng(config.simulation.seed)
        self.noise = bool(config.simulation.noise)
        self.lock = threading.RLock()
        cal = config.calibration.photodiode
        self.collection_factor = optics.collection_factor(cal)
        base = Path(config.source_path).parent if config.source_path else None
        self._resp_nm, self._resp_a_w = load_responsivity(cal, base)
        self._resp_cache: dict[tuple[float, float], float] = {}
        self.dark_current_a = config.simulation.photodiode_dark_current_a
        self.illumination_mw_cm2 = 0.0
        self._fault: Literal["short", "open"] | None = None
        self._mode: Literal["off", "voltage", "current"] = "off"
        self._level = 0.0
        self._compliance = 0.0
        self._last_time = self.clock.time()
        self._op = OperatingPoint(0.0, 0.0, False, False)
        self._since_change = 0.0  # s since the drive last changed (sets the sub-step)
        self._samples: list[tuple[float, int, Callable[[float], None]]] = []
        self._sample_order = itertools.count()
        self.trigger_link = TriggerLink()
        # a substrate on a switch: one device per channel; until a simulated switch says
        # what is closed (``connect_channels``) the config's device is wired directly, so
        # a run that opens no switch measures it as on a one-device bench
        self.pixels: dict[str, Any] = self._build_pixels(config)
        self._closed: tuple[str, ...] | None = None
        self._connected: Any = None

    def _build_pixels(self, config: BenchConfig) -> dict[str, Any]:
        """Switch channel -> that pixel's device (or the short / open of its defect)."""
        if config.substrate is None or "switch" not in config.instruments:
            return {}
        pixels = {}
        defects = pixel_defects(config)
        for name, model in pixel_models(config).items():
            pixel = config.substrate.pixels[name]
            defect = defects.get(name)
            pixels[pixel.channel] = (
                _Resistor(SHORT_OHM if defect == "short" else OPEN_OHM, pixel.area_cm2)
                if defect is not None
                else build_device(config, model, pixel.area_cm2)
            )
        return pixels

    def connect_channels(self, closed: tuple[str, ...]) -> None:
        """What the switch has closed: that pixel's device is now on the SMU and under the
        photodiode; nothing closed is an open circuit, two closed are in parallel."""
        with self.lock:
            self.update()
            self._closed = tuple(closed)
            parts = [self.pixels[c] for c in self._closed if c in self.pixels]
            if not parts:
                self._connected = _Resistor(OPEN_OHM, self.device.area_cm2)
            elif len(parts) == 1:
                self._connected = parts[0]
                if not isinstance(parts[0], _Resistor):
                    self.device = parts[0]
            else:
                self._connected = _Parallel(parts)
            self._since_change = 0.0
            self._op = self._solve()

    @property
    def closed_channels(self) -> tuple[str, ...] | None:
        """The channels the switch has closed (None: no switch simulator, the device is
        wired directly)."""
        return self._closed

    # ------------------------------------------------------------------ electrical
    def _electrical(self) -> Any:
        """What the SMU sees: the device, or the fault that replaced it."""
        if self._fault == "short":
            return _Resistor(SHORT_OHM, self.device.area_cm2)
        if self._fault == "open":
            return _Resistor(OPEN_OHM, self.device.area_cm2)
        if self._closed is not None:
            return self._connected
        return self.device

    def _solve(self) -> OperatingPoint:
        """The operating point for the programmed source in the device's present state."""
        if self._mode == "off":
            return OperatingPoint(0.0, 0.0, False, False)
        dev = self._electrical()
        if self._mode == "voltage":
            volts, limit = self._level, self._compliance
            amps = dev.current_at(volts)
            if abs(amps) > limit:
                amps = math.copysign(limit, amps)
                return OperatingPoint(dev.voltage_at(amps), amps, True, True)
            return OperatingPoint(volts, amps, False, True)
        amps, limit = self._level, self._compliance
        volts = dev.voltage_at(amps)
        if not math.isfinite(volts) or abs(volts) > limit:
            volts = math.copysign(limit, volts if volts != 0 else amps)
            return OperatingPoint(volts, dev.current_at(volts), True, True)
        return OperatingPoint(volts, amps, False, True)

    def _device_drive(self, op: OperatingPoint) -> tuple[float, float]:
        """(V, I) across the device itself: a fault carries the current past it."""
        if self._fault is not None or not op.output_on or self._electrical() is not self.device:
            return 0.0, 0.0
        return op.voltage, op.current

    def _integrate(self, dt: float) -> None:
        tau = getattr(self.device, "thermal_time_constant_s", None)
        if tau is None or not math.isfinite(tau):
            self.device.advance(dt, *self._device_drive(self._op))
            self._since_change += dt
            return
        taus = getattr(self.device, "thermal_time_constants_s", (tau,))
        slow, fast = max(taus), min(taus)
        steps = 0
        while dt > 0:
            h = min(slow, max(fast, self._since_change)) / _SUBSTEPS_PER_TAU
            step = dt if steps >= _MAX_SUBSTEPS else min(dt, h)
            self.device.advance(step, *self._device_drive(self._op))
            dt -= step
            steps += 1
            self._since_change += step
            self._op = self._solve()

    def _advance_to(self, t: float) -> None:
        dt = t - self._last_time
        if dt > 0:
            self._last_time = t
            self._integrate(dt)

    def update(self) -> None:
        """Advance heating and degradation from the last update to ``clock.time()`` at the
        present operating point (sub-stepped so that large clock jumps stay stable),
        taking the photodiode samples scheduled in between at their own times."""
        with self.lock:
            now = self.clock.time()
            while self._samples and self._samples[0][0] <= now:
                t, _, callback = heapq.heappop(self._samples)
                self._advance_to(t)
                self._op = self._solve()
                callback(self._photodiode_signal() + self.dark_current_a)
            self._advance_to(now)
            self._op = self._solve()

    def schedule_photodiode_sample(self, at_time: float, callback: Callable[[float], None]) -> None:
        """Call ``callback(noise-free photodiode current, A)`` with the light at simulated
        time ``at_time`` (now or later), as soon as the clock has passed it.  A triggered
        picoammeter integrates this way while another instrument drives the device."""
        with self.lock:
            self.update()
            heapq.heappush(self._samples, (float(at_time), next(self._sample_order), callback))
            self.update()  # a sample due now is taken at once

    def _program(self, mode: Literal["voltage", "current"], level: float, limit: float) -> None:
        if not limit > 0:
            raise ValueError(f"compliance must be > 0, got {limit}")
        self._mode, self._level, self._compliance = mode, float(level), float(limit)
        self._since_change = 0.0
        self._op = self._solve()

    def source_voltage(self, volts: float, compliance_a: float) -> OperatingPoint:
        """Output on, sourcing ``volts`` with a current compliance of ``compliance_a``."""
        with self.lock:
            self.update()
            self._program("voltage", volts, compliance_a)
            return self._op

    def source_current(self, amps: float, compliance_v: float) -> OperatingPoint:
        """Output on, sourcing ``amps`` with a voltage compliance of ``compliance_v``."""
        with self.lock:
            self.update()
            self._program("current", amps, compliance_v)
            return self._op

    def output_off(self) -> None:
        """No current flows; the device cools from here on."""
        with self.lock:
            self.update()
            if self._mode != "off":
                self._since_change = 0.0
            self._mode = "off"
            self._op = self._solve()

    @property
    def operating_point(self) -> OperatingPoint:
        with self.lock:
            self.update()
            return self._op

    def set_device_fault(self, kind: Literal["short", "open"] | None) -> None:
        """Replace the device by a short (~0.5 Ω) or an open (~1 TΩ), or restore it."""
        if kind not in (None, "short", "open"):
            raise ValueError(f"fault kind must be 'short', 'open' or None, got {kind!r}")
        with self.lock:
            self.update()
            self._fault = kind
            self._since_change = 0.0
            self._op = self._solve()

    @property
    def fault(self) -> str | None:
        return self._fault

    def set_illumination(self, mw_cm2: float) -> None:
        """Light on the device (solar cells; 0 = dark).  Devices that do not care ignore it."""
        if not mw_cm2 >= 0:
            raise ValueError(f"illumination must be >= 0 mW/cm², got {mw_cm2}")
        with self.lock:
            self.update()
            self.illumination_mw_cm2 = float(mw_cm2)
            setter = getattr(self.device, "set_illumination", None)
            if setter is not None:
                setter(float(mw_cm2))
            self._op = self._solve()

    # ------------------------------------------------------------------ optical
    def _emitting_current(self) -> float:
        return self._device_drive(self._op)[1]

    def _responsivity_integral(self, amps: float) -> float:
        """∫R(λ)s(λ)dλ (A/W) for the present spectrum shape, cached per line shape."""
        key = (
            getattr(self.device, "peak_nm_at", lambda a: 0.0)(amps),
            getattr(getattr(self.device, "model", None), "fwhm_nm", 0.0),
        )
        cached = self._resp_cache.get(key)
        if cached is None:
            shape = self.device.spectrum_shape(PHOTODIODE_GRID_NM, amps)
            r = optics.responsivity_at(self._resp_nm, self._resp_a_w, PHOTODIODE_GRID_NM, shape)
            cached = float(optics.spectral_integral(PHOTODIODE_GRID_NM, r * shape))
            if len(self._resp_cache) > 1024:
                self._resp_cache.clear()
            self._resp_cache[key] = cached
        return cached

    def _photodiode_signal(self) -> float:
        """Noise-free photocurrent from the device's light (A), dark current excluded."""
        amps = self._emitting_current()
        power = self.device.optical_power_w(amps) if amps > 0 else 0.0
        if power <= 0:
            return 0.0
        return power * self.collection_factor * self._responsivity_integral(amps)

    def photodiode_current(self, integration_time_s: float = DEFAULT_INTEGRATION_S) -> float:
        """Photodiode current (A) now: signal + dark current + seeded noise (shot noise over
        the integration time, a small relative noise and a floor) when noise is on."""
        with self.lock:
            self.update()
            return self.photodiode_noise(
                self._photodiode_signal() + self.dark_current_a, integration_time_s
            )

    def photodiode_noise(self, mean_a: float, integration_time_s: float) -> float:
        """``mean_a`` plus the photodiode's seeded noise over ``integration_time_s`` (shot
        noise, a small relative noise and a floor) when noise is on."""
        with self.lock:
            if not self.noise:
                return float(mean_a)
            t = max(integration_time_s, 1e-4)
            sigma = math.sqrt(
                elementary_charge * abs(mean_a) / t
                + (RELATIVE_NOISE * mean_a) ** 2
                + NOISE_FLOOR_A**2
            )
            return float(mean_a + sigma * self.rng.standard_normal())

    def spectral_flux_w_per_nm(self, wavelength_nm: np.ndarray) -> np.ndarray:
        """Forward-hemisphere spectral radiant flux P·s(λ) (W/nm) on ``wavelength_nm``."""
        with self.lock:
            self.update()
            wl = np.asarray(wavelength_nm, float)
            amps = self._emitting_current()
            power = self.device.optical_power_w(amps) if amps > 0 else 0.0
            if power <= 0:
                return np.zeros_like(wl)
            return power * self.device.spectrum_shape(wl, amps)

    # ------------------------------------------------------------------ truth
    def truth(self) -> dict[str, float]:
        """Ground truth at the present operating point (for tests only)."""
        with self.lock:
            self.update()
            op = self._op
            volts, amps = self._device_drive(op)
            out: dict[str, float] = {
                "voltage_v": op.voltage,
                "current_a": op.current,
                "current_density_a_cm2": op.current / self.device.area_cm2,
                "in_compliance": float(op.in_compliance),
                "output_on": float(op.output_on),
                "illumination_mw_cm2": self.illumination_mw_cm2,
                "optical_power_w": 0.0,
                "photon_flux_per_s": 0.0,
                "luminance_cd_m2": 0.0,
                "collection_factor": self.collection_factor,
                "photodiode_signal_a": self._photodiode_signal(),
                "photodiode_dark_current_a": self.dark_current_a,
            }
            device_truth = getattr(self.device, "truth", None)
            if device_truth is not None:
                out.update(device_truth(volts, amps))
                out["current_density_a_cm2"] = op.current / self.device.area_cm2
            if amps > 0 and out["optical_power_w"] > 0:
                out["responsivity_a_w"] = self._responsivity_integral(amps)
            return out
