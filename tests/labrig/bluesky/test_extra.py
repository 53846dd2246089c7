"""The ``bluesky`` extra stays optional: the core and ``labrig --help`` work without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: the distributions of the extra, as imported
EXTRA = ("bluesky", "ophyd_async", "event_model", "bluesky_queueserver", "bluesky_queueserver_api")

#: a core session with the extra made unimportable: every import of it fails loudly
WITHOUT_EXTRA = textwrap.dedent(
    f"""
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {EXTRA!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

    sys.meta_path.insert(0, Refuse())
    import labrig.bench, labrig.cli, labrig.config, labrig.runner, labrig.registry
    import labrig.report, labrig.describe, labrig.export, labrig.watch, labrig.safe_off
    for entry in labrig.registry.measurements():
        entry.procedure_class()
    for argv in (
        ["--help"],
        ["queue", "serve", "--help"],
        ["queue", "serve", "-c", "sim"],
        ["run", "jvl", "--simulate", "--documents", "never-written.jsonl"],
    ):
        sys.argv = ["labrig", *argv]
        try:
            labrig.cli.main()
        except SystemExit as exit:
            print("exit", exit.code)
    print(sorted(m for m in sys.modules if m.split(".")[0] in {EXTRA!r}))
    """
)


def test_core_and_help_run_without_the_bluesky_extra():
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Commands:" in done.stdout and "Start bluesky-queueserver's RE Manager" in done.stdout
    exits = [line for line in lines if line.startswith("exit ")]
    assert exits == ["exit 0", "exit 0", "exit 2", "exit 2"]
    assert lines[-1] == "[]"  # nothing of the extra imported
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
