"""The Tiled adapter for labrig run files: a run file in the served directory is one
container node whose children are the run's parts (``labrig.catalog.parts``: data groups
of column arrays with units, spectra as a 2-D array), read through the store's one reader (``load_run``), so a
live, crashed or truncated file is served as far as it is readable.

The catalogue database holds each file's metadata (searchable) and a reference to the
file (``MIMETYPE``); the data are read from the file when asked for, so a growing file
serves its newest rows without being registered again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from labrig.catalog import tiled_ready
from labrig.catalog.metadata import run_metadata
from labrig.catalog.parts import Array, Group, column_metadata, run_parts
from labrig.store import LoadedRun, load_run
from labrig.store.access import file_version

tiled_ready()

from tiled.adapters.array import ArrayAdapter  # noqa: E402
from tiled.adapters.mapping import MapAdapter  # noqa: E402
from tiled.utils import path_from_uri  # noqa: E402

#: the media type the catalogue records for a labrig run file
MIMETYPE = "application/x-labrig-run"


def part_adapter(part: Group | Array) -> MapAdapter | ArrayAdapter:
    if isinstance(part, Group):
        units, long_names = part.metadata["units"], part.metadata["long_names"]
        columns = {
            name: ArrayAdapter.from_array(
                values, dims=("row",), metadata=column_metadata(units[name], long_names[name])
            )
            for name, values in part.columns.items()
        }
        return MapAdapter(columns, metadata=part.metadata)
    return ArrayAdapter.from_array(part.values, dims=part.dims, metadata=part.metadata)


#: files whose newest read is kept
CACHED_FILES = 16

_cache: OrderedDict[Path, tuple[list[int], LoadedRun]] = OrderedDict()
_cache_lock = threading.Lock()


def cached_load(path: Path) -> LoadedRun:
    """One read per version of a file, and only the newest version kept: a live file's
    version changes at each flush, and a cache keyed by version would hold the last
    ``CACHED_FILES`` versions of a growing run (its memory growing with the run)."""
    version = file_version(path)
    if version is None:  # gone: its last read goes too, and the reader says why
        with _cache_lock:
            _cache.pop(path, None)
        return load_run(path)
    with _cache_lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == version:
            _cache.move_to_end(path)
            return hit[1]
    loaded = load_run(path)
    with _cache_lock:
        _cache[path] = (version, loaded)
        _cache.move_to_end(path)
        while len(_cache) > CACHED_FILES:
            _cache.popitem(last=False)
    return loaded


class LabrigRunAdapter(MapAdapter):
    """One run file as a container of its parts."""

    @classmethod
    def from_loaded(
        cls, loaded: LoadedRun, metadata: dict[str, Any] | None = None, specs: Any = None
    ) -> LabrigRunAdapter:
        parts = {key: part_adapter(part) for key, part in run_parts(loaded).items()}
        return cls(
            parts,
            metadata=run_metadata(loaded) if metadata is None else metadata,
            specs=specs,
        )

    @classmethod
    def from_catalog(cls, data_source: Any, node: Any, /, **kwargs: Any) -> LabrigRunAdapter:
        """The catalogue's entry point: the node's stored metadata, the file's data now."""
        path = path_from_uri(data_source.assets[0].data_uri)
        return cls.from_loaded(cached_load(path), metadata=node.metadata_, specs=node.specs)

    @classmethod
    def from_uris(cls, data_uri: str, **kwargs: Any) -> LabrigRunAdapter:
        return cls.from_loaded(cached_load(path_from_uri(data_uri)))
