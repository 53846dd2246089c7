"""Runs sent to a remote catalogue: ``labrig run --publish URI`` (the ``Publisher``
subscriber, as the run goes) and ``labrig catalog sync DIR URI`` (catching up afterwards).

While the run goes, the publisher sends what the run's records carry (rows as they
come, figures, the status): the file is the writer's until it is closed, and a second
opener in the writer's process would share HDF5's handle with it.  Once the file is
closed (``RunEnded``: the writer, first subscriber, has closed it), the publisher sends
the file itself through the store's one reader with the one function ``sync`` uses
(``push``): the remote node then equals the local file, whatever the live sends missed.

**Never in the run's way.**  The publisher is not critical: it returns from every record
at once, sends from its own thread at most every ``interval_s``, and a catalogue that is
down, slow or refusing is logged once per outage and retried in the background with a
growing pause.  After the run, ``finish`` gives the last send a bounded time, and none
at all when the catalogue is unreachable: ``labrig catalog sync`` catches up later.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labrig.catalog.metadata import run_metadata
from labrig.catalog.parts import TEXT, WAVELENGTH, Array, Group, column_metadata, run_parts
from labrig.catalog.register import run_files, run_key
from labrig.errors import UserInputError
from labrig.records import Figures, Record, Row, Rows, RunEnded, RunStarted
from labrig.store import LoadedRun, RunData, load_run, now_iso

log = logging.getLogger(__name__)

#: pauses between attempts while the catalogue cannot be reached, s
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
#: HTTP time-out of one request to the catalogue, s
REQUEST_TIMEOUT_S = 10.0


def connect(uri: str, key: str | None = None) -> Any:
    """A Tiled client of the catalogue at ``uri`` (key: ``LABRIG_CATALOG_API_KEY``)."""
    import os

    from labrig.catalog import tiled_ready
    from labrig.catalog.server import API_KEY_ENV

    tiled_ready()
    import httpx
    from tiled.client import from_uri

    # one plain request first: a catalogue that is down fails it at once, where Tiled's
    # client would retry for most of a minute (the publisher has its own retries)
    httpx.get(uri, timeout=REQUEST_TIMEOUT_S)
    return from_uri(
        uri,
        api_key=key or os.environ.get(API_KEY_ENV),
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S),
    )


@dataclass
class Sent:
    """What the remote node holds of a run: rows per data group, spectra, children."""

    rows: dict[str, int] = field(default_factory=dict)
    spectra: int = 0
    children: set[str] = field(default_factory=set)


def push(root: Any, path: Path, key: str, sent: Sent | None = None) -> Sent:
    """Bring node ``key`` of ``root`` up to the run file ``path``; return what it holds.

    ``sent``: what an earlier push left there; None when that is unknown (first push,
    a failed one, ``sync``): then a node whose metadata equal the file's is left as it
    is, and any other is written anew (never rows appended twice)."""
    loaded = load_run(path)
    metadata = run_metadata(loaded)
    metadata["origin"] = "published"
    node = root.get(key)
    behind = sent is not None and any(
        n > metadata["rows"].get(g, 0) for g, n in sent.rows.items()
    )  # the catalogue has rows the file does not: made anew from the file
    if (sent is None or behind) and node is not None:
        if dict(node.metadata) == metadata:
            return Sent(dict(metadata["rows"]), metadata["spectra"], set(node))
        node.delete(recursive=True, external_only=False)
        node = None
    if node is None:
        node = root.create_container(key=key, metadata=metadata)
        sent = Sent()
    assert sent is not None
    for name, part in run_parts(loaded).items():
        if isinstance(part, Group):
            done = sent.rows.get(name, 0)
            new = Group({k: v[done:] for k, v in part.columns.items()}, part.metadata)
            append_group(node, name, new, done, sent.children)
        else:
            _push_array(node, name, part, 0 if name == WAVELENGTH else sent.spectra, sent)
    node.replace_metadata(metadata, drop_revision=True)
    return Sent(dict(metadata["rows"]), metadata["spectra"], sent.children)


def append_group(node: Any, name: str, group: Group, offset: int, children: set[str]) -> None:
    """``group``'s columns (the rows from row ``offset`` on) onto the data group's
    container of column arrays; the container is made when ``name`` is not yet among
    ``children``."""
    if name not in children:
        container = node.create_container(key=name, metadata=group.metadata)
        units, long_names = group.metadata["units"], group.metadata["long_names"]
        for column, values in group.columns.items():
            container.write_array(
                values,
                key=column,
                dims=["row"],
                metadata=column_metadata(units[column], long_names[column]),
            )
        children.add(name)
    elif group.rows:
        container = node[name]
        for column, values in group.columns.items():
            container[column].patch(values, offset=(offset,), extend=True)


def _push_array(node: Any, name: str, part: Array, done: int, sent: Sent) -> None:
    """An array growing along its first axis (spectra; the wavelengths never grow)."""
    if name not in sent.children:
        node.write_array(part.values, key=name, dims=list(part.dims), metadata=part.metadata)
        sent.children.add(name)
    elif len(part.values) > done:
        node[name].patch(part.values[done:], offset=(done,), extend=True)


#: rows a publisher keeps for a catalogue it cannot reach; past that the live view
#: waits for the file's own send at the end of the run
MAX_PENDING_ROWS = 200_000


class LiveRun:
    """What a running run's records have said so far, for the catalogue: the metadata
    (``run_metadata`` of a ``RunData`` mirror) and the rows not yet sent."""

    def __init__(self, started: RunStarted) -> None:
        from labrig import __version__

        self.key = Path(started.path).stem
        self.columns = {c.name: c for c in started.columns}
        self.run = RunData(
            path=Path(started.path), procedure=started.procedure, status="running",
            start_time=now_iso(), end_time=None, sample=started.sample, operator="",
            simulated=started.simulated, labrig_version=__version__,
            parameters=dict(started.parameters), columns={}, analysis={}, spectra=None,
            log=[], instruments={}, config_text="", groups=list(started.groups),
            resolved_config={"name": (started.config_name, "")},
        )  # fmt: skip
        self.pending: dict[str, list[dict[str, Any]]] = {g: [] for g in started.groups}
        self.sent_rows: dict[str, int] = {g: 0 for g in started.groups}
        self.children: set[str] = set()
        self.lost = False  # rows dropped while the catalogue was away

    def take(self, record: Record) -> None:
        if isinstance(record, Row):
            self._rows(record.group, [dict(record.values)])
        elif isinstance(record, Rows):
            cols = {k: list(v) for k, v in record.columns.items()}
            self._rows(
                record.group,
                [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)],
            )
        elif isinstance(record, Figures):
            self.run.analysis.setdefault(record.group, {}).update(record.figures)
        elif isinstance(record, RunEnded):
            self.run.status = record.status

    def _rows(self, group: str | None, rows: list[dict[str, Any]]) -> None:
        if self.lost:
            return
        pending = self.pending.setdefault(group or "data", [])
        pending.extend(rows)
        if sum(len(p) for p in self.pending.values()) > MAX_PENDING_ROWS:
            self.lost = True
            for p in self.pending.values():
                p.clear()

    def sent(self) -> Sent | None:
        """What the live sends left in the catalogue (None: unknown, rows were dropped)."""
        return None if self.lost else Sent(dict(self.sent_rows), 0, set(self.children))

    def metadata(self) -> dict[str, Any]:
        metadata = run_metadata(LoadedRun(self.run))
        metadata["rows"] = dict(self.sent_rows)
        metadata["origin"] = "published"
        return metadata

    def send(self, root: Any) -> None:
        """Create the node if need be, append the pending rows, replace the metadata."""
        node = root.get(self.key)
        if node is None:
            node = root.create_container(key=self.key, metadata=self.metadata())
        for name, rows in self.pending.items():
            if not rows:
                continue
            columns = [c for c in self.columns.values() if c.name in rows[0]]
            group = Group(
                {c.name: np.asarray([row.get(c.name) for row in rows], _dtype(c)) for c in columns},
                {
                    "units": {c.name: c.units for c in columns},
                    "long_names": {c.name: c.long_name for c in columns},
                },
            )
            done = self.sent_rows.get(name, 0)
            append_group(node, name, group, done, self.children)
            self.sent_rows[name] = done + len(rows)
            rows.clear()
        node.replace_metadata(self.metadata(), drop_revision=True)


def _dtype(column: Any) -> Any:
    return TEXT if column.levels or column.dtype == "str" else np.dtype(column.dtype)


class Publisher:
    """A run subscriber sending the run to the catalogue at ``uri`` as it goes."""

    critical = False
    kinds = (RunStarted, Row, Rows, Figures, RunEnded)

    def __init__(self, uri: str, key: str | None = None, interval_s: float = 2.0) -> None:
        self.uri = uri
        self.key = key
        self.interval_s = interval_s
        self.path: Path | None = None
        #: the file's own send after its close reached the catalogue
        self.published = False
        #: why the catalogue could not be reached (None: it could, or was not tried)
        self.problem: str | None = None
        self._records: collections.deque[Record] = collections.deque()
        self._root: Any = None
        self._news = threading.Event()
        self._ended = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, record: Record) -> None:
        """Hand the record to the publisher's thread; never waits on the catalogue."""
        if isinstance(record, RunStarted):
            self.path = Path(record.path)
            self._thread = threading.Thread(target=self._run, name="catalog-publish", daemon=True)
            self._thread.start()
        self._records.append(record)
        if isinstance(record, RunEnded):
            self._ended.set()
        self._news.set()

    def finish(self, timeout_s: float = 30.0) -> bool:
        """After the run: wait (at most ``timeout_s``, and not at all while the
        catalogue is unreachable) for the file's send; True when the catalogue has it all."""
        self._closing.set()
        self._news.set()
        if self._thread is not None:
            self._thread.join(0.0 if self.problem else timeout_s)
        return self.published

    def _run(self) -> None:
        assert self.path is not None
        live: LiveRun | None = None
        failures = 0
        while True:
            self._news.wait()
            self._news.clear()
            while self._records:
                record = self._records.popleft()
                if isinstance(record, RunStarted):
                    live = LiveRun(record)
                elif live is not None:
                    live.take(record)
            final = self._ended.is_set() and not self._records
            try:
                if self._root is None:
                    self._root = connect(self.uri, self.key)
                if final:  # the writer has closed the file: send the file itself
                    push(self._root, self.path, self.path.stem, live.sent() if live else None)
                elif live is not None:
                    live.send(self._root)
            except Exception as exc:  # noqa: BLE001 - nothing the catalogue does reaches the run
                self._root = None if _unreachable(exc) else self._root
                if self.problem is None:
                    log.warning(
                        "catalogue %s: could not publish %s (%s); retrying in the background",
                        self.uri, self.path.name, _one_line(exc),
                    )  # fmt: skip
                self.problem = _one_line(exc)
                if self._closing.is_set():
                    return
                self._closing.wait(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
                failures += 1
                self._news.set()
                continue
            if failures:
                log.info("catalogue %s: reached again, %s caught up", self.uri, self.path.name)
            failures, self.problem = 0, None
            if final:
                self.published = True
                return
            self._closing.wait(self.interval_s)  # at most one send per interval


def _unreachable(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (httpx.TransportError, OSError))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@dataclass(frozen=True)
class Synced:
    path: Path
    key: str
    #: "sent", "unchanged" or why it was not sent
    outcome: str


def sync(directory: Path, uri: str, key: str | None = None) -> Iterator[Synced]:
    """Send every run file in ``directory`` the catalogue at ``uri`` lacks or holds
    differently; one ``Synced`` per file, as it is done."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise UserInputError(f"{directory}: not a directory")
    root = connect(uri, key)
    for path in run_files(directory):
        name = run_key(directory, path)
        try:
            node = root.get(name)
            before = None if node is None else dict(node.metadata)
            push(root, path, name)
            after = dict(root[name].metadata)
            yield Synced(path, name, "unchanged" if before == after else "sent")
        except UserInputError as exc:  # not a readable run: nothing to send
            yield Synced(path, name, f"skipped: {exc}")
