"""The ``catalog`` extra stays optional: the core, ``labrig --help`` and a run without
``--publish`` never import Tiled; the catalogue's commands say what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: a core session with Tiled made unimportable: every import of it fails loudly
WITHOUT_TILED = textwrap.dedent(
    """
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tiled":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Refuse())
    import labrig.cli, labrig.config, labrig.runner, labrig.subscribers
    for argv in (
        ["--help"],
        ["catalog", "--help"],
        ["catalog", "search", "procedure=jvl"],
        ["catalog", "serve", "."],
        ["run", "jvl", "--simulate", "--publish", "http://127.0.0.1:9/api/v1"],
    ):
        sys.argv = ["labrig", *argv]
        try:
            labrig.cli.main()
        except SystemExit as exit:
            print("exit", exit.code)
    print(sorted(m for m in sys.modules if m.split(".")[0] == "tiled"))
    """
)


def test_core_and_help_run_without_the_catalog_extra(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TILED],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "The lab catalogue: serve, search and sync runs on Tiled" in done.stdout
    assert [line for line in lines if line.startswith("exit ")] == ["exit 0"] * 2 + ["exit 2"] * 3
    assert lines[-1] == "[]"  # nothing of Tiled imported
    needs = "needs the catalog extra (tiled is missing): pip install 'labrig[catalog]'"
    assert done.stderr.splitlines() == [
        f"labrig: error: labrig catalog {needs}",
        f"labrig: error: labrig catalog {needs}",
        f"labrig: error: --publish {needs}",
    ]
    assert not list(tmp_path.iterdir())  # the refused run made no file
