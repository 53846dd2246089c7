"""Registering the run files of a served directory with its catalogue, and keeping them
current: a new file is registered when its run starts, its metadata is replaced while it
is written (status, rows, figures as they come) and at its close; a removed file leaves.

A file is registered by reference (``adapter.MIMETYPE``: the server reads its data from
the file when asked), with the metadata of ``labrig.catalog.metadata``.  A file that is
not a readable run (corrupt, truncated to nothing, not labrig's) is listed all the same,
as a node without data whose metadata say ``status: unreadable`` and why; nothing a file
holds can stop the registrar or the server.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labrig.catalog.metadata import run_metadata, unreadable_metadata
from labrig.errors import UserInputError
from labrig.store import load_run

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


def describe(path: Path, name: str) -> tuple[dict[str, Any], Any]:
    """(metadata, adapter) of a run file; (metadata naming the problem, None) for a
    file that is not a readable run."""
    from labrig.catalog.adapter import LabrigRunAdapter

    try:
        loaded = load_run(path)
    except (UserInputError, OSError) as exc:
        return unreadable_metadata(path, str(exc), name), None
    metadata = run_metadata(loaded, name)
    return metadata, LabrigRunAdapter.from_loaded(loaded, metadata)


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
        """Register every run file in DIR (``workers`` reading files at a time); drop
        nodes of files no longer there."""
        from concurrent.futures import ThreadPoolExecutor

        known = set(self.registered())

        def one(path: Path) -> str:
            return self.register(path, new=run_key(self.directory, path) not in known)

        with ThreadPoolExecutor(workers) as pool:
            seen = set(pool.map(one, run_files(self.directory)))
        for key in known - seen:
            self.remove(key)
        return len(seen)

    def registered(self) -> list[str]:
        """Keys of the nodes registered from DIR (not the runs benches published)."""
        from tiled.queries import Eq

        return self._call(self.tree.search(Eq("origin", "directory")).keys_range(0, None))

    def register(self, path: Path, new: bool = False) -> str:
        """Register ``path`` or bring its node up to date; returns its key.  ``new``: the
        caller knows the catalogue has no node for it (no look-up first)."""
        from tiled.server.schemas import Asset, DataSource
        from tiled.structures.core import StructureFamily
        from tiled.structures.data_source import Management
        from tiled.utils import ensure_uri

        from labrig.catalog.adapter import MIMETYPE

        key = run_key(self.directory, path)
        metadata, adapter = describe(path, str(path.relative_to(self.directory)))
        metadata["origin"] = "directory"
        sources, keys = [], None
        if adapter is not None:
            keys = list(adapter.structure().keys)
            sources = [
                DataSource(
                    structure_family=StructureFamily.container,
                    mimetype=MIMETYPE,
                    structure={"keys": keys, "count": len(keys)},
                    parameters={},
                    management=Management.external,
                    assets=[
                        Asset(data_uri=ensure_uri(path), is_directory=False, parameter="data_uri")
                    ],
                )
            ]

        async def apply() -> None:
            node = None if new else await self._node(key)
            if node is not None and await self._parts(node) == keys:
                await node.replace_metadata(metadata, drop_revision=True)
                return
            if node is not None:  # became readable, or its parts changed: made anew
                await node.delete(recursive=True)
            await self.tree.create_node(
                structure_family=StructureFamily.container,
                metadata=metadata,
                key=key,
                specs=[],
                data_sources=sources,
            )

        with self._lock.get(key):
            self._call(apply())
        return key

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
