"""The few lines ``labrig run`` prints after a run: its headline figures, not all of them.

The run's own figures shown are those its registry entry names as its headline
(``labrig.registry.Measurement.headline``), or where none are named all but fit details
and uncertainty bounds; an uncertainty is shown as ``± err`` next to its value, flags as
yes/no.  Figures of data groups (lifetime channels) are summarised across the groups --
how many ended which way, and the median and spread of T50 -- instead of one line per
channel.  Everything is in the file (``labrig inspect``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np

#: most run-level figures shown
MAX_LINES = 30
#: run-level figures left to the file when a measurement names no headline keys: fit
#: internals and the bounds of a band (a registered measurement picks its own, as jvl
#: leaves its dark noise and light threshold to the file)
_DETAIL = ("fit_", "_aicc", "_low", "_high")


def fmt(value: Any) -> str:
    """A figure as a reader wants it: yes/no for a flag, 4 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "fiub":
        return ", ".join(fmt(v) for v in value.tolist())  # one figure per drive level
    return str(value)


def _with_units(value: Any, units: str) -> str:
    return f"{value} {units}".rstrip()


def shown_names(figures: Mapping[str, tuple[Any, str]], keys: Sequence[str]) -> list[str]:
    """The names of the figures to show: those matching ``keys`` (fnmatch patterns, in
    their order), or with no keys every figure but the details."""
    if keys:
        return list(dict.fromkeys(n for key in keys for n in figures if fnmatchcase(n, key)))
    return [
        name
        for name in figures
        if not name.endswith("_err") and not any(part in name for part in _DETAIL)
    ]


def _run_figures(figures: Mapping[str, tuple[Any, str]], names: Sequence[str]) -> list[str]:
    lines = []
    for name in names:
        value, units = figures[name]
        err = figures.get(f"{name}_err")
        text = fmt(value)
        if err is not None and isinstance(value, (float, int)) and not isinstance(value, bool):
            text = f"{text} ± {fmt(err[0])}"
        lines.append(f"  {name}: {_with_units(text, units)}")
    return lines


def _group_summary(groups: Mapping[str, Mapping[str, tuple[Any, str]]]) -> list[str]:
    """How the groups (channels) ended, counted, and the median and spread of T50 (from
    the data where reached, else the best fit's extrapolation)."""
    lines = []
    kinds = Counter(str(f["end_kind"][0]) or "ended" for f in groups.values() if "end_kind" in f)
    if kinds:
        counted = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        lines.append(f"  channels: {len(groups)} ({counted})")
    t50, extrapolated, units = [], 0, "h"
    for f in groups.values():
        reached = f.get("T50", (math.nan, ""))[0]
        if isinstance(reached, float) and math.isfinite(reached):
            t50.append(reached)
            units = f["T50"][1]
        elif "T50_best" in f and math.isfinite(f["T50_best"][0]):
            t50.append(f["T50_best"][0])
            extrapolated += 1
    if t50:
        values = np.asarray(t50)
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        extra = f"; {extrapolated} extrapolated" if extrapolated else ""
        lines.append(
            f"  T50: median {fmt(median)} {units}, interquartile {fmt(q1)}–{fmt(q3)} {units}, "
            f"range {fmt(values.min())}–{fmt(values.max())} {units} "
            f"({len(values)} channels{extra})"
        )
    return lines


def headline(
    analysis: Mapping[str, tuple[Any, str]], path: Path | str, keys: Sequence[str] = ()
) -> list[str]:
    """The lines to print for a run's ``analysis`` (``{name or "group/name": (value,
    units)}``, as the runner collects them); ``keys``: the run figures to show (fnmatch
    patterns; empty: all but the details)."""
    own: dict[str, tuple[Any, str]] = {}
    groups: dict[str, dict[str, tuple[Any, str]]] = {}
    for name, figure in analysis.items():
        group, _, figure_name = name.rpartition("/")
        if group:
            groups.setdefault(group, {})[figure_name] = figure
        else:
            own[name] = figure
    names = shown_names(own, keys)
    lines = _group_summary(groups) + _run_figures(own, names)
    shown = lines[:MAX_LINES]
    if len(lines) > MAX_LINES or groups or (keys and len(names) < len(own)):
        shown.append(f"  all figures{' per channel' if groups else ''}: labrig inspect {path}")
    return shown
