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

import dataclasses
import logging
import threading
from collections.abc import Iterable, Iterator
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


class Registrar:
    """Registers DIR's run files with the catalogue at ``uri`` (as its API key allows)."""

    def __init__(self, uri: str, key: str, directory: Path) -> None:
        from labrig.catalog import tiled_ready

        tiled_ready()
        from tiled.client import from_uri

        self.directory = Path(directory).resolve()
        self.root = from_uri(uri, api_key=key)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def scan(self) -> int:
        """Register every run file in DIR; drop nodes of files no longer there."""
        seen = set()
        for path in run_files(self.directory):
            seen.add(self.register(path))
        for key in set(self.registered()) - seen:
            self.remove(key)
        return len(seen)

    def registered(self) -> Iterable[str]:
        """Keys of the nodes registered from DIR (not the runs benches published)."""
        from tiled.queries import Eq

        return self.root.search(Eq("origin", "directory")).keys()

    def register(self, path: Path) -> str:
        """Register ``path`` or bring its node up to date; returns its key."""
        from tiled.structures.core import StructureFamily
        from tiled.structures.data_source import Asset, DataSource, Management
        from tiled.utils import ensure_uri

        from labrig.catalog.adapter import MIMETYPE

        key = run_key(self.directory, path)
        metadata, adapter = describe(path, str(path.relative_to(self.directory)))
        metadata["origin"] = "directory"
        sources = []
        if adapter is not None:
            sources = [
                DataSource(
                    structure_family=StructureFamily.container,
                    mimetype=MIMETYPE,
                    structure=dataclasses.asdict(adapter.structure()),
                    parameters={},
                    management=Management.external,
                    assets=[
                        Asset(data_uri=ensure_uri(path), is_directory=False, parameter="data_uri")
                    ],
                )
            ]
        with self._lock:
            node = self.root.get(key)
            if node is not None and self._same_shape(node, adapter):
                node.replace_metadata(metadata, drop_revision=True)
                return key
            if node is not None:  # became readable, or its parts changed: made anew
                node.delete(recursive=True)
            self.root.new(
                StructureFamily.container,
                sources,
                key=key,
                metadata=metadata,
                specs=[],
            )
        return key

    @staticmethod
    def _same_shape(node: Any, adapter: Any) -> bool:
        """Whether the registered node has the data source and parts ``adapter`` has."""
        sources = node.data_sources() or []
        if adapter is None:
            return not sources
        if not sources:
            return False
        structure = sources[0].structure
        keys = structure["keys"] if isinstance(structure, dict) else structure.keys
        return list(keys) == list(adapter.structure().keys)

    def remove(self, key: str) -> None:
        with self._lock:
            node = self.root.get(key)
            if node is not None:
                node.delete(recursive=True)

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
