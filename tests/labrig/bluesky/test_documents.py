"""A labrig run as event-model documents: every document valid against event-model's own
schemas, the streams, units and shapes as the run file has them, the figures equal to
the run's, a stop that says how the run ended; `labrig run --documents`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bluesky.callbacks import LiveTable
from event_model import DocumentNames, schema_validators

from labrig.bluesky.documents import DocumentEmitter
from labrig.config import load_config
from labrig.records import Row, Rows
from labrig.registry import measurement
from labrig.run_state import StopControl
from labrig.runner import run_procedure
from labrig.store import read_run

#: a short J-V-L with a spectrum at every step
JVL = {"stop_voltage": 4.0, "step_voltage": 0.5, "spectra": "every_step"}


def _run(tmp_path: Path, params=JVL, stop: StopControl | None = None, extra=()):
    docs: list[tuple[str, dict]] = []
    proc = measurement("jvl").procedure_class()()
    proc.set_parameters(dict(params))
    result = run_procedure(
        proc,
        load_config("sim"),
        output_dir=tmp_path,
        progress=False,
        subscribers=[DocumentEmitter(lambda name, doc: docs.append((name, doc))), *extra],
        stop=stop,
    )
    for name, doc in docs:
        schema_validators[DocumentNames(name)].validate(doc)  # raises if invalid
    return result, docs


def _stream(docs, name: str) -> list[dict]:
    (descriptor,) = [d for n, d in docs if n == "descriptor" and d["name"] == name]
    return [d for n, d in docs if n == "event" and d["descriptor"] == descriptor["uid"]]


def test_a_jvl_run_as_valid_documents_with_units_shapes_and_its_figures(tmp_path):
    result, docs = _run(tmp_path)
    assert result.status == "finished"
    names = [n for n, _ in docs]
    assert names[0] == "start" and names[-1] == "stop" and names.count("start") == 1
    start = docs[0][1]
    assert (start["procedure"], start["sample"]) == ("jvl", "sim-red-CsPbI3")
    assert start["parameters"]["stop_voltage"] == {"value": 4.0, "units": "V"}
    assert start["parameters"]["compliance_current"]["units"] == "A"
    assert start["run_file"] == str(result.path) and start["simulated"] is True
    assert len(start["config_sha256"]) == 64
    run = read_run(result.path)
    descriptors = {d["name"]: d for n, d in docs if n == "descriptor"}
    assert set(descriptors) == {"primary", "spectra", "analysis"}
    keys = descriptors["primary"]["data_keys"]
    stored = run.columns["data"]
    assert list(keys) == list(stored)
    assert {k: keys[k].get("units", "") for k in keys} == {k: c[1] for k, c in stored.items()}
    # one event per row, the values the file holds
    rows = _stream(docs, "primary")
    for column, (values, *_) in stored.items():
        assert [e["data"][column] for e in rows] == pytest.approx(values, nan_ok=True)
    # spectra as array data, wavelengths in nm
    spectra = _stream(docs, "spectra")
    pixels = len(run.spectra.wavelength_nm)
    assert descriptors["spectra"]["data_keys"]["counts"]["shape"] == [pixels]
    assert descriptors["spectra"]["data_keys"]["wavelength_nm"]["units"] == "nm"
    assert len(spectra) == len(run.spectra.counts) == len(rows)
    assert np.array(spectra[-1]["data"]["counts"]) == pytest.approx(run.spectra.counts[-1])
    assert spectra[-1]["data"]["wavelength_nm"] == pytest.approx(run.spectra.wavelength_nm)
    # the figures: one event at the end, equal to what the run reported
    (figures,) = _stream(docs, "analysis")
    assert figures["data"] == pytest.approx({k: v for k, (v, _) in result.analysis.items()})
    analysis_keys = descriptors["analysis"]["data_keys"]
    assert analysis_keys["turn_on_voltage"]["units"] == "V"
    stop = docs[-1][1]
    assert (stop["exit_status"], stop["reason"]) == ("success", "")
    assert stop["num_events"] == {"primary": len(rows), "spectra": len(rows), "analysis": 1}


def test_a_stopped_run_ends_with_an_abort_stop_and_its_reason(tmp_path):
    control = StopControl()
    rows = []

    def stop_at_third_row(record):
        if isinstance(record, Row | Rows):
            rows.append(record)
            if len(rows) == 3:
                control.request_stop("stopped by the test")

    result, docs = _run(tmp_path, {**JVL, "spectra": "none"}, control, [stop_at_third_row])
    assert 3 <= len(rows) < 9  # stopped part-way
    assert result.status == "aborted"
    stop = docs[-1][1]
    assert (stop["exit_status"], stop["reason"]) == ("abort", "stopped by the test")
    assert stop["num_events"]["primary"] == len(read_run(result.path).columns["data"]["voltage"][0])


def test_a_bluesky_callback_consumes_the_run_live(tmp_path, capsys):
    table = LiveTable(["voltage", "current"], default_prec=4)
    proc = measurement("jvl").procedure_class()()
    proc.set_parameters({**JVL, "spectra": "none"})
    run_procedure(
        proc,
        load_config("sim"),
        output_dir=tmp_path,
        progress=False,
        subscribers=[DocumentEmitter(table)],
    )
    printed = capsys.readouterr().out
    assert "voltage" in printed and "current" in printed
    assert "|     4.0000 |" in printed  # the last step's voltage, as a row of the table


def test_labrig_run_documents_writes_json_lines_as_it_goes(tmp_path):
    out = tmp_path / "docs.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "labrig", "run", "jvl", "--simulate", "--no-progress"]
        + ["-o", str(tmp_path), "--set", "stop_voltage=3", "--set", "step_voltage=0.5"]
        + ["--set", "spectra=none", "--documents", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    for name, doc in docs:
        schema_validators[DocumentNames(name)].validate(doc)
    assert [n for n, _ in docs].count("event") == 7 + 1  # 0..3 V in 0.5 V, and the figures
    assert docs[-1][1]["exit_status"] == "success"
