"""The registrar's scan: files the catalogue lacks are registered in batches (one
transaction each), yet every file ends up a node as ``register`` would make it, an
unreadable one among them listed with its problem; a batch that meets a node made
meanwhile falls back to registering its files one by one."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_support import assert_same_data  # noqa: E402

pytest.importorskip("tiled")


@pytest.fixture
def directory(tmp_path: Path, runs: dict[str, Path]) -> Path:
    """Five files in two folders: J-V-L and lifetime runs twice, one corrupt file."""
    directory = tmp_path / "runs"
    for folder in ("a", "b"):
        (directory / folder).mkdir(parents=True)
        for path in runs.values():
            shutil.copy(path, directory / folder / path.name)
    (directory / "b" / "broken.h5").write_bytes(np.random.default_rng(2).bytes(2048))
    return directory


@pytest.fixture
def server(directory: Path, monkeypatch: pytest.MonkeyPatch):
    """A catalogue over ``directory``, not scanned yet, two files to a batch."""
    from labrig.catalog import register
    from labrig.catalog.server import Server

    monkeypatch.setattr(register, "BATCH", 2)
    server = Server(directory, port=0, watch=False).start(scan=False)
    yield server
    server.stop()


def expected_keys(runs: dict[str, Path]) -> list[str]:
    return sorted([f"{f}--{p.stem}" for f in ("a", "b") for p in runs.values()] + ["b--broken"])


def test_a_batched_scan_registers_every_file_as_register_would(server, runs) -> None:
    from tiled.queries import Eq

    from labrig.catalog.publish import connect
    from labrig.catalog.query import search

    assert server.registrar.scan() == 5
    client = connect(server.uri, server.key)
    assert sorted(client.search(Eq("origin", "directory"))) == expected_keys(runs)
    broken = client["b--broken"].metadata
    assert broken["status"] == "unreadable" and broken["file"] == "b/broken.h5"
    assert "not an HDF5 file labrig can open" in broken["problems"][0]
    assert list(client["b--broken"]) == []
    for folder in ("a", "b"):
        for path in runs.values():
            key = f"{folder}--{path.stem}"
            entry = server.registrar.entry(server.directory / folder / path.name)
            assert dict(client[key].metadata) == entry.metadata
            assert_same_data(client[key], path)
    lifetime = f"--{runs['lifetime'].stem}"
    assert sorted(search(client, "procedure=lifetime")) == [f"a{lifetime}", f"b{lifetime}"]


def test_a_second_scan_updates_the_nodes_and_drops_removed_files(server, runs) -> None:
    from labrig.catalog.publish import connect

    server.registrar.scan()
    (server.directory / "a" / runs["jvl"].name).unlink()
    assert server.registrar.scan() == 4
    client = connect(server.uri, server.key)
    keys = [k for k in expected_keys(runs) if k != f"a--{runs['jvl'].stem}"]
    assert sorted(client) == keys
    assert_same_data(client[f"b--{runs['jvl'].stem}"], runs["jvl"])


def test_a_batch_meeting_a_node_made_meanwhile_registers_its_files_one_by_one(
    server, runs, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The node of ``a/<jvl>`` (made by ``register``) appears after the scan asked what
    the catalogue holds: its batch's transaction is refused whole, and each of its files
    is registered; ``b/<jvl>``, batched, gets the data source ``register`` makes."""
    from labrig.catalog.publish import connect

    registrar = server.registrar
    registrar.register(server.directory / "a" / runs["jvl"].name)
    monkeypatch.setattr(registrar, "registered", dict)
    with caplog.at_level(logging.INFO, logger="labrig.catalog.register"):
        assert registrar.scan() == 5
    assert caplog.text.count("registering one by one") == 1
    client = connect(server.uri, server.key)
    assert sorted(client) == expected_keys(runs)
    made, batched = (client[f"{folder}--{runs['jvl'].stem}"] for folder in ("a", "b"))
    for node in (made, batched):
        assert_same_data(node, runs["jvl"])
    made_source, batched_source = made.data_sources()[0], batched.data_sources()[0]
    assert batched_source.structure == made_source.structure
    assert (batched_source.mimetype, batched_source.management) == (
        made_source.mimetype, made_source.management
    )  # fmt: skip
    assert batched_source.assets[0].data_uri.endswith(f"/b/{runs['jvl'].name}")


def test_a_rescan_reads_only_the_files_changed_since(
    server, runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a restart does: files whose version (mtime, size) the catalogue has are not
    read again; one replaced meanwhile is, and its node shows the new content."""
    from labrig.catalog import register
    from labrig.catalog.publish import connect

    registrar = server.registrar
    registrar.scan()
    read: list[str] = []
    describe = register.describe
    monkeypatch.setattr(
        register, "describe", lambda path, name: (read.append(name), describe(path, name))[1]
    )
    assert registrar.scan() == 5
    assert read == []
    replaced = server.directory / "a" / runs["jvl"].name
    shutil.copy(runs["lifetime"], replaced)
    assert registrar.scan() == 5
    assert read == [f"a/{runs['jvl'].name}"]
    node = connect(server.uri, server.key)[f"a--{runs['jvl'].stem}"]
    assert node.metadata["procedure"] == "lifetime"
    assert node.metadata["file_version"] == register.file_version(replaced)
