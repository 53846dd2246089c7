"""``labrig catalog serve``: a runs directory served by a real Tiled server on loopback,
read back through Tiled's own client and over plain HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog_support import CORRUPT, TRUNCATED, assert_same_data, poll  # noqa: E402

from labrig.store import load_run  # noqa: E402

pytest.importorskip("tiled")


def test_a_run_is_served_as_its_groups_and_arrays_with_units(served, client, runs) -> None:
    local = load_run(runs["jvl"])
    node = client[runs["jvl"].stem]
    assert list(node) == ["data", "spectra", "wavelength_nm", "spectrum_step"]
    assert_same_data(node, runs["jvl"])
    data = node["data"]
    assert data["voltage"].metadata["units"] == "V"
    assert data["current_density"].metadata == {
        "units": "mA/cm^2",
        "long_name": local.run.columns["data"]["current_density"][2],
    }
    assert node["spectra"].dims == ("step", "pixel")
    assert node["spectra"].shape == local.run.spectra.counts.shape


def test_a_runs_metadata_names_what_it_is_and_every_figure_with_its_unit(client, runs) -> None:
    local = load_run(runs["jvl"])
    md = client[runs["jvl"].stem].metadata
    assert (md["procedure"], md["status"], md["sample"]) == ("jvl", "finished", local.run.sample)
    assert md["bench"] == "simulated bench" and md["device_kind"] == "led"
    assert md["start_time"] == local.run.start_time and md["end_time"] == local.run.end_time
    assert md["instruments"]["smu"]["model"] == "2400"
    assert md["rows"] == {"data": local.rows()} and md["origin"] == "directory"
    for name, (value, unit) in local.figures().items():
        assert md["units"][name] == unit
        assert md["figures"][name] == (None if not np.isfinite(value) else pytest.approx(value))
    assert md["units"]["peak_eqe"] == "%"


def test_each_lifetime_channel_is_a_table_with_its_own_figures(client, runs) -> None:
    local = load_run(runs["lifetime"])
    node = client[runs["lifetime"].stem]
    assert list(node) == local.run.groups == ["data", "channel_01", "channel_02"]
    assert_same_data(node, runs["lifetime"])
    for channel in ("channel_01", "channel_02"):
        t50, unit = local.figures(channel)["T50"]
        assert node.metadata["figures"][channel]["T50"] == pytest.approx(t50)
        assert node.metadata["units"][channel]["T50"] == unit


def test_a_corrupt_or_truncated_file_is_listed_with_its_problem(served, client) -> None:
    corrupt = client[CORRUPT].metadata
    assert corrupt["status"] == "unreadable"
    assert "not an HDF5 file labrig can open" in corrupt["problems"][0]
    assert list(client[CORRUPT]) == []
    truncated = client[TRUNCATED].metadata
    assert truncated["problems"][0].startswith(("file truncated", "file damaged")) or (
        truncated["status"] == "unreadable"
    )
    assert httpx.get(served.uri + "/", headers=auth(served)).status_code == 200  # still up


def test_only_run_files_inside_the_directory_are_listed(client, runs) -> None:
    """Not notes.txt, not link.h5 (a link to a run outside the directory)."""
    from tiled.queries import Eq

    listed = set(client.search(Eq("origin", "directory")))
    placed = {CORRUPT, TRUNCATED, runs["jvl"].stem, runs["lifetime"].stem}
    assert placed <= listed and not {"link", "notes", "secret"} & listed
    # anything else is a run another test of this session wrote into a subdirectory
    assert all("--" in key for key in listed - placed), listed - placed


def auth(served) -> dict[str, str]:
    return {"Authorization": f"Apikey {served.key}"}


def test_two_catalogues_in_one_process_each_keep_their_own_key(
    served, runs, tmp_path, monkeypatch
) -> None:
    """Tiled keeps one settings object per process; a second server must not take over
    the first one's key (as it did, and a test session's order decided who got 401)."""
    from labrig.catalog.server import API_KEY_ENV, Server

    monkeypatch.setenv(API_KEY_ENV, "second1key")
    second = Server(tmp_path, port=0, watch=False).start(scan=False)
    try:
        first_url = f"{served.uri}/metadata/{runs['jvl'].stem}"
        second_url = f"{second.uri}/metadata/"
        assert httpx.get(first_url, headers=auth(served)).status_code == 200
        assert httpx.get(second_url, headers=auth(second)).status_code == 200
        assert httpx.get(first_url, headers=auth(second)).status_code == 401
        assert httpx.get(second_url, headers=auth(served)).status_code == 401
    finally:
        second.stop()


def test_reads_and_writes_without_the_key_are_refused_401(served, runs) -> None:
    url = served.uri
    assert httpx.get(f"{url}/metadata/{runs['jvl'].stem}").status_code == 401
    body = {"data": {"type": "node", "attributes": {"structure_family": "container",
            "metadata": {}, "specs": [], "data_sources": []}}}  # fmt: skip
    assert httpx.post(f"{url}/metadata/", json=body).status_code == 401
    assert httpx.post(f"{url}/metadata/", json=body, headers=auth(served)).status_code != 401
    wrong = {"Authorization": "Apikey " + "0" * 64}
    assert httpx.delete(f"{url}/metadata/{runs['jvl'].stem}", headers=wrong).status_code == 401
    assert httpx.get(f"{url}/metadata/{runs['jvl'].stem}", headers=auth(served)).status_code == 200


def test_public_reads_still_need_the_key_for_writes(served, runs) -> None:
    from starlette.testclient import TestClient

    from labrig.catalog.server import build

    app = build(served.directory, key=served.key, public=True)
    with TestClient(app) as web:
        assert web.get(f"/api/v1/metadata/{runs['jvl'].stem}").status_code == 200
        assert web.delete(f"/api/v1/metadata/{runs['jvl'].stem}").status_code == 401
        assert web.put(f"/api/v1/metadata/{runs['jvl'].stem}", json={}).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/metadata/..%2F..%2F..%2Fetc%2Fpasswd",
        "/metadata/../../../etc/passwd",
        "/array/full/..%2Foutside%2Fsecret",
        "/array/full/link/data/voltage",
        "/metadata/%2E%2E/%2E%2E/etc/passwd",
    ],
)
def test_path_traversal_is_refused(served, path) -> None:
    reply = httpx.get(served.uri + path, headers=auth(served))
    assert reply.status_code in (400, 404), reply.text
    assert "root:" not in reply.text


def test_a_node_pointing_outside_the_directory_is_never_read(served, client) -> None:
    """Even a key holder registering a file outside DIR gets nothing of it."""
    from tiled.structures.core import StructureFamily
    from tiled.structures.data_source import Asset, DataSource, Management
    from tiled.utils import ensure_uri

    from labrig.catalog.adapter import MIMETYPE

    secret = served.outside / "secret.h5"
    source = DataSource(
        structure_family=StructureFamily.container,
        mimetype=MIMETYPE,
        structure={"keys": ["data"], "count": 1},  # as a run file's node
        parameters={},
        management=Management.external,
        assets=[Asset(data_uri=ensure_uri(secret), is_directory=False, parameter="data_uri")],
    )
    client.new(StructureFamily.container, [source], key="escape", metadata={}, specs=[])
    try:
        reply = httpx.get(f"{served.uri}/array/full/escape/data/voltage", headers=auth(served))
        assert reply.status_code == 500  # Tiled: "Refusing to serve ... outside"
        assert "voltage" not in reply.text
    finally:
        client["escape"].delete()


def test_a_growing_run_appears_updates_and_closes_without_a_restart(served, client) -> None:
    """A writer in another process, moved step by step: the catalogue follows each step
    (registered at creation, rows while running, status and figures at the close)."""
    import subprocess

    from labrig.catalog.register import run_key

    out = served.directory / "bench2"
    writer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("stepped_writer.py")), str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def step(command: str) -> None:
        writer.stdin.write(command + "\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "ok"

    try:
        path = Path(writer.stdout.readline().strip())
        key = run_key(served.directory, path)
        assert key == f"bench2--{path.stem}"
        first = poll("the run registered", lambda: key in client and client[key].metadata)
        assert (first["procedure"], first["status"], first["bench"]) == (
            "stepped", "running", "stepped bench"
        )  # fmt: skip
        step("rows 7")
        poll("7 rows", lambda: client[key].metadata["rows"] == {"data": 7})
        step("rows 5")
        step("figure peak_eqe 21.5")
        md = poll("12 rows", lambda: (md := client[key].metadata)["rows"] == {"data": 12} and md)
        assert md["status"] == "running"
        step("close")
        done = poll("the close", lambda: (md := client[key].metadata)["status"] == "finished"
                    and md)  # fmt: skip
        assert done["figures"] == {"peak_eqe": 21.5} and done["units"] == {"peak_eqe": "%"}
        assert_same_data(client[key], path)
        assert list(search_keys(client, "procedure=stepped peak_eqe>21")) == [key]
    finally:
        writer.kill()
        writer.wait()


def search_keys(client, text: str):
    from labrig.catalog.query import search

    return search(client, text)
