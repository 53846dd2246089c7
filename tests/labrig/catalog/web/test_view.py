"""The live web view in a real browser: Debian's headless ``chromium`` driven by
playwright, against ``labrig catalog serve``'s server (Tiled and the view at ``/view`` on
one loopback port) over a runs directory holding finished simulated runs, a corrupt
file and a lifetime run being written while the browser watches.

One server and one browser per module; every page is checked for console errors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("tiled.server")
playwright = pytest.importorskip("playwright.sync_api")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from report_runs import config_file, shared_run  # noqa: E402

from labrig.store import load_run  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)
#: the page's poll interval in these tests (s)
POLL_S = 0.4


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Finished runs of two devices (a red QD LED's J-V-L, a PbS solar cell's J-V) and
    a file that is not a run."""
    directory = tmp_path_factory.mktemp("served")
    for procedure in ("jvl", "solar-jv"):
        source = shared_run(procedure, tmp_path_factory)
        shutil.copy(source, directory / source.name)
    (directory / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    return directory


@pytest.fixture(scope="module")
def server(runs_dir):
    from labrig.catalog import tiled_ready

    tiled_ready()
    import labrig.catalog.web.app as web_app
    from labrig.catalog.server import Server

    poll, web_app.POLL_S = web_app.POLL_S, POLL_S
    served = Server(runs_dir, port=0, public=True).start()
    try:
        yield served
    finally:
        served.stop()
        web_app.POLL_S = poll


@pytest.fixture(scope="module")
def view(server) -> str:
    return server.uri.removesuffix("/api/v1") + "/view"


@pytest.fixture(scope="module")
def browser(server):
    """Chromium, started after the server (playwright's sync API keeps an event loop
    running in this thread, and the server's set-up runs one of its own)."""
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page whose console errors and uncaught exceptions fail the test."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    context.close()
    assert errors == []


def listed(page) -> dict[str, str]:
    """The run list as shown: key -> status."""
    rows = page.locator("#runs tbody tr")
    return {
        rows.nth(i).get_attribute("data-key"): rows.nth(i).locator(".status").inner_text()
        for i in range(rows.count())
    }


def test_the_run_list_loads_and_the_search_filters_it(page, view, runs_dir):
    page.goto(view + "/")
    shown = listed(page)
    jvl = next(k for k in shown if "jvl" in k)
    solar = next(k for k in shown if "solar" in k)
    assert shown == {jvl: "finished", solar: "finished", "corrupt": "unreadable"}
    assert page.inner_text("#count") == "3 runs"
    # the corrupt file is listed with its problem
    assert "corrupt.h5" in page.locator('tr[data-key="corrupt"] .problem').inner_text()

    page.fill("#sample", "RED")  # any case, a substring of sim-red-CsPbI3
    page.click("#search")
    assert listed(page) == {jvl: "finished"}
    assert page.input_value("#sample") == "RED"  # the form keeps what was asked

    page.fill("#sample", "")
    page.select_option("#procedure", "solar-jv")
    page.click("#search")
    assert listed(page) == {solar: "finished"}

    peak = load_run(runs_dir / f"{jvl}.h5").figures()["peak_eqe"][0]
    page.select_option("#procedure", "")
    page.fill("#figure", "peak_eqe")
    for above, expected in ((peak - 0.5, {jvl}), (peak + 0.5, set())):
        page.fill("#above", str(above))
        page.click("#search")
        assert set(listed(page)) == expected, above
    assert page.inner_text("#count") == "0 runs"


def test_a_runs_figures_are_drawn_from_its_data(page, view, runs_dir):
    page.goto(view + "/")
    jvl = next(k for k in listed(page) if "jvl" in k)
    page.click(f'tr[data-key="{jvl}"] a')
    page.wait_for_function("document.getElementById('plots').dataset.updates >= '1'")
    assert page.inner_text("#status") == "finished"
    for plot in ("jvl", "eqe", "spectra", "cie"):
        assert page.locator(f"#plot-{plot} .main-svg").count() >= 1, plot
    local = load_run(runs_dir / f"{jvl}.h5")
    # the EQE curve's peak is the run's peak EQE; the CIE point is its colour
    eqe = page.evaluate("document.getElementById('plot-eqe')._fullData[0].y.slice()")
    assert max(eqe) == pytest.approx(local.figures()["peak_eqe"][0], rel=1e-12)
    cie = page.evaluate(
        "(() => { const d = document.getElementById('plot-cie')._fullData;"
        " const t = d[d.length - 1]; return [t.x[0], t.y[0]]; })()"
    )
    assert cie == pytest.approx([local.figures()[k][0] for k in ("cie_x", "cie_y")], rel=1e-12)
    # every luminance the file holds above the light threshold is on the L-V curve
    lum = page.evaluate("document.getElementById('plot-jvl')._fullData[1].y.slice()")
    assert set(np.round(lum, 6)) <= set(np.round(local.table()["luminance"], 6))


def test_the_solar_run_marks_voc_and_jsc(page, view, runs_dir):
    page.goto(view + "/")
    solar = next(k for k in listed(page) if "solar" in k)
    page.goto(f"{view}/runs/{solar}")
    page.wait_for_function("document.getElementById('plots').dataset.updates >= '1'")
    names = page.evaluate(
        "document.getElementById('plot-solar')._fullData.map(t => [t.name, t.x[0], t.y[0]])"
    )
    marks = {name: (x, y) for name, x, y in names}
    local = load_run(runs_dir / f"{solar}.h5").figures()
    assert marks["Voc (reverse)"] == pytest.approx((local["reverse_voc"][0], 0.0))
    assert marks["Jsc (reverse)"] == pytest.approx((0.0, -local["reverse_jsc"][0]))


def lifetime_run(directory: Path, tmp_path: Path) -> subprocess.Popen:
    """A 3-channel lifetime run written into ``directory`` by another process, its
    simulated clock at 600x (its T50, about 12 h, a good minute away), until the test
    stops it (SIGINT)."""
    config = config_file(tmp_path / "cfg", clock_speed=600)
    return subprocess.Popen(
        [
            sys.executable, "-m", "labrig", "run", "lifetime", "--config", str(config),
            "-o", str(directory), "--sample", "rack live", "--no-progress",
            "--set", "channels=1-3", "--set", "settle_time=0", "--set", "ramp_dwell=0",
            "--set", "max_duration=100",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def wait_listed(view: str, sample: str, timeout_s: float = 30.0) -> str:
    """The key of the running run of ``sample`` once the catalogue lists it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        html = httpx.get(f"{view}/", params={"sample": sample, "status": "running"}).text
        if 'class="run status-running"' in html:
            return html.split('data-key="')[1].split('"')[0]
        time.sleep(0.2)
    raise AssertionError(f"no running run of {sample!r} listed after {timeout_s} s")


def test_a_live_lifetime_run_grows_on_its_page_and_on_the_rack(page, view, runs_dir, tmp_path):
    proc = lifetime_run(runs_dir, tmp_path)
    try:
        key = wait_listed(view, "rack live")
        page.goto(f"{view}/runs/{key}")
        page.wait_for_function(
            "(document.getElementById('plot-lifetime')?._fullData?.[0]?.x?.length ?? 0) > 1"
        )
        first = page.evaluate("document.getElementById('plot-lifetime')._fullData[0].x.slice()")
        shot = page.locator("#plot-lifetime").screenshot()
        page.wait_for_function(
            f"document.getElementById('plot-lifetime')._fullData[0].x.length > {len(first)}",
            timeout=20_000,
        )
        later = page.evaluate("document.getElementById('plot-lifetime')._fullData[0].x.slice()")
        assert later[: len(first)] == pytest.approx(first)  # the same curve, longer
        assert max(later) > max(first)
        assert page.locator("#plot-lifetime").screenshot() != shot
        channels = page.evaluate(
            "document.getElementById('plot-lifetime')._fullData.map(t => t.meta).filter(m => m)"
        )
        assert channels == ["channel_01", "channel_02", "channel_03"]

        page.goto(f"{view}/rack")
        box = page.locator(f'.rack-run[data-key="{key}"]')
        box.wait_for()
        tiles = box.locator(".channel")
        assert [tiles.nth(i).get_attribute("data-channel") for i in range(tiles.count())] == [
            "channel_01",
            "channel_02",
            "channel_03",
        ]
        assert tiles.first.locator(".value").inner_text().startswith("L/L0 0.")
    finally:
        proc.send_signal(signal.SIGINT)  # ends the run as Ctrl-C does: aborted
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out.decode()


def test_bad_requests_get_one_line_and_never_reach_outside(view, runs_dir):
    (runs_dir.parent / "secret.txt").write_text("not for the web")
    cases = {
        "/?above=lots&figure=peak_eqe": (400, "above 'lots' is not a number"),
        "/?above=1": (400, "above needs a figure"),
        "/?figure=peak_eqe)%20OR%201=1": (400, "a figure name is letters, digits and _"),
        "/?status=lost": (400, "status 'lost' is not one of running, finished"),
        "/?page=-1": (400, "page must be 0 or more"),
        "/runs/no-such-run": (404, "no run 'no-such-run' in the catalogue"),
        "/runs/..%2F..%2Fsecret.txt": (404, "in the catalogue"),
        "/api/runs/no-such-run": (404, '"error":"no run'),
        "/static/..%2F..%2F..%2Fsecret.txt": (404, ""),
        "/static/../app.py": (404, ""),
    }
    for path, (status, text) in cases.items():
        response = httpx.get(view + path)
        assert (response.status_code, path) == (status, path)
        assert text in response.text.replace("&#39;", "'"), (path, response.text[:300])
        assert "not for the web" not in response.text
        assert "Traceback" not in response.text
    assert httpx.get(view + "/").status_code == 200  # and the server goes on


def test_plotly_is_served_from_the_package(view):
    response = httpx.get(view + "/plotly.min.js")
    assert response.status_code == 200
    assert response.text.startswith("/**\n* plotly.js v")
