"""The ``catalog`` extra stays optional: the core, ``labrig --help`` and a run without
``--publish`` never import Tiled; the catalogue's commands say what to install."""

from __future__ import annotations


def test_core_and_help_run_without_the_catalog_extra(core_session, tmp_path):
    done = core_session(
        ("tiled",),
        ("labrig.cli", "labrig.config", "labrig.runner", "labrig.subscribers"),
        [
            ["--help"],
            ["catalog", "--help"],
            ["catalog", "search", "procedure=jvl"],
            ["catalog", "serve", "."],
            ["run", "jvl", "--simulate", "--publish", "http://127.0.0.1:9/api/v1"],
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "The lab catalogue: serve, search and sync runs on Tiled" in done.stdout
    assert done.exits == ["exit 0"] * 2 + ["exit 2"] * 3
    assert done.imported == "[]"  # nothing of Tiled imported
    needs = "needs the catalog extra (tiled is missing): pip install 'labrig[catalog]'"
    assert done.stderr.splitlines() == [
        f"labrig: error: labrig catalog {needs}",
        f"labrig: error: labrig catalog {needs}",
        f"labrig: error: --publish {needs}",
    ]
    assert not list(tmp_path.iterdir())  # the refused run made no file
