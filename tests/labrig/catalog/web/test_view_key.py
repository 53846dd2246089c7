"""The web view of a catalogue that is not public: it shows nothing without the API key
(Tiled decides, with the key the browser gave), takes the key on its login page, keeps
it in a cookie scoped to the view, and refuses a wrong one."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("tiled.server")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from report_runs import shared_run  # noqa: E402

KEY = "webviewtestkey0123456789"


@pytest.fixture(scope="module")
def view(tmp_path_factory):
    from labrig.catalog import tiled_ready

    tiled_ready()
    from labrig.catalog.server import API_KEY_ENV, Server

    directory = tmp_path_factory.mktemp("private")
    source = shared_run("jvl", tmp_path_factory)
    shutil.copy(source, directory / source.name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(API_KEY_ENV, KEY)
        served = Server(directory, port=0, public=False).start()
    try:
        yield served.uri.removesuffix("/api/v1") + "/view", source.stem
    finally:
        served.stop()


def test_without_the_key_nothing_is_shown(view):
    base, stem = view
    for path in ("/", f"/runs/{stem}"):
        response = httpx.get(base + path)
        assert response.status_code == 401, path
        assert "need its API key" in response.text
        assert stem not in response.text.split("</nav>")[1]
    response = httpx.get(f"{base}/api/runs/{stem}")
    assert response.status_code == 401
    assert response.json() == {
        "error": "this catalogue's runs need its API key: give it on the login page"
    }


def test_a_wrong_key_is_refused_and_the_right_one_opens_the_view(view):
    base, stem = view
    with httpx.Client(base_url=base) as browser:
        refused = browser.post("/login", data={"api_key": "wrong0key"})
        assert refused.status_code == 401
        assert "labrig_catalog_key" not in browser.cookies
        assert browser.post("/login", data={"api_key": "x; y"}).status_code == 400
        taken = browser.post("/login", data={"api_key": KEY})
        assert taken.status_code == 303
        assert taken.headers["location"].endswith("/view/")
        cookie = taken.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Path=/view" in cookie and "SameSite=strict" in cookie
        listing = browser.get("/")
        assert listing.status_code == 200
        assert f'data-key="{stem}"' in listing.text
        assert browser.get(f"/api/runs/{stem}").json()["status"] == "finished"


def test_a_script_reads_the_view_with_tileds_key_header(view):
    base, stem = view
    listing = httpx.get(base + "/", headers={"Authorization": f"Apikey {KEY}"})
    assert listing.status_code == 200
    assert f'data-key="{stem}"' in listing.text
    refused = httpx.get(base + "/", headers={"Authorization": "Apikey wrong0key"})
    assert refused.status_code == 401
