"""The subscribers every run has: the HDF5 writer, the progress display and Python
logging (``standard_subscribers`` builds the set a command line uses, in one place).

Each is a peer on the run's dispatcher (``labrig.dispatch``): it receives every record
(``labrig.records``) and acts on the kinds it cares about.  Only the writer is
*critical*: a run whose file can take no more rows must stop and end ``failed``; a
broken display or log must never stop a run.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from labrig.records import (
    BenchOpened,
    Event,
    Figures,
    Progress,
    Record,
    Row,
    Rows,
    RunEnded,
    RunStarted,
    Spectrum,
)
from labrig.terminal import say

if TYPE_CHECKING:
    from labrig.dispatch import Subscriber
    from labrig.store import RunStore


class HDF5Writer:
    """Writes a run's records into its open ``RunStore`` and closes it at ``RunEnded``."""

    critical = True
    #: what it writes (a ``Progress`` a step, or ``RunStarted``, never reaches it)
    kinds = (Row, Rows, Spectrum, Figures, Event, BenchOpened, RunEnded)

    def __init__(self, store: RunStore) -> None:
        self.store = store

    @property
    def failure(self) -> str | None:
        """Why the file takes no more rows (disk full, file-size limit), or None."""
        return self.store.write_error

    def __call__(self, record: Record) -> None:
        store = self.store
        if isinstance(record, Row):
            store.append_row(record.values, record.group)
        elif isinstance(record, Rows):
            store.append_rows(record.columns, record.group)
        elif isinstance(record, Spectrum):
            store.append_spectrum(record.step, record.spectrum, record.dark)
        elif isinstance(record, Figures):
            store.set_analysis(record.figures, record.group)
        elif isinstance(record, Event):
            store.log(record.kind, record.message, record.level)
        elif isinstance(record, BenchOpened):
            store.record_instruments(dict(record.identities))
            if record.spectrum_pixels is not None:
                store.prepare_spectra(record.spectrum_pixels)
        elif isinstance(record, RunEnded):
            store.close(record.status, record.reason)
        # RunStarted: the file was created with it; Progress: nothing to keep (``kinds``)


class ProgressDisplay:
    """Progress of a run on stderr: a tqdm bar on a terminal; plain lines otherwise (a
    log file, a pipe), at each tenth of the run and otherwise at most every
    ``line_interval(elapsed)``; nothing at all when ``mode`` is False (``--no-progress``).
    Times are h:mm:ss (tqdm's own formatting), so a 30-hour lifetime run reads as such."""

    def __init__(self, name: str, mode: bool | None) -> None:
        """``mode``: True bar, False silent, None bar on a terminal else lines."""
        from tqdm import tqdm

        self.name = name
        self._format = tqdm.format_interval
        self._bar = None
        self._lines = mode is None and not sys.stderr.isatty()
        self._start = time.monotonic()
        self._last_line = (-100.0, 0.0)
        if mode or (mode is None and sys.stderr.isatty()):
            self._bar = tqdm(
                total=100.0,
                desc=name,
                unit="%",
                file=sys.stderr,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
            )

    @staticmethod
    def line_interval(elapsed: float) -> float:
        """Seconds between plain progress lines: 10 s early on, then a tenth of the time
        run so far, at most 15 min (a day-long run logs ~100 lines, not 8640)."""
        return min(max(10.0, elapsed / 10), 900.0)

    def rename(self, name: str) -> None:
        """Say what is being done now (a batch: which device), on the bar and the lines."""
        self.name = name
        if self._bar is not None:
            self._bar.set_description(name, refresh=True)

    def update(self, percent: float) -> None:
        percent = min(max(float(percent), 0.0), 100.0)
        if self._bar is not None:
            self._bar.update(percent - self._bar.n)
            return
        if not self._lines:
            return
        now = time.monotonic()
        last_pct, last_t = self._last_line
        elapsed = now - self._start
        new_decile = int(percent // 10) > int(last_pct // 10)
        if new_decile or (now - last_t >= self.line_interval(elapsed) and percent > last_pct):
            say(self.line(percent, elapsed))
            self._last_line = (percent, now)

    def line(self, percent: float, elapsed: float) -> str:
        eta = self._format(elapsed * (100 - percent) / percent) if percent > 0 else "unknown"
        return (
            f"labrig: {self.name}: {percent:.0f}% done, {self._format(elapsed)} elapsed, ETA {eta}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class ProgressSubscriber:
    """A ``ProgressDisplay`` for each run: opened at ``RunStarted`` (named after the
    procedure), moved by ``Progress``, closed at ``RunEnded``."""

    kinds = (RunStarted, Progress, RunEnded)

    def __init__(self, mode: bool | None) -> None:
        self.mode = mode
        self.display: ProgressDisplay | None = None

    def __call__(self, record: Record) -> None:
        if isinstance(record, RunStarted):
            self.display = ProgressDisplay(record.procedure, self.mode)
        elif isinstance(record, Progress) and self.display is not None:
            self.display.update(record.percent)
        elif isinstance(record, RunEnded) and self.display is not None:
            self.display.close()
            self.display = None


class LoggingSubscriber:
    """A procedure's events into Python logging, as ``labrig.procedures.NAME``."""

    kinds = (RunStarted, Event)

    def __init__(self) -> None:
        self.logger = logging.getLogger("labrig.procedures")

    def __call__(self, record: Record) -> None:
        if isinstance(record, RunStarted):
            self.logger = logging.getLogger(f"labrig.procedures.{record.procedure}")
        elif isinstance(record, Event) and not record.logged:
            self.logger.log(record.level, "%s: %s", record.kind, record.message)


def standard_subscribers(progress: bool | None = None) -> list[Subscriber]:
    """What a command-line run shows besides its file: progress (``progress``: True
    bar, False nothing, None bar on a terminal else lines) and the log.  With nothing
    to show, no progress subscriber (a J-V-L step would call it for nothing)."""
    if progress is False:
        return [LoggingSubscriber()]
    return [ProgressSubscriber(progress), LoggingSubscriber()]


def collect_figures(into: dict[str, tuple[Any, str]]) -> Subscriber:
    """A subscriber gathering every ``Figures`` record as ``{"[group/]name": (value,
    units)}`` (the run's headline figures)."""

    def collect(record: Record) -> None:
        if isinstance(record, Figures):
            prefix = "" if record.group is None else f"{record.group}/"
            into.update({prefix + k: tuple(v) for k, v in record.figures.items()})

    collect.kinds = (Figures,)  # type: ignore[attr-defined]
    return collect
