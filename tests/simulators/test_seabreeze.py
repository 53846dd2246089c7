"""The simulated USB2000+ as a python-seabreeze backend: unchanged seabreeze code, real
``seabreeze.spectrometers.Spectrometer`` objects, the bench's light."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import seabreeze.spectrometers as sb

from labrig.clock import SimulatedClock
from labrig.config import load_config
from labrig.errors import ConfigError
from labrig.simulators import seabreeze as simulated
from labrig.simulators.physics import CoupledPhysics
from labrig.simulators.spectrometer import ELECTRIC_DARK_PIXELS, SimulatedSpectrometer

# A script as a seabreeze user writes it: nothing of labrig in it.
PLAIN_SCRIPT = """\
import numpy as np
from seabreeze.spectrometers import Spectrometer, list_devices

devices = list_devices()
print("devices", [d.serial_number for d in devices])
spec = Spectrometer.from_serial_number(devices[0].serial_number)
spec.integration_time_micros(100000)
spec.intensities()  # the first spectrum after a change was integrated before it
wavelengths = spec.wavelengths()
counts = spec.intensities(correct_dark_counts=True, correct_nonlinearity=True)
print("class", type(spec).__module__, type(spec).__name__)
print("features", sorted(name for name, found in spec.features.items() if found))
print("nonlinearity", spec.f.nonlinearity_coefficients.get_nonlinearity_coefficients())
print("eeprom", spec.f.eeprom)
print("pixels", spec.pixels, spec.spectrum().shape)
print("peak_nm", wavelengths[np.argmax(counts)], "max", counts.max())
spec.close()
"""


@pytest.fixture
def restore_seabreeze() -> Iterator[None]:
    """``use()`` switches this process's seabreeze; put back what was there."""
    descriptor = vars(sb.Spectrometer)["_backend"]
    saved_backend = descriptor._backend
    saved = {k: vars(sb)[k] for k in ("_lib", "SeaBreezeDevice") if k in vars(sb)}
    saved_api = vars(sb.list_devices).get("_api")
    yield
    descriptor._backend = saved_backend
    for key in ("_lib", "SeaBreezeDevice"):
        vars(sb).pop(key, None)
    vars(sb).update(saved)
    vars(sb.list_devices).pop("_api", None)
    if saved_api is not None:
        sb.list_devices._api = saved_api


@pytest.fixture
def lit_bench() -> CoupledPhysics:
    config = load_config("sim")
    bench = CoupledPhysics(config, clock=SimulatedClock(start=0.0))
    bench.source_voltage(2.8, compliance_a=config.limits.default_compliance_a)
    return bench


def test_plain_seabreeze_script_runs_unchanged_on_the_simulated_bench(tmp_path: Path) -> None:
    script = tmp_path / "measure.py"
    script.write_text(PLAIN_SCRIPT)
    run = subprocess.run(
        [sys.executable, "-m", "labrig.simulators.seabreeze", "--drive-voltage", "2.8"]
        + [str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "devices ['SIM2K0001']" in out
    assert "class seabreeze.spectrometers Spectrometer" in out  # seabreeze's own class
    assert "features ['nonlinearity_coefficients', 'spectrometer']" in out
    assert "nonlinearity [1.0, -6e-07]" in out
    assert "eeprom None" in out  # a feature the unit lacks, as pyseabreeze reports it
    assert "pixels 2048 (2, 2048)" in out
    found = re.search(r"peak_nm (\S+) max (\S+)", out)
    assert found, out
    peak, top = float(found.group(1)), float(found.group(2))
    emission = load_config("sim").device.model.peak_nm  # the simulated LED: 628 nm
    assert abs(peak - emission) <= 2.0, (peak, emission)  # ~6 pixels of 0.34 nm
    assert 2000 < top < 60000  # lit, and not saturated (a flat top would move the argmax)


def test_devices_are_real_seabreeze_spectrometers(
    restore_seabreeze: None, lit_bench: CoupledPhysics
) -> None:
    simulated.use(lit_bench, serial_number="SIMX")
    assert [d.serial_number for d in sb.list_devices()] == ["SIMX"]
    with pytest.raises(sb.SeaBreezeError, match="No device attached with serial number"):
        sb.Spectrometer.from_serial_number("NOPE")
    spec = sb.Spectrometer.from_first_available()
    assert isinstance(spec, sb.Spectrometer)
    assert repr(spec) == "<Spectrometer USB2000PLUS:SIMX>"
    with pytest.raises(sb.SeaBreezeError, match="already opened"):
        sb.Spectrometer.from_serial_number("SIMX")
    assert spec.features["spectrometer"][0] is not None
    assert spec.f.spectrometer.get_electric_dark_pixel_indices() == list(ELECTRIC_DARK_PIXELS)
    spec.integration_time_micros(50_000)
    spec.intensities()  # stale
    raw = spec.intensities()
    dark_corrected = spec.intensities(correct_dark_counts=True)
    dark = dark_corrected[list(ELECTRIC_DARK_PIXELS)]
    assert raw[list(ELECTRIC_DARK_PIXELS)].mean() > 1000  # the detector's offset ...
    assert abs(dark.mean()) < 20  # ... removed by seabreeze's own dark correction
    with pytest.raises(sb.SeaBreezeError, match="out of range"):
        spec.integration_time_micros(10)
    spec.close()
    assert sb.list_devices()[0].is_open is False


def test_labrig_driver_opens_it_through_seabreeze_when_switched_on(
    restore_seabreeze: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labrig.drivers.usb2000plus import connect

    monkeypatch.setenv("LABRIG_SEABREEZE", "simulated")
    spectrometer = connect("SIM2K0001")
    try:
        assert isinstance(spectrometer._device, sb.Spectrometer)
        assert spectrometer.identity().serial == "SIM2K0001"
    finally:
        spectrometer.shutdown()


def test_labrig_switch_value_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from labrig.drivers.usb2000plus import connect

    monkeypatch.setenv("LABRIG_SEABREEZE", "yes")
    with pytest.raises(
        ConfigError, match="LABRIG_SEABREEZE='yes' is not allowed; allowed: simulated"
    ):
        connect()


def test_runner_usage_error_is_one_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "labrig.simulators.seabreeze", "--drive-voltage", "x", "s.py"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "--drive-voltage: invalid float value: 'x'" in run.stderr
    assert run.stdout == ""


def test_bound_spectrometer_leaves_the_process_seabreeze_alone(lit_bench: CoupledPhysics) -> None:
    """labrig's bench opens its unit as a seabreeze Spectrometer without use()."""
    before = vars(sb.Spectrometer)["_backend"]._backend
    unit = SimulatedSpectrometer(lit_bench, serial_number="SIMB")
    spec = simulated.spectrometer(unit)
    assert isinstance(spec, sb.Spectrometer)
    assert vars(sb.Spectrometer)["_backend"]._backend is before  # nothing switched
    assert "_lib" not in vars(sb) or vars(sb)["_lib"] is not simulated
    spec.integration_time_micros(20_000)
    spec.intensities()
    counts = spec.intensities(correct_dark_counts=True, correct_nonlinearity=True)
    assert unit.reads == 2  # every spectrum came from the simulated detector
    peak = spec.wavelengths()[np.argmax(counts)]
    assert abs(peak - load_config("sim").device.model.peak_nm) <= 2.0
