"""Run files of older formats (``v<N>/``, written by ``make_fixtures.py`` with the code
of that format), unpacked into a test's own directory."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def old_file(tmp_path: Path) -> Callable[[int, str], Path]:
    """``old_file(version, name)``: the stored ``v<version>/<name>.h5.gz`` as a file."""

    def unpack(version: int, name: str) -> Path:
        path = tmp_path / f"v{version}" / f"{name}.h5"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.decompress((HERE / f"v{version}" / f"{name}.h5.gz").read_bytes()))
        return path

    return unpack
