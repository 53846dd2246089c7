"""The USB2000+ driver on a stand-in for seabreeze's Spectrometer (no USB device can exist
here) and, unchanged, on the simulated spectrometer of the simulated bench."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from seabreeze.spectrometers import SeaBreezeError

from labrig.drivers import usb2000plus
from labrig.drivers.usb2000plus import USB2000Plus
from labrig.errors import (
    ConfigError,
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentNotFoundError,
    InstrumentSettingError,
    InstrumentTimeoutError,
    SaturationError,
    WrongInstrumentError,
)
from labrig.interfaces import Spectrometer
from labrig.simulators.spectrometer import SimulatedSpectrometer, usb2000plus_wavelengths

OFFSET = 1000.0


class FakeSeabreezeSpectrometer:
    """Stand-in for ``seabreeze.spectrometers.Spectrometer`` with a USB2000+ behind it:
    noise-free so the tests can check numbers exactly.  ``light`` is the signal in counts
    per second per pixel; the first frame after an integration-time change is the one
    integrated at the previous time, as on the device."""

    def __init__(self, model: str = "USB2000PLUS", serial: str = "USB2+F00001") -> None:
        self.model = model
        self.serial_number = serial
        self.pixels = 2048
        self.max_intensity = 65535.0
        self.integration_time_micros_limits = (1000, 65_000_000)
        self.features = {"nonlinearity_coefficients": ["feature"], "spectrometer": ["feature"]}
        self.light = np.zeros(self.pixels)
        self.calls: list[tuple] = []
        self.fail_with: Exception | None = None
        self.frame_length = self.pixels
        self._us = 100_000
        self._previous_us = self._us
        self._stale = False
        self.closed = False

    def wavelengths(self) -> np.ndarray:
        return usb2000plus_wavelengths()

    def integration_time_micros(self, integration_time_micros: int) -> None:
        self.calls.append(("integration_time_micros", integration_time_micros))
        if integration_time_micros != self._us:
            self._previous_us, self._us = self._us, integration_time_micros
            self._stale = True

    def intensities(self, correct_dark_counts=False, correct_nonlinearity=False) -> np.ndarray:
        self.calls.append(("intensities", correct_dark_counts, correct_nonlinearity))
        if self.fail_with is not None:
            raise self.fail_with
        us = self._previous_us if self._stale else self._us
        self._stale = False
        light = self.light.copy()
        light[6:22] = 0.0  # electric-dark pixels
        raw = np.clip(OFFSET + light * us * 1e-6, 0, self.max_intensity)
        if correct_dark_counts:
            raw = raw - raw[6:22].mean()
        return raw[: self.frame_length]

    def close(self) -> None:
        self.closed = True

    def reads(self) -> int:
        return sum(1 for c in self.calls if c[0] == "intensities")


def line(peak_nm: float, counts_per_s: float, fwhm_nm: float = 30.0) -> np.ndarray:
    wl = usb2000plus_wavelengths()
    sigma = fwhm_nm / (2 * math.sqrt(2 * math.log(2)))
    return counts_per_s * np.exp(-0.5 * ((wl - peak_nm) / sigma) ** 2)


# ------------------------------------------------------- one driver, two devices
class FakeRig:
    """The fake device with a 'source' that switches its light."""

    def __init__(self) -> None:
        self.device = FakeSeabreezeSpectrometer()
        self._light = line(628.0, 3e5)

    def on(self, brightness: float = 1.0) -> None:
        self.device.light = self._light * brightness

    def off(self) -> None:
        self.device.light = np.zeros(self.device.pixels)

    def flood(self) -> None:
        self.on(brightness=5000.0)


class SimRig:
    """The simulated spectrometer on the simulated bench; the SMU's current is the source."""

    def __init__(self, config) -> None:
        from labrig.simulators.physics import CoupledPhysics

        self.physics = CoupledPhysics(config)
        self.device = SimulatedSpectrometer(self.physics)

    def on(self, brightness: float = 1.0) -> None:
        self.physics.source_current(1e-3 * 0.04 * brightness, 10.0)  # 1 mA/cm² x brightness

    def off(self) -> None:
        self.physics.output_off()

    def flood(self) -> None:
        """Even 2 A/cm² cannot saturate 1 ms (the LED rolls off): stray light can."""
        self.device.inject_fault("overrange")


@pytest.fixture(params=["fake", "sim"])
def rig(request, sim_config):
    return FakeRig() if request.param == "fake" else SimRig(sim_config)


def test_implements_the_interface_and_identifies(rig):
    spec = USB2000Plus(rig.device, resource="usb:test")
    assert isinstance(spec, Spectrometer)
    ident = spec.identity()
    assert (ident.manufacturer, ident.model) == ("Ocean Optics", "USB2000PLUS")
    assert ident.serial == rig.device.serial_number
    assert spec.wavelengths_nm.shape == (2048,)
    assert spec.integration_time_limits_s == pytest.approx((0.001, 65.0))
    spec.shutdown()
    spec.close()
    spec.close()  # idempotent


@pytest.mark.parametrize("seconds", [0.0005, 70.0, math.nan, -1.0])
def test_integration_time_outside_the_device_limits_is_refused(rig, seconds):
    spec = USB2000Plus(rig.device)
    with pytest.raises(InstrumentSettingError, match=r"outside the USB2000PLUS limits 0\.001-65 s"):
        spec.set_integration_time(seconds)
    spec.set_integration_time(0.001)  # the limits themselves are allowed
    spec.set_integration_time(65.0)
    assert spec.integration_time_s == 65.0


def test_first_frame_after_an_integration_time_change_is_discarded(rig):
    spec = USB2000Plus(rig.device, integration_time_s=0.01)
    rig.on()
    spec.acquire(subtract_dark=False)
    short = spec.acquire(subtract_dark=False, scans_to_average=2).counts
    spec.set_integration_time(0.1)
    reads = rig.device.reads() if isinstance(rig, FakeRig) else rig.device.reads
    long = spec.acquire(subtract_dark=False).counts
    after = rig.device.reads() if isinstance(rig, FakeRig) else rig.device.reads
    assert after - reads == 2  # the stale frame and the fresh one
    # the frame used is the 0.1 s one: ~10x the 10 ms signal above the offset
    base = np.median(short)
    assert (long.max() - base) / (short.max() - base) == pytest.approx(10.0, rel=0.05)
    before = after
    spec.acquire(subtract_dark=False)
    after = rig.device.reads() if isinstance(rig, FakeRig) else rig.device.reads
    assert after - before == 1  # no change, nothing to discard


def test_dark_is_taken_with_the_source_off_and_subtracted(rig):
    spec = USB2000Plus(rig.device, integration_time_s=0.05)
    with pytest.raises(InstrumentSettingError, match="call take_dark"):
        spec.acquire()
    rig.off()
    dark = spec.take_dark(scans_to_average=4)
    rig.on()
    spectrum = spec.acquire(scans_to_average=4)
    assert spectrum.dark_subtracted and not spectrum.saturated
    assert spectrum.scans_averaged == 4 and spectrum.integration_time_s == 0.05
    # away from the emission line only noise around zero is left
    far = spectrum.wavelength_nm < 450
    assert abs(np.mean(spectrum.counts[far])) < 6.0  # electric-dark correction noise ~1.3
    assert spectrum.counts.max() > 1000
    np.testing.assert_allclose(spec.dark, dark)
    spec.set_integration_time(0.1)  # a dark at 0.05 s does not fit 0.1 s
    with pytest.raises(InstrumentSettingError, match=r"taken at 0\.05 s"):
        spec.acquire()


def test_saturated_spectrum_is_flagged_and_dark_refused(rig):
    spec = USB2000Plus(rig.device, integration_time_s=0.5)
    rig.on(brightness=40.0)
    spectrum = spec.acquire(subtract_dark=False)
    assert spectrum.saturated
    assert spectrum.relative_power is None
    with pytest.raises(SaturationError, match="dark spectrum is saturated"):
        spec.take_dark()


def test_auto_exposure_brings_the_peak_to_the_target(rig):
    spec = USB2000Plus(rig.device, integration_time_s=1.0)  # starts saturated for the sim
    rig.on(brightness=3.0)
    t = spec.auto_expose(target_fraction=0.7, max_time_s=2.0)
    assert 0.001 <= t <= 2.0
    assert spec.integration_time_s == t
    frame = spec.acquire(subtract_dark=False)
    assert not frame.saturated
    assert frame.counts.max() == pytest.approx(0.7 * 65535, rel=0.12)


def test_auto_exposure_stays_saturated_at_the_minimum_time(rig):
    spec = USB2000Plus(rig.device)
    rig.flood()
    with pytest.raises(SaturationError, match=r"shortest allowed integration time 0\.001 s"):
        spec.auto_expose()


def test_auto_exposure_of_a_weak_source_stops_at_the_longest_time(rig):
    spec = USB2000Plus(rig.device, integration_time_s=0.01)
    rig.on(brightness=1e-3)
    assert spec.auto_expose(max_time_s=0.5) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_fraction": 0.99}, "target_fraction"),
        ({"min_time_s": 0.0001}, "auto-exposure bounds"),
        ({"min_time_s": 0.5, "max_time_s": 0.1}, "auto-exposure bounds"),
        ({"max_time_s": 100.0}, "auto-exposure bounds"),
    ],
)
def test_auto_exposure_bounds_are_checked(rig, kwargs, message):
    with pytest.raises(InstrumentSettingError, match=message):
        USB2000Plus(rig.device).auto_expose(**kwargs)


# --------------------------------------------------------------- stand-in details
def test_correction_flags_reach_seabreeze():
    fake = FakeSeabreezeSpectrometer()
    spec = USB2000Plus(fake, correct_dark_counts=True, correct_nonlinearity=False)
    spec.acquire(subtract_dark=False)
    assert ("intensities", True, False) in fake.calls
    spec = USB2000Plus(fake, correct_dark_counts=False, correct_nonlinearity=True)
    spec.acquire(subtract_dark=False)
    assert fake.calls[-1] == ("intensities", False, True)


def test_nonlinearity_correction_needs_the_coefficients():
    fake = FakeSeabreezeSpectrometer()
    fake.features = {"nonlinearity_coefficients": []}
    with pytest.raises(InstrumentSettingError, match="no nonlinearity coefficients"):
        USB2000Plus(fake, correct_nonlinearity=True)
    USB2000Plus(fake, correct_nonlinearity=False)


def test_scans_are_averaged_and_counted():
    fake = FakeSeabreezeSpectrometer()
    spec = USB2000Plus(fake, correct_dark_counts=False, correct_nonlinearity=False)
    spec.acquire(subtract_dark=False)
    before = fake.reads()
    spectrum = spec.acquire(subtract_dark=False, scans_to_average=5)
    assert fake.reads() - before == 5 and spectrum.scans_averaged == 5
    with pytest.raises(InstrumentSettingError, match="scans_to_average"):
        spec.acquire(scans_to_average=0)


def test_boxcar_smoothing_spreads_a_spike_and_keeps_its_area():
    fake = FakeSeabreezeSpectrometer()
    fake.light[1000] = 2100.0  # counts/s: 210 counts at 0.1 s
    spec = USB2000Plus(fake, boxcar_half_width=3, correct_dark_counts=False)
    counts = spec.acquire(subtract_dark=False).counts - OFFSET
    np.testing.assert_allclose(counts[997:1004], 30.0)
    assert counts[996] == pytest.approx(0.0) and counts[1004] == pytest.approx(0.0)
    with pytest.raises(InstrumentSettingError, match="boxcar_half_width"):
        USB2000Plus(fake, boxcar_half_width=-1)


def test_response_calibration_gives_relative_power(tmp_path):
    fake = FakeSeabreezeSpectrometer()
    wl = usb2000plus_wavelengths()
    response = 0.5 + (wl - 340.0) / 1400.0
    path = tmp_path / "response.csv"
    np.savetxt(path, np.column_stack([wl, response]), delimiter=",", header="nm,relative")
    power = line(628.0, 1.0)
    fake.light = 2e5 * power * response
    spec = USB2000Plus(fake, response_file=path)
    fake.light, light = np.zeros(2048), fake.light
    spec.take_dark()
    fake.light = light
    spectrum = spec.acquire()
    np.testing.assert_allclose(spectrum.relative_power, power / power.max(), atol=1e-6)


def test_response_calibration_must_cover_the_spectrum(tmp_path):
    fake = FakeSeabreezeSpectrometer()
    narrow = tmp_path / "narrow.csv"
    np.savetxt(narrow, [[400.0, 1.0], [600.0, 1.2]], delimiter=",")
    spec = USB2000Plus(fake, response_file=narrow)
    spec.take_dark()
    fake.light = line(628.0, 2e5)
    with pytest.raises(ConfigError, match=r"covers 400-600 nm but the spectrum extends"):
        spec.acquire()
    elsewhere = tmp_path / "infrared.csv"
    np.savetxt(elsewhere, [[1100.0, 1.0], [1600.0, 1.0]], delimiter=",")
    with pytest.raises(ConfigError, match="outside the spectrometer's 340-1034 nm"):
        USB2000Plus(fake, response_file=elsewhere)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SeaBreezeError("Data transfer error: USB transfer timed out"), InstrumentTimeoutError),
        (SeaBreezeError("Data transfer error"), InstrumentDisconnectedError),
    ],
)
def test_seabreeze_errors_become_instrument_errors(error, expected):
    fake = FakeSeabreezeSpectrometer()
    spec = USB2000Plus(fake)
    fake.fail_with = error
    with pytest.raises(expected, match="spectrometer: reading a spectrum"):
        spec.acquire(subtract_dark=False)


def test_a_short_frame_is_garbled():
    fake = FakeSeabreezeSpectrometer()
    spec = USB2000Plus(fake)
    fake.frame_length = 1024
    with pytest.raises(GarbledReplyError, match="1024 values for 2048 pixels"):
        spec.acquire(subtract_dark=False)


def test_another_model_is_refused():
    with pytest.raises(WrongInstrumentError, match="is a QE-PRO, not a USB2000"):
        USB2000Plus(FakeSeabreezeSpectrometer(model="QE-PRO"))


# --------------------------------------------------------------------- connect()
def test_connect_with_nothing_attached_says_so():
    """Real seabreeze (cseabreeze): no USB spectrometer exists on this machine."""
    with pytest.raises(InstrumentNotFoundError, match="no Ocean Optics spectrometer attached"):
        usb2000plus.connect(None)
    with pytest.raises(
        InstrumentNotFoundError, match=re.escape("'USB2+H99999' is attached; attached: none")
    ):
        usb2000plus.connect("USB2+H99999")


class _ListedDevice:
    def __init__(self, serial: str) -> None:
        self.serial_number = serial
        self.is_open = False


def test_connect_lists_the_attached_serials_and_opens_by_serial(monkeypatch):
    import seabreeze.spectrometers as sb

    monkeypatch.setattr(
        sb, "list_devices", lambda: [_ListedDevice("USB2+F00001"), _ListedDevice("FLMS00002")]
    )
    with pytest.raises(InstrumentNotFoundError, match="attached: USB2\\+F00001, FLMS00002"):
        usb2000plus.connect("USB2+X")
    fake = FakeSeabreezeSpectrometer(serial="USB2+F00001")
    opened: list[str | None] = []

    def from_serial_number(cls, serial=None):
        opened.append(serial)
        return fake

    monkeypatch.setattr(sb.Spectrometer, "from_serial_number", classmethod(from_serial_number))
    spec = usb2000plus.connect("USB2+F00001", boxcar_half_width=2)
    assert opened == ["USB2+F00001"] and spec.resource == "usb:USB2+F00001"
    assert spec.boxcar_half_width == 2
    usb2000plus.connect(None)
    assert opened[-1] is None  # first available


def test_connect_closes_a_device_it_cannot_use(monkeypatch):
    import seabreeze.spectrometers as sb

    fake = FakeSeabreezeSpectrometer(model="HR4000", serial="HR40001")
    monkeypatch.setattr(sb, "list_devices", lambda: [_ListedDevice("HR40001")])
    monkeypatch.setattr(sb.Spectrometer, "from_serial_number", classmethod(lambda c, s=None: fake))
    with pytest.raises(WrongInstrumentError):
        usb2000plus.connect("HR40001")
    assert fake.closed


def test_connect_refuses_an_unknown_backend():
    with pytest.raises(ConfigError, match="backend 'libusb' is not allowed"):
        usb2000plus.connect(None, backend="libusb")


def test_pyseabreeze_backend_is_selected_before_seabreeze_loads():
    """In a fresh process: pyseabreeze is chosen with seabreeze.use(); here it either
    cannot load (pyusb missing) or finds no device — a clear message either way."""
    code = (
        "from labrig.drivers.usb2000plus import connect\n"
        "from labrig.errors import InstrumentNotFoundError\n"
        "import seabreeze.backends as b\n"
        "try:\n"
        "    connect(None, backend='pyseabreeze')\n"
        "except InstrumentNotFoundError as e:\n"
        "    print(b.BackendConfig.requested, '|', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.startswith("pyseabreeze |")
    assert "cannot be loaded" in out or "no Ocean Optics spectrometer attached" in out


def test_connect_translates_a_device_failing_while_opened(monkeypatch):
    import seabreeze.spectrometers as sb

    class Failing(FakeSeabreezeSpectrometer):
        def wavelengths(self):
            raise SeaBreezeError("Data transfer error")

    fake = Failing(serial="USB2+F00003")
    monkeypatch.setattr(sb, "list_devices", lambda: [_ListedDevice("USB2+F00003")])
    monkeypatch.setattr(sb.Spectrometer, "from_serial_number", classmethod(lambda c, s=None: fake))
    with pytest.raises(InstrumentDisconnectedError, match="reading its configuration"):
        usb2000plus.connect("USB2+F00003")
    assert fake.closed
