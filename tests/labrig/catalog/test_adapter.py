"""The server's reads of run files: one read per version of a file, and only the newest
version kept, so a growing run's memory does not pile up in the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("tiled")


def test_a_file_is_read_once_per_version_and_only_its_newest_read_is_kept(
    tmp_path: Path, runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from labrig.catalog import adapter

    monkeypatch.setattr(adapter, "_cache", type(adapter._cache)())
    monkeypatch.setattr(adapter, "CACHED_FILES", 3)
    path = tmp_path / "live.h5"
    shutil.copy(runs["jvl"], path)
    first = adapter.cached_load(path)
    assert adapter.cached_load(path) is first and first.run.procedure == "jvl"
    shutil.copy(runs["lifetime"], path)  # the file changed: a new version
    newer = adapter.cached_load(path)
    assert newer is not first and newer.run.procedure == "lifetime"
    assert list(adapter._cache) == [path] and adapter._cache[path][1] is newer
    others = [tmp_path / f"other{i}.h5" for i in range(3)]
    for other in others:
        shutil.copy(runs["jvl"], other)
        adapter.cached_load(other)
    assert list(adapter._cache) == others  # the least recently read file left first


def test_a_file_that_is_gone_is_the_readers_error_and_leaves_the_cache(
    tmp_path: Path, runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from labrig.catalog import adapter
    from labrig.errors import NotARunFileError

    monkeypatch.setattr(adapter, "_cache", type(adapter._cache)())
    path = tmp_path / "gone.h5"
    shutil.copy(runs["jvl"], path)
    adapter.cached_load(path)
    path.unlink()
    with pytest.raises(NotARunFileError, match="no such file"):
        adapter.cached_load(path)
    assert not adapter._cache
