"""``labrig calibrate luminance``: tie the photodiode luminance to a luminance meter.

The photodiode method (labrig.analysis.photometry) rests on a geometry and a
responsivity table; a luminance meter (e.g. a Konica Minolta LS-160 read by eye) looking
at the same pixel gives the luminance directly.  Driving the device at a set current,
the ratio meter / labrig (labrig's value *without* any earlier correction) is the
luminance-meter correction factor ``calibration.luminance_correction``.

Where it is stored: in a bench config's ``calibration`` section
(``luminance_correction`` and ``luminance_correction_date``, with the values they replace
as ``previous_luminance_correction`` and ``..._date``), because that is what
``load_config`` reads and what every run file records under ``/entry/config``.  The
config is the user's own file, or the one they name with ``--output``; labrig's shipped
configs are never written (a shipped bench is calibrated into a copy in the working
directory), or every later ``--simulate`` run would silently carry one bench's factor.
The YAML is round-tripped with ruamel.yaml (comments, key order and styles kept) and
re-validated before it replaces the target; nothing is written if that fails.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labrig.errors import ConfigError, ParameterError, UserInputError

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
    #: where the calibrated config was written
    config_path: Path
    spectrum_used: str  # "measured" or "reference"


def check_meter_reading(meter: float) -> None:
    """A luminance-meter reading must be a positive number of cd/m²."""
    if not (np.isfinite(meter) and meter > 0):
        raise ParameterError(f"meter reading {meter!r} cd/m²: must be a positive number")


def check_current(current_a: float) -> None:
    """The calibration drives the LED forward: a positive current."""
    if not current_a > 0:
        raise ParameterError(f"current {current_a!r} A: must be > 0 (forward drive)")


def _photodiode(bench: Bench, dark: float) -> float:
    readings = bench.photometer.read_burst(READINGS)
    return float(np.mean([r.current for r in readings])) - dark


def calibrate_luminance(
    bench: Bench,
    current_a: float,
    read_meter: Callable[[str], float],
    target: Path,
    *,
    settle_s: float = SETTLE_S,
    today: _dt.date | None = None,
) -> LuminanceCalibration:
    """Drive ``current_a``, ask ``read_meter(prompt)`` for the meter's cd/m², write the
    bench's config with factor = meter / labrig (uncorrected) and today's date to
    ``target`` (see ``calibration_target``) and return before/after.  The bench must be open with smu and photometer (spectrometer optional:
    without it the reference spectrum weights the photodiode, as in a spectra-off run)."""
    from labrig.analysis.photometry import BenchPhotometry
    from labrig.spectrum_recorder import SpectrumRecorder

    check_current(current_a)
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
        check_meter_reading(meter)
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
    config = bench.config
    write_luminance_correction(
        config.source_text, Path(target), factor, date, source_path=config.source_path
    )
    log.info("luminance correction %.4g (was %.4g) written to %s", factor, previous, target)
    return LuminanceCalibration(
        current_a=current_a,
        voltage_v=reading.voltage,
        meter_cd_m2=meter,
        before_cd_m2=before,
        after_cd_m2=factor * float(after_raw.luminance_cd_m2),
        previous_factor=previous,
        factor=factor,
        date=date,
        config_path=Path(target),
        spectrum_used=used,
    )


def calibration_target(source_path: Path, output: Path | None) -> tuple[Path, str | None]:
    """Where a calibration of the config at ``source_path`` is written, and the one line
    that says so when it is not the config itself; decided before anything is enabled.

    ``output`` when the user names one; else the config in place, except that a shipped
    config (read-only to every command) becomes a copy in the working directory."""
    from labrig.config import is_shipped

    source_path = Path(source_path)
    if output is not None:
        target, note = Path(output), None
    elif is_shipped(source_path):
        target = Path.cwd() / source_path.name
        note = (
            f"shipped config {source_path.stem!r} is read-only: the calibrated copy goes to "
            f"{target} (use it with --config {target})"
        )
        if target.exists():
            raise UserInputError(
                f"calibrate: {target} already exists; calibrate it with --config {target}, "
                "or name a new file with --output FILE"
            )
    else:
        return source_path, None
    if is_shipped(target):
        raise UserInputError(
            f"calibrate: {target} is one of labrig's shipped configs, which are read-only; "
            "name a file outside the installed package with --output FILE"
        )
    if target.is_dir() or not target.parent.is_dir():
        raise UserInputError(
            f"calibrate: {target} is not a file in an existing directory; name a .yaml "
            "file in a directory that exists with --output FILE"
        )
    return target, note


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments, key order, flow/block style and quotes are kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    return yaml


def updated_config_text(text: str, factor: float, date: _dt.date) -> str:
    """The config ``text`` with the new factor and date, and the ones they replace kept as
    ``previous_luminance_correction`` / ``..._date`` (round-tripped YAML, not a text edit)."""
    import io

    from ruamel.yaml.error import YAMLError

    yaml = _yaml()
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        raise ConfigError(f"config: cannot parse it to update the calibration ({exc})") from None
    cal = data.get("calibration") if isinstance(data, dict) else None
    if not isinstance(cal, dict):
        raise ConfigError("config: no 'calibration' mapping to update")
    values = {
        "luminance_correction": float(f"{factor:.6g}"),
        "luminance_correction_date": date,
        "previous_luminance_correction": float(cal.get("luminance_correction", 1.0)),
        "previous_luminance_correction_date": cal.get("luminance_correction_date"),
    }
    order = list(values)
    for key, value in values.items():
        if key in cal:
            cal[key] = value
            continue
        if value is None:
            continue
        # a new key goes right after the last of the keys before it, so the four stay together
        before = [k for k in order[: order.index(key)] if k in cal]
        cal.insert(list(cal).index(before[-1]) + 1 if before else len(cal), key, value)
    out = io.StringIO()
    yaml.dump(data, out)
    return _keep_layout(text, yaml, out.getvalue())


def _keep_layout(text: str, yaml, new: str) -> str:
    """``new`` with every line the edit did not touch taken verbatim from ``text``.

    ruamel keeps comments and styles but normalises some spacing (``a_per_w:   [...]``
    aligned under the line above loses its padding).  The untouched round trip of
    ``text`` is line-for-line ``text`` up to that spacing, so the lines it shares with
    ``new`` are put back as they were written."""
    import difflib
    import io

    plain = io.StringIO()
    yaml.dump(yaml.load(text), plain)
    original, same, edited = (
        text.splitlines(keepends=True),
        plain.getvalue().splitlines(keepends=True),
        new.splitlines(keepends=True),
    )
    if len(original) != len(same):
        return new  # the round trip re-flowed lines: no line-for-line map back
    kept: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, same, edited).get_opcodes():
        kept.extend(original[i1:i2] if op == "equal" else edited[j1:j2])
    return "".join(kept)


def write_luminance_correction(
    source_text: str, target: Path, factor: float, date: _dt.date, *, source_path: str = ""
) -> None:
    """Write the config ``source_text`` with the new correction to ``target`` (never a
    shipped config); the new text must load to exactly these values or nothing is written."""
    from labrig.config import is_shipped, load_config, parse_config, parse_yaml

    target = Path(target)
    if is_shipped(target):
        raise UserInputError(f"{target}: labrig's shipped configs are read-only")
    new = updated_config_text(source_text, factor, date)
    check = parse_config(parse_yaml(new), source_path=source_path or str(target))
    cal = check.calibration
    if not (
        np.isclose(cal.luminance_correction, float(f"{factor:.6g}"))
        and cal.luminance_correction_date == date
    ):
        raise ConfigError(f"config {target}: could not update the calibration section safely")
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{target}: cannot write it ({exc.strerror or exc})") from None
    load_config(target)  # the file on disk loads as checked
