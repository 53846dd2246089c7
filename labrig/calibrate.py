"""``labrig calibrate luminance``: tie the photodiode luminance to a luminance meter.

The photodiode method (labrig.analysis.photometry) rests on a geometry and a
responsivity table; a luminance meter (e.g. a Konica Minolta LS-160 read by eye) looking
at the same pixel gives the luminance directly.  Driving the device at a set current,
the ratio meter / labrig (labrig's value *without* any earlier correction) is the
luminance-meter correction factor ``calibration.luminance_correction``.

Where it is stored: in the bench config's own ``calibration`` section
(``luminance_correction`` and ``luminance_correction_date``), because that is what
``load_config`` reads and what every run file records under ``/entry/config``; a
separate file would be one more thing to forget to pass.  The two keys are edited in
place in the YAML text (comments and layout are kept), and the result is re-validated
before it replaces the file; nothing is written if that fails.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labrig.errors import ConfigError, ParameterError

if TYPE_CHECKING:
    from labrig.bench import Bench

log = logging.getLogger(__name__)

#: photodiode readings averaged for each luminance
READINGS = 10
#: time the device is left at the set current before reading (s): thermal settling
SETTLE_S = 5.0


@dataclass(frozen=True)
class LuminanceCalibration:
    """What ``calibrate luminance`` did, for the CLI to show."""

    current_a: float
    voltage_v: float
    meter_cd_m2: float
    #: labrig's luminance with the correction in force before (the "before" value)
    before_cd_m2: float
    #: a fresh reading with the new correction (the "after" value)
    after_cd_m2: float
    previous_factor: float
    factor: float
    date: _dt.date
    config_path: Path
    spectrum_used: str  # "measured" or "reference"


def _photodiode(bench: Bench, dark: float) -> float:
    readings = bench.photometer.read_burst(READINGS)
    return float(np.mean([r.current for r in readings])) - dark


def calibrate_luminance(
    bench: Bench,
    current_a: float,
    read_meter: Callable[[str], float],
    config_path: Path,
    *,
    settle_s: float = SETTLE_S,
    today: _dt.date | None = None,
) -> LuminanceCalibration:
    """Drive ``current_a``, ask ``read_meter(prompt)`` for the meter's cd/m², store
    factor = meter / labrig (uncorrected) with today's date in ``config_path`` and return
    before/after.  The bench must be open with smu and photometer (spectrometer optional:
    without it the reference spectrum weights the photodiode, as in a spectra-off run)."""
    from labrig.analysis.photometry import BenchPhotometry
    from labrig.spectrum_recorder import SpectrumRecorder

    if not current_a > 0:
        raise ParameterError(f"current {current_a!r} A: must be > 0 (forward drive)")
    bench.check_drive(amps=current_a)
    photometry = BenchPhotometry(bench.config)
    smu = bench.smu
    smu.disable_output()
    bench.photometer.configure(nplc=1.0)
    bench.photometer.zero_correct()  # also leaves zero check off (on at 6485 power-up)
    dark = float(np.mean([r.current for r in bench.photometer.read_burst(READINGS)]))
    recorder = None
    if bench.has("spectrometer"):
        recorder = SpectrumRecorder(bench.spectrometer)
        recorder.take_darks()
    smu.configure_source("current", bench.limits.max_voltage_v, nplc=1.0)
    smu.set_level(current_a)
    smu.enable_output()
    try:
        bench.clock.sleep(settle_s)
        reading = smu.measure()
        factors, used = photometry.reference, "reference"
        if recorder is not None:
            shape = photometry.recorded(recorder.acquire()[0])
            if shape is not None:
                factors, used = photometry.factors(*shape), "measured"
        raw = photometry.apply(
            _photodiode(bench, dark), reading.current, reading.voltage, factors, corrected=False
        )
        uncorrected = float(raw.luminance_cd_m2)
        previous = photometry.luminance_correction
        before = previous * uncorrected
        meter = float(
            read_meter(
                f"Luminance meter reading at {current_a * 1e3:.4g} mA "
                f"({reading.voltage:.3f} V), in cd/m²"
            )
        )
        if not (np.isfinite(meter) and meter > 0):
            raise ParameterError(f"meter reading {meter!r} cd/m²: must be a positive number")
        if not uncorrected > 0:
            raise ParameterError(
                f"labrig sees no light at {current_a:g} A ({uncorrected:.3g} cd/m²): check the "
                "photodiode and the drive current"
            )
        factor = meter / uncorrected
        after_raw = photometry.apply(
            _photodiode(bench, dark), reading.current, reading.voltage, factors, corrected=False
        )
    finally:
        smu.disable_output()
    date = today or _dt.date.today()
    write_luminance_correction(Path(config_path), factor, date)
    log.info("luminance correction %.4g (was %.4g) written to %s", factor, previous, config_path)
    return LuminanceCalibration(
        current_a=current_a,
        voltage_v=reading.voltage,
        meter_cd_m2=meter,
        before_cd_m2=before,
        after_cd_m2=factor * float(after_raw.luminance_cd_m2),
        previous_factor=previous,
        factor=factor,
        date=date,
        config_path=Path(config_path),
        spectrum_used=used,
    )


_TOP_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)\s*:")


def _set_keys(text: str, values: dict[str, str]) -> str:
    """The YAML text with ``calibration.<key>: value`` set for each key (block style)."""
    lines = text.splitlines(keepends=True)
    start = next(
        (i for i, line in enumerate(lines) if re.match(r"^calibration\s*:\s*(#.*)?$", line)),
        None,
    )
    if start is None:
        raise ConfigError("config: no block-style top-level 'calibration:' section to update")
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if _TOP_KEY.match(lines[i]):
            end = i
            break
    body = [
        line
        for line in lines[start + 1 : end]
        if line.strip() and not line.lstrip().startswith("#")
    ]
    indent = re.match(r"^(\s*)", body[0]).group(1) if body else "  "
    remaining = dict(values)
    for i in range(start + 1, end):
        m = re.match(rf"^{indent}(?P<key>[A-Za-z_]\w*)\s*:(?P<rest>.*)$", lines[i].rstrip("\n"))
        if m and m.group("key") in remaining:
            comment = re.search(r"\s+#.*$", m.group("rest"))
            tail = comment.group(0) if comment else ""
            key = m.group("key")
            lines[i] = f"{indent}{key}: {remaining.pop(key)}{tail}\n"
    insert = [f"{indent}{key}: {value}\n" for key, value in remaining.items()]
    lines[start + 1 : start + 1] = insert
    return "".join(lines)


def write_luminance_correction(config_path: Path, factor: float, date: _dt.date) -> None:
    """Set ``calibration.luminance_correction`` and ``..._date`` in the config file, keeping
    everything else; the edited text must load to exactly these values or nothing is written."""
    from labrig.config import load_config, parse_config

    config_path = Path(config_path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config {config_path}: cannot read it ({exc})") from None
    new = _set_keys(
        text,
        {"luminance_correction": f"{factor:.6g}", "luminance_correction_date": date.isoformat()},
    )
    import yaml

    check = parse_config(yaml.safe_load(new), source_path=str(config_path))
    cal = check.calibration
    if not (
        np.isclose(cal.luminance_correction, float(f"{factor:.6g}"))
        and cal.luminance_correction_date == date
    ):
        raise ConfigError(f"config {config_path}: could not update the calibration section safely")
    tmp = config_path.with_name(config_path.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(config_path)
    load_config(config_path)  # the file on disk loads as checked
