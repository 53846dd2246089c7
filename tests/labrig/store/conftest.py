"""Run files of older formats (``v<N>/``, written by ``make_fixtures.py`` with the code
of that format), unpacked into a test's own directory."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def resume_lifetime(path: Path, output_dir: Path) -> Any:
    """Resume the two-channel simulated lifetime run of ``path`` to its end (a RunResult)."""
    import yaml

    from labrig.config import parse_config, shipped_config_dir
    from labrig.procedures.lifetime import LifetimeProcedure
    from labrig.runner import run_procedure

    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["lifetime"]["channels"] = 2
    return run_procedure(
        LifetimeProcedure(), parse_config(data), output_dir=output_dir, progress=False, resume=path
    )


@pytest.fixture
def resume() -> Any:
    """``resume(path, output_dir)``: see ``resume_lifetime``."""
    return resume_lifetime
