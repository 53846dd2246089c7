"""Device statistics as papers report them, over the devices of a batch.

* Per condition (the plan's label, e.g. "NSA 0.6 M") and per figure (peak EQE, PCE...):
  n, mean, standard deviation, median, the champion device and its value, and the
  standard error of the mean.  The s.d. is the **sample** standard deviation (ddof = 1,
  Bessel's correction: the devices are a sample of what the process makes), and so is
  the standard error's (s.d./√n, ``scipy.stats.sem``).  With one device there is no
  spread: s.d. and standard error are NaN, never 0.
* n counts the devices that finished with a finite value; a finished device whose figure
  is missing or NaN (an LED that never reached 1 cd/m² has no turn-on voltage) is
  counted apart (``missing``), never averaged in as a number.
* The champion is the best device: the highest value, or the lowest for figures where
  lower is better (``LOWER_IS_BETTER``: turn-on voltage).
* Yield per substrate: pixels measured / pixels planned, with the reasons pixels were
  skipped counted by kind (``shorted``, ``open``: the text before the reason's colon).

Pure functions of the batch file's contents (``labrig.batch.file.Batch``); the figures
themselves are the per-device headline figures the batch file stores.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from labrig.batch.file import Batch, DeviceResult

#: figures whose best device has the lowest value
LOWER_IS_BETTER = frozenset({"turn_on_voltage"})

#: the device status of a measurement that ran to its end
FINISHED = "finished"

#: the ``condition`` of the row over every device when a batch has several conditions
ALL_CONDITIONS = "all"


@dataclass(frozen=True)
class Summary:
    """One figure's statistics over one condition's devices."""

    figure: str
    units: str
    condition: str
    n: int
    mean: float
    sd: float  # sample standard deviation (ddof=1); NaN for n < 2
    median: float
    sem: float  # standard error of the mean, sd/sqrt(n); NaN for n < 2
    champion: str | None  # device label ("S1-A"), None when n == 0
    champion_value: float
    missing: int = 0  # finished devices without a finite value
    values: tuple[float, ...] = ()  # the n values, in plan order
    devices: tuple[str, ...] = ()  # their device labels


@dataclass(frozen=True)
class SubstrateYield:
    """How many of a substrate's planned pixels were measured, and why the rest were not."""

    substrate: str
    planned: int
    measured: int
    skipped: Mapping[str, int] = field(default_factory=dict)  # reason kind -> pixels
    other: Mapping[str, int] = field(default_factory=dict)  # failed/aborted/pending -> pixels

    @property
    def fraction(self) -> float:
        return self.measured / self.planned if self.planned else math.nan


def device_label(device: DeviceResult) -> str:
    """``S1-A``: substrate and pixel, how a device is named in tables and legends."""
    return f"{device.substrate}-{device.pixel}"


def figure_number(device: DeviceResult, name: str) -> float:
    """The device's figure ``name`` as a float; NaN when absent or not a number."""
    item = device.figures.get(name)
    if item is None:
        return math.nan
    try:
        return float(item[0])
    except (TypeError, ValueError):
        return math.nan


def describe(
    figure: str,
    values: Sequence[float],
    devices: Sequence[str],
    *,
    units: str = "",
    condition: str = "",
) -> Summary:
    """Statistics of ``values`` (one per device, NaN where a device has none)."""
    raw = np.asarray(values, dtype=float)
    if raw.shape != (len(devices),):
        raise ValueError(f"{len(raw)} values for {len(devices)} devices")
    keep = np.isfinite(raw)
    x = raw[keep]
    labels = [d for d, k in zip(devices, keep, strict=True) if k]
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return Summary(figure, units, condition, 0, nan, nan, nan, nan, None, nan, len(raw))
    sd = float(np.std(x, ddof=1)) if n > 1 else nan
    sem = float(stats.sem(x, ddof=1)) if n > 1 else nan
    best = int(np.argmin(x) if figure in LOWER_IS_BETTER else np.argmax(x))
    return Summary(
        figure=figure,
        units=units,
        condition=condition,
        n=n,
        mean=float(np.mean(x)),
        sd=sd,
        median=float(np.median(x)),
        sem=sem,
        champion=labels[best],
        champion_value=float(x[best]),
        missing=int(raw.size - n),
        values=tuple(float(v) for v in x),
        devices=tuple(labels),
    )


def conditions(devices: Iterable[DeviceResult]) -> list[str]:
    """The devices' condition labels in plan order (first appearance)."""
    return list(dict.fromkeys(d.condition for d in devices))


def measured(batch: Batch, measurement: str) -> list[DeviceResult]:
    """The devices whose ``measurement`` finished, in plan order."""
    return [d for d in batch.devices if d.measurement == measurement and d.status == FINISHED]


def figure_units(devices: Iterable[DeviceResult], figure: str) -> str:
    """The units the devices give ``figure`` (the first that has it)."""
    for d in devices:
        item = d.figures.get(figure)
        if item is not None:
            return str(item[1])
    return ""


def summarize(batch: Batch, measurement: str, figures: Sequence[str]) -> list[Summary]:
    """Per figure, one ``Summary`` per condition of the devices whose ``measurement``
    finished, and one over all of them (condition ``"all"``) when there are several."""
    done = measured(batch, measurement)
    labels = conditions(d for d in batch.devices if d.measurement == measurement)
    out = []
    for name in figures:
        units = figure_units(done, name)
        groups: list[tuple[str, list[Any]]] = [
            (c, [d for d in done if d.condition == c]) for c in labels
        ]
        if len(labels) > 1:
            groups.append((ALL_CONDITIONS, done))
        for condition, group in groups:
            out.append(
                describe(
                    name,
                    [figure_number(d, name) for d in group],
                    [device_label(d) for d in group],
                    units=units,
                    condition=condition,
                )
            )
    return out


def reason_kind(reason: str) -> str:
    """``"shorted: 0.2 ohm at 0.1 V"`` -> ``"shorted"``; a reason without a kind as is."""
    kind = reason.split(":", 1)[0].strip()
    return kind or "no reason given"


def pixel_status(results: Sequence[DeviceResult]) -> tuple[str, str]:
    """(status, reason) of one pixel from its measurements' results: skipped if any was
    (the pixel is defective), else failed/aborted/pending if any was, else finished."""
    for status in ("skipped", "failed", "aborted", "pending"):
        for r in results:
            if r.status == status:
                return status, r.reason
    return FINISHED, ""


def pixel_states(devices: Iterable[DeviceResult]) -> dict[tuple[str, str], tuple[str, str]]:
    """(substrate, pixel) -> ``pixel_status`` of its rows, in plan order."""
    rows: dict[tuple[str, str], list[DeviceResult]] = {}
    for d in devices:
        rows.setdefault((d.substrate, d.pixel), []).append(d)
    return {key: pixel_status(results) for key, results in rows.items()}


def substrate_yield(batch: Batch) -> list[SubstrateYield]:
    """Per substrate, in plan order: pixels planned, measured (every measurement of the
    pixel finished), skipped by reason kind, and the rest by status."""
    counts: dict[str, tuple[Counter[str], Counter[str], Counter[str]]] = {}
    for (substrate, _), (status, reason) in pixel_states(batch.devices).items():
        done, skipped, other = counts.setdefault(substrate, (Counter(), Counter(), Counter()))
        if status == FINISHED:
            done[status] += 1
        elif status == "skipped":
            skipped[reason_kind(reason)] += 1
        else:
            other[status] += 1
    return [
        SubstrateYield(
            substrate,
            planned=done.total() + skipped.total() + other.total(),
            measured=done[FINISHED],
            skipped=dict(skipped),
            other=dict(other),
        )
        for substrate, (done, skipped, other) in counts.items()
    ]
