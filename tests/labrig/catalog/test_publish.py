"""``labrig run --publish``: two simulated benches publish to one real catalogue; a
catalogue that is down never stops a run, and ``labrig catalog sync`` catches up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_support import assert_same_data  # noqa: E402

from labrig.store import load_run  # noqa: E402

pytest.importorskip("tiled")


def labrig(*args: str, key: str | None = None, timeout: float = 180) -> subprocess.Popen:
    env = {**os.environ, "LABRIG_CATALOG_API_KEY": key or ""}
    return subprocess.Popen(
        [sys.executable, "-m", "labrig", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_benches_publish_to_one_catalogue_and_are_found(served, client, tmp_path) -> None:
    benches = {
        "led": labrig(
            "run", "jvl", "--simulate", "--sample", "NSA-red-1", "-o", str(tmp_path / "a"),
            "--no-progress", "--set", "step_voltage=0.25", "--publish", served.uri,
            "--publish-wait", "170", key=served.key,
        ),
        "solar": labrig(
            "run", "solar-jv", "--simulate", "--sample", "PbS-cell-1", "-o", str(tmp_path / "b"),
            "--no-progress", "--set", "step_voltage=0.05", "--publish", served.uri,
            "--publish-wait", "170", key=served.key,
        ),
    }  # fmt: skip
    paths = {}
    for name, proc in benches.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "catalogue" not in err  # published in full: nothing to catch up
        paths[name] = Path(out.splitlines()[0].split(": ", 1)[1])
    led, solar = paths["led"].stem, paths["solar"].stem
    from labrig.catalog.query import search

    assert list(search(client, "procedure=jvl peak_eqe>20 sample~nsa")) == [led]
    assert list(search(client, "device_kind=solar origin=published")) == [solar]
    assert list(search(client, "procedure=jvl peak_eqe>99")) == []
    md = client[solar].metadata
    assert md["status"] == "finished" and md["bench"] and md["units"]["reverse_pce"] == "%"
    assert md["figures"]["reverse_pce"] == pytest.approx(
        load_run(paths["solar"]).figures()["reverse_pce"][0]
    )
    assert_same_data(client[led], paths["led"])
    assert_same_data(client[solar], paths["solar"])

    found = labrig("catalog", "search", "procedure=jvl peak_eqe>20 sample~NSA", "--uri",
                   served.uri, key=served.key)  # fmt: skip
    out, err = found.communicate(timeout=120)
    assert found.returncode == 0, err
    assert out.startswith(f"{led}  jvl  NSA-red-1  finished  ") and "peak_eqe=" in out
    assert err.strip().splitlines()[-1] == "1 run(s)"


def test_a_bad_search_is_one_line_and_exit_2(served) -> None:
    found = labrig("catalog", "search", "peak_eqe>>20", "--uri", served.uri, key=served.key)
    out, err = found.communicate(timeout=120)
    assert found.returncode == 2 and out == ""
    assert err.splitlines() == [
        "labrig: error: search term 'peak_eqe>>20': expected NAME OP VALUE with OP one of "
        "!= >= <= = > < ~, e.g. 'procedure=jvl peak_eqe>20'"
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_down_catalogue_never_stops_the_run_and_sync_catches_up(
    served, client, tmp_path, monkeypatch
) -> None:
    from labrig import registry
    from labrig.catalog import publish
    from labrig.config import load_config
    from labrig.runner import run_procedure

    monkeypatch.setattr(publish, "BACKOFF_S", (0.05,))
    down = f"http://127.0.0.1:{closed_port()}/api/v1"
    publisher = publish.Publisher(down, key=served.key, interval_s=0.05)
    cls = registry.measurement("jvl").procedure_class()
    proc = cls()
    proc.set_parameters({"step_voltage": 0.5, "spectra": "none"})
    result = run_procedure(proc, load_config("sim"), output_dir=tmp_path, subscribers=[publisher])
    assert result.status == "finished"
    started = time.monotonic()
    assert publisher.finish() is False
    assert time.monotonic() - started < 5.0  # no waiting on a catalogue that is down
    assert "ConnectError" in (publisher.problem or "")
    key = result.path.stem
    assert key not in client

    done = list(publish.sync(tmp_path, served.uri, served.key))
    assert [(d.key, d.outcome) for d in done] == [(key, "sent")]
    assert_same_data(client[key], result.path)
    assert [d.outcome for d in publish.sync(tmp_path, served.uri, served.key)] == ["unchanged"]


def test_sync_names_a_file_it_cannot_send(served, tmp_path) -> None:
    from labrig.catalog import publish

    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    done = list(publish.sync(tmp_path, served.uri, served.key))
    assert len(done) == 1 and done[0].outcome.startswith("skipped: ")
    assert "broken.h5" in done[0].outcome


def test_publish_in_a_config_must_be_an_http_uri(tmp_path) -> None:
    from labrig.config import load_config, resolve_config_path
    from labrig.errors import UserInputError

    text = resolve_config_path("sim").read_text()
    bad = tmp_path / "bench.yaml"
    bad.write_text(text + "publish: ftp://lab-server/catalogue\n")
    with pytest.raises(UserInputError, match="publish"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text(text + "publish: http://lab-server:8000/api/v1\n")
    assert load_config(good).publish == "http://lab-server:8000/api/v1"
