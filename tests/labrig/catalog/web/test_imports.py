"""``labrig --help`` and the core never import the web view's libraries (a web framework,
templates, plotting, the browser driver): they come with the catalogue's server only."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: (jinja2 is not among them: pint imports dask, which imports it, where Tiled brought dask)
WEB = ("plotly", "fastapi", "starlette", "uvicorn", "playwright")

HELP = textwrap.dedent(
    f"""
    import sys
    import labrig.cli, labrig.runner, labrig.report, labrig.watch
    sys.argv = ["labrig", "--help"]
    try:
        labrig.cli.main()
    except SystemExit as exit:
        print("exit", exit.code)
    print(sorted(m for m in sys.modules if m.split(".")[0] in {WEB!r}))
    """
)


def test_help_and_the_core_import_no_web_library():
    done = subprocess.run([sys.executable, "-c", HELP], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "exit 0" in lines
    assert lines[-1] == "[]"
