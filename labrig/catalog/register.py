"""Registering the run files of a served directory with its catalogue, and keeping them
current: a new file is registered when its run starts, its metadata is replaced while it
is written (status, rows, figures as they come) and at its close; a removed file leaves.

A file is registered by reference (``adapter.MIMETYPE``: the server reads its data from
the file when asked), with the metadata of ``labrig.catalog.metadata``.  A file that is
not a readable run (corrupt, truncated to nothing, not labrig's) is listed all the same,
as a node without data whose metadata say ``status: unreadable`` and why; nothing a file
holds can stop the registrar or the server.

The scan at start registers the files the catalogue does not have yet ``BATCH`` to a
transaction (``Registrar._insert``), while the next batch is being read: Tiled's
``create_node`` is one transaction and a dozen statements per node, which made the
catalogue's side three quarters of a registration.  Files it has already are read again
only when their version (mtime, size: ``file_version``, kept in the node's metadata)
changed while the server was down; those, and every change the watcher sees, go through
``register`` one by one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrig.catalog.metadata import run_metadata, unreadable_metadata
from labrig.catalog.parts import run_parts
from labrig.errors import UserInputError
from labrig.store import load_run
from labrig.store.access import file_version

log = logging.getLogger(__name__)

#: run files by their extension
SUFFIX = ".h5"


def run_key(directory: Path, path: Path) -> str:
    """A file's key in the catalogue: its path in DIR without the extension, folders
    joined by ``--`` (keys hold no ``/``)."""
    return "--".join(path.relative_to(directory).with_suffix("").parts)


def is_run_file(directory: Path, path: Path) -> bool:
    """Run files only: ``*.h5`` in DIR or below, none hidden (the catalogue's own state
    is in ``.labrig-catalog``), never anything reached through a link leading out."""
    try:
        relative = path.relative_to(directory)
        inside = path.resolve().is_relative_to(directory)
    except (ValueError, OSError):
        return False
    return (
        path.suffix == SUFFIX
        and inside
        and not any(part.startswith(".") for part in relative.parts)
    )


def run_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob(f"*{SUFFIX}")):
        if is_run_file(directory, path) and path.is_file():
            yield path


#: new files registered per transaction by a scan
BATCH = 100

#: the metadata key of the file version a node was made from
VERSION = "file_version"


def describe(path: Path, name: str) -> tuple[dict[str, Any], list[str] | None]:
    """(metadata, the node's parts) of a run file; (metadata naming the problem, None)
    for a file that is not a readable run."""
    try:
        loaded = load_run(path)
    except (UserInputError, OSError) as exc:
        return unreadable_metadata(path, str(exc), name), None
    return run_metadata(loaded, name), list(run_parts(loaded))


@dataclass(frozen=True)
class Entry:
    """What the catalogue records for one file: its key, metadata and data source (none
    for an unreadable file), and the parts that source names."""

    key: str
    metadata: dict[str, Any]
    sources: list[Any]
    parts: list[str] | None


class KeyLocks:
    """One lock per key: a file is registered by one thread at a time (the scan's pool
    and the watcher may meet on a file), different files at once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class Registrar:
    """Registers DIR's run files with the server's own catalogue (``tree``), on the
    server's event loop (``loop``): a registration is one database transaction, not an
    HTTP request (and needs no key: the server registers what it serves)."""

    def __init__(self, tree: Any, loop: asyncio.AbstractEventLoop, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        self.tree = tree
        self.loop = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = KeyLocks()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def scan(self, workers: int = 2) -> int:
        """Register every run file in DIR (``workers`` reading files at a time): the
        ones the catalogue lacks in batches, the others brought up to date; drop nodes
        of files no longer there."""
        known = self.registered()
        paths = {run_key(self.directory, path): path for path in run_files(self.directory)}
        new = [path for key, path in paths.items() if key not in known]
        changed = [  # a restart re-reads only what changed while the server was down
            paths[key]
            for key in paths.keys() & known.keys()
            if known[key] != file_version(paths[key])
        ]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(self.register, changed))
            self._register_new(new, pool)
        for key in known - paths.keys():
            self.remove(key)
        return len(paths)

    def _register_new(self, paths: list[Path], pool: ThreadPoolExecutor) -> None:
        """Files the catalogue has no node for, ``BATCH`` to a transaction; the next
        batch is read while the event loop writes this one."""
        if self.tree.context.streaming_cache or self.tree.context.webhook_dispatcher:
            list(pool.map(lambda path: self.register(path, new=True), paths))
            return  # subscribers hear of new nodes from create_node only
        pending: tuple[list[Path], Future[None]] | None = None
        for start in range(0, len(paths), BATCH):
            batch = paths[start : start + BATCH]
            entries = list(pool.map(self.entry, batch))
            if pending is not None:
                self._settle(*pending)
            future = asyncio.run_coroutine_threadsafe(self._insert(entries), self.loop)
            pending = (batch, future)
        if pending is not None:
            self._settle(*pending)

    def _settle(self, batch: list[Path], future: Future[None]) -> None:
        """Wait for a batch's transaction; if a node of it appeared meanwhile (the
        transaction is refused whole), register the batch's files one by one."""
        from sqlalchemy.exc import IntegrityError

        try:
            future.result(timeout=120)
        except IntegrityError:
            log.info("catalogue: a batch met nodes made meanwhile; registering one by one")
            for path in batch:
                self.register(path)

    def registered(self) -> dict[str, list[int] | None]:
        """The nodes registered from DIR (not the runs benches published): key -> the
        version of the file each was made from (None: not recorded)."""
        from tiled.queries import Eq

        async def versions() -> dict[str, list[int] | None]:
            nodes = await self.tree.search(Eq("origin", "directory")).items_range(0, None)
            return {key: node.metadata().get(VERSION) for key, node in nodes}

        return self._call(versions())

    def entry(self, path: Path) -> Entry:
        """What the catalogue records for ``path`` (reads the file once)."""
        from tiled.server.schemas import Asset, DataSource
        from tiled.structures.core import StructureFamily
        from tiled.structures.data_source import Management
        from tiled.utils import ensure_uri

        from labrig.catalog.adapter import MIMETYPE

        version = file_version(path)  # before the read: a write during it shows next time
        metadata, parts = describe(path, str(path.relative_to(self.directory)))
        metadata["origin"] = "directory"
        metadata[VERSION] = version
        sources = []
        if parts is not None:
            sources = [
                DataSource(
                    structure_family=StructureFamily.container,
                    mimetype=MIMETYPE,
                    structure={"keys": parts, "count": len(parts)},
                    parameters={},
                    management=Management.external,
                    assets=[
                        Asset(data_uri=ensure_uri(path), is_directory=False, parameter="data_uri")
                    ],
                )
            ]
        return Entry(run_key(self.directory, path), metadata, sources, parts)

    def register(self, path: Path, new: bool = False) -> str:
        """Register ``path`` or bring its node up to date; returns its key.  ``new``: the
        caller knows the catalogue has no node for it (no look-up first)."""
        from tiled.structures.core import StructureFamily

        entry = self.entry(path)

        async def apply() -> None:
            node = None if new else await self._node(entry.key)
            if node is not None and await self._parts(node) == entry.parts:
                await node.replace_metadata(entry.metadata, drop_revision=True)
                return
            if node is not None:  # became readable, or its parts changed: made anew
                await node.delete(recursive=True)
            await self.tree.create_node(
                structure_family=StructureFamily.container,
                metadata=entry.metadata,
                key=entry.key,
                specs=[],
                data_sources=entry.sources,
            )

        with self._lock.get(entry.key):
            self._call(apply())
        return entry.key

    async def _insert(self, entries: Iterable[Entry]) -> None:
        """New nodes in one transaction: the rows ``create_node`` writes for each (node;
        its data source, structure and asset, and their link), through Tiled's own ORM,
        so its triggers keep the search index and the node tree as for any node."""
        from sqlalchemy import select
        from tiled.catalog import orm
        from tiled.catalog.utils import compute_structure_id
        from tiled.structures.core import StructureFamily

        entries = list(entries)
        structures = {
            compute_structure_id(source.structure): source.structure
            for entry in entries
            for source in entry.sources
        }
        uris = [asset.data_uri for e in entries for source in e.sources for asset in source.assets]
        async with self.tree.context.session() as db:
            if structures:
                await db.execute(
                    self.tree.insert(orm.Structure)
                    .values([{"id": id_, "structure": s} for id_, s in structures.items()])
                    .on_conflict_do_nothing(index_elements=["id"])
                )
            found = await db.execute(select(orm.Asset).where(orm.Asset.data_uri.in_(uris)))
            assets = {asset.data_uri: asset for asset in found.scalars()}
            for entry in entries:
                node = orm.Node(
                    key=entry.key,
                    parent=self.tree.node.id,
                    metadata_=entry.metadata,
                    structure_family=StructureFamily.container,
                    specs=[],
                )
                for source in entry.sources:
                    row = orm.DataSource(
                        structure_family=source.structure_family,
                        mimetype=source.mimetype,
                        management=source.management,
                        parameters=source.parameters,
                        properties=source.properties,
                        structure_id=compute_structure_id(source.structure),
                    )
                    for asset in source.assets:
                        if asset.data_uri not in assets:
                            assets[asset.data_uri] = orm.Asset(
                                data_uri=asset.data_uri,
                                is_directory=asset.is_directory,
                                size=asset.size,
                            )
                        row.asset_associations.append(
                            orm.DataSourceAssetAssociation(
                                asset=assets[asset.data_uri],
                                parameter=asset.parameter,
                                num=asset.num,
                            )
                        )
                    node.data_sources.append(row)
                db.add(node)
            await db.commit()

    async def _node(self, key: str) -> Any:
        from tiled.server.core import NoEntry

        try:
            return await self.tree.lookup_adapter([key])
        except NoEntry:
            return None

    @staticmethod
    async def _parts(node: Any) -> list[str] | None:
        """The parts a registered node's data source names (None: it has none)."""
        sources = await node.data_sources()
        if not sources:
            return None
        structure = sources[0].structure
        return list(structure["keys"] if isinstance(structure, dict) else structure.keys)

    def remove(self, key: str) -> None:
        async def drop() -> None:
            node = await self._node(key)
            if node is not None:
                await node.delete(recursive=True)

        with self._lock.get(key):
            self._call(drop())

    # ------------------------------------------------------------------ watching
    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="catalog-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        import watchfiles

        for changes in watchfiles.watch(
            self.directory,
            watch_filter=lambda _, p: is_run_file(self.directory, Path(p)),
            stop_event=self._stop,
            rust_timeout=500,
            yield_on_timeout=False,
        ):
            for path in sorted({Path(p) for _, p in changes}):
                try:
                    if path.is_file():
                        self.register(path)
                    else:
                        self.remove(run_key(self.directory, path))
                except Exception:  # noqa: BLE001 - one file's trouble never stops the watch
                    log.exception("catalogue: could not register %s", path)
