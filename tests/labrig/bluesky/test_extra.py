"""The ``bluesky`` extra stays optional: the core and ``labrig --help`` work without it."""

from __future__ import annotations

import subprocess
import sys

#: the distributions of the extra, as imported
EXTRA = ("bluesky", "ophyd_async", "event_model", "bluesky_queueserver", "bluesky_queueserver_api")

#: what a core session imports: the modules a run and the readers use, every procedure
CORE = (
    "labrig.bench", "labrig.cli", "labrig.config", "labrig.runner", "labrig.registry",
    "labrig.report", "labrig.describe", "labrig.export", "labrig.watch", "labrig.safe_off",
)  # fmt: skip
EVERY_PROCEDURE = """
import labrig.registry
for entry in labrig.registry.measurements():
    entry.procedure_class()
"""


def test_core_and_help_run_without_the_bluesky_extra(core_session):
    done = core_session(
        EXTRA,
        CORE,
        [
            ["--help"],
            ["queue", "serve", "--help"],
            ["queue", "serve", "-c", "sim"],
            ["run", "jvl", "--simulate", "--documents", "never-written.jsonl"],
        ],
        then=EVERY_PROCEDURE,
    )
    assert done.returncode == 0, done.stderr
    assert "Commands:" in done.stdout and "Start bluesky-queueserver's RE Manager" in done.stdout
    assert done.exits == ["exit 0", "exit 0", "exit 2", "exit 2"]
    assert done.imported == "[]"  # nothing of the extra imported
    assert done.stderr.splitlines() == [
        "labrig: error: labrig queue needs the bluesky extra (bluesky_queueserver is missing): "
        "pip install 'labrig[bluesky]'",
        "labrig: error: --documents needs the bluesky extra (event_model is missing): "
        "pip install 'labrig[bluesky]'",
    ]


def test_queue_serve_refuses_a_config_it_cannot_open_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "labrig", "queue", "serve", "--config", str(tmp_path / "no.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("labrig: error: ") and len(done.stderr.splitlines()) == 1
    assert "no.yaml" in done.stderr and "Traceback" not in done.stderr
