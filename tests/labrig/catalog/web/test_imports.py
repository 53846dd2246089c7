"""``labrig --help`` and the core never import the web view's libraries (a web framework,
templates, plotting, the browser driver): they come with the catalogue's server only."""

from __future__ import annotations

#: (jinja2 is not among them: pint imports dask, which imports it, where Tiled brought dask)
WEB = ("plotly", "fastapi", "starlette", "uvicorn", "playwright")


def test_help_and_the_core_import_no_web_library(core_session):
    done = core_session(
        WEB,
        ("labrig.cli", "labrig.runner", "labrig.report", "labrig.watch"),
        [["--help"]],
        refuse=False,  # imported or not: the test asks which were
    )
    assert done.returncode == 0, done.stderr
    assert "exit 0" in done.exits
    assert done.imported == "[]"
