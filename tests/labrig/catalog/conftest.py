"""One real Tiled catalogue per test session (per pytest-xdist worker), served by
``labrig catalog``'s own ``Server`` on loopback over a runs directory holding real run
files (made by the procedures on the simulated bench) and the bad files a lab directory
collects: a corrupt file, a truncated run, a link leading out of the directory."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_support import CORRUPT, TRUNCATED  # noqa: E402
from report_runs import shared_run  # noqa: E402


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real run files: ``jvl`` (with spectra) and ``lifetime`` (two channels)."""
    return {name: shared_run(name, tmp_path_factory) for name in ("jvl", "lifetime")}


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, runs: dict[str, Path]):
    """The catalogue server over ``<tmp>/runs`` (a test may start a run writing there)."""
    pytest.importorskip("tiled")
    from labrig.catalog.server import Server

    base = tmp_path_factory.mktemp("catalog")
    directory = base / "runs"
    directory.mkdir()
    for path in runs.values():
        shutil.copy(path, directory / path.name)
    (directory / f"{CORRUPT}.h5").write_bytes(np.random.default_rng(1).bytes(4096))
    whole = runs["jvl"].read_bytes()
    (directory / f"{TRUNCATED}.h5").write_bytes(whole[: len(whole) * 2 // 3])
    outside = base / "outside"
    outside.mkdir()
    shutil.copy(runs["jvl"], outside / "secret.h5")
    (directory / "link.h5").symlink_to(outside / "secret.h5")
    (directory / "notes.txt").write_text("not a run\n")
    server = Server(directory, port=0).start()
    server.outside = outside  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(served):
    from labrig.catalog.publish import connect

    return connect(served.uri, served.key)
