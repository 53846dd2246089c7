"""The live web view: a FastAPI app (Jinja2 pages, Plotly figures) over the lab
catalogue, mounted by ``labrig catalog serve`` beside Tiled's own API.

Pages: the run list (search and filters), a run's figures (updated while the run is
written: the page polls the run's JSON and redraws in place) and the rack (every
running lifetime channel).  Everything is read through ``source.Catalogue`` (a Tiled
client); the app serves no file but its own templates, script and Plotly's bundled
plotly.min.js (no CDN: the view works offline).  A bad request gets a 400 with one
line, an unknown run a 404, a catalogue that does not answer a 502; never a crash.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from labrig.catalog.web import figures
from labrig.catalog.web.source import (
    STATUSES,
    BadRequest,
    Catalogue,
    Filters,
    RunNotFound,
)
from labrig.errors import UserInputError
from labrig.report.style import fmt
from labrig.store import LoadedRun

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: how often a page of a running run asks for new data (s)
POLL_S = 2.0


def plotly_js() -> Path:
    """plotly.js as the plotly package ships it."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


#: the cookie holding the API key a browser gave (``/login``) for a non-public catalogue
KEY_COOKIE = "labrig_catalog_key"
#: the most API keys whose clients are kept (one per key a browser gave)
MAX_CLIENTS = 8


class CatalogueRefused(Exception):
    """The catalogue refused the read: it needs an API key, or another one."""


class _Source:
    """Catalogue clients, made at the first request that needs one: mounted on the
    catalogue's own server (given its ``CatalogContext``), the app exists before that
    server answers, and learns its address from the requests that reach it.

    The view holds no key of its own for a mounted catalogue: a browser's reads go to
    Tiled with the key the browser gave (``/login``), so Tiled alone decides who reads;
    a public catalogue needs none."""

    def __init__(self, catalogue: Any, api_key: str | None) -> None:
        self._given, self._api_key = catalogue, api_key
        self._clients: dict[str | None, Catalogue] = {}
        self._lock = threading.Lock()

    def catalogue(self, request: Request, key: str | None = None) -> Catalogue:
        key = key or request.cookies.get(KEY_COOKIE) or header_key(request) or self._api_key
        with self._lock:
            if key not in self._clients:
                if len(self._clients) >= MAX_CLIENTS:
                    self._clients.pop(next(iter(self._clients)))
                self._clients[key] = Catalogue(self._client(request, key))
            return self._clients[key]

    def _client(self, request: Request, key: str | None) -> Any:
        from tiled.client import from_uri

        given = self._given
        if isinstance(given, str):
            uri = given
        elif hasattr(given, "api_prefix"):  # mounted: the server this request came in on
            if key is None and not given.public:
                raise CatalogueRefused()
            host, port = request.scope["server"][:2]
            host = f"[{host}]" if ":" in host else host
            uri = f"{request.url.scheme}://{host}:{port}{given.api_prefix}"
        else:
            return given
        try:
            return from_uri(uri, api_key=key)
        except Exception as exc:
            if refused(exc):
                raise CatalogueRefused() from exc
            raise


def header_key(request: Request) -> str | None:
    """The key of an ``Authorization: Apikey KEY`` header, as Tiled takes it (a script
    reading the view as it reads the API)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() or None if scheme.lower() == "apikey" else None


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the catalogue saying 401/403 (no key, or a wrong one)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) in (401, 403)


def create_app(
    catalogue: str | Any,
    *,
    api_key: str | None = None,
    poll_s: float | None = None,
) -> FastAPI:
    """The web view of ``catalogue``: the ``CatalogContext`` of the catalogue server the
    app is mounted in, a Tiled URI, or a Tiled client of the catalogue's root.
    ``api_key``: the key to read with when a browser gave none."""
    poll_s = POLL_S if poll_s is None else poll_s
    source = _Source(catalogue, api_key)
    app = FastAPI(title="labrig lab catalogue", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["figure"] = fmt
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("poll_ms", int(poll_s * 1000))
        return templates.TemplateResponse(request, name, context, status_code=code)

    def problem(request: Request, status: int, message: str) -> HTMLResponse:
        if "/api/" in request.url.path:
            return Response(
                figures_json({"error": message}), status_code=status, media_type="application/json"
            )
        return page(request, "problem.html", status, message=message, status=status)

    @app.exception_handler(BadRequest)
    def bad_request(request: Request, exc: BadRequest) -> Response:
        return problem(request, 400, str(exc))

    @app.exception_handler(UserInputError)
    def bad_search(request: Request, exc: UserInputError) -> Response:
        return problem(request, 400, str(exc))

    @app.exception_handler(RunNotFound)
    def not_found(request: Request, exc: RunNotFound) -> Response:
        return problem(request, 404, f"no run {exc.args[0]!r} in the catalogue")

    @app.exception_handler(CatalogueRefused)
    def needs_key(request: Request, exc: CatalogueRefused) -> Response:
        return problem(
            request, 401, "this catalogue's runs need its API key: give it on the login page"
        )

    @app.exception_handler(Exception)
    def unavailable(request: Request, exc: Exception) -> Response:
        if refused(exc):
            return needs_key(request, CatalogueRefused())
        log.warning("web view: %s on %s: %s", type(exc).__name__, request.url.path, exc)
        return problem(request, 502, f"the catalogue did not answer ({type(exc).__name__})")

    @app.get("/plotly.min.js", include_in_schema=False)
    def plotly_bundle() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/login", response_class=HTMLResponse, name="login")
    def login_form(request: Request) -> HTMLResponse:
        return page(request, "login.html")

    @app.post("/login", name="login_post")
    def login(request: Request, api_key: Annotated[str, Form()]) -> Response:
        """Keep the key in a cookie once the catalogue takes it (it reads the root)."""
        key = api_key.strip()
        if not key.isalnum():
            raise BadRequest("an API key is letters and digits only")
        len(source.catalogue(request, key).client)  # CatalogueRefused if it is not the key
        response = RedirectResponse(request.url_for("runs"), status_code=303)
        response.set_cookie(
            KEY_COOKIE, key, httponly=True, samesite="strict",
            path=request.scope.get("root_path") or "/",
        )  # fmt: skip
        return response

    @app.get("/", response_class=HTMLResponse, name="runs")
    def runs(request: Request) -> HTMLResponse:
        filters = Filters.parse(request.query_params)
        result = source.catalogue(request).runs(filters)
        from labrig import registry

        return page(
            request,
            "runs.html",
            filters=filters,
            result=result,
            procedures=[m.name for m in registry.measurements()],
            statuses=STATUSES,
        )

    @app.get("/runs/{key:path}", response_class=HTMLResponse, name="run")
    def run(request: Request, key: str) -> HTMLResponse:
        loaded = source.catalogue(request).load(key, metadata_only)
        return page(
            request, "run.html", key=key, run=loaded.run, problems=loaded.problems,
            **figure_tables(loaded),
        )  # fmt: skip

    @app.get("/api/runs/{key:path}", name="run_data")
    def run_data(request: Request, key: str) -> Response:
        loaded = source.catalogue(request).load(key, figures.wants)
        return json_response(
            {
                "status": loaded.run.status,
                "rows": {g: loaded.rows(g) for g in loaded.run.groups},
                "plots": [{"id": p.id, "figure": p.figure} for p in figures.plots(loaded)],
            }
        )

    @app.get("/rack", response_class=HTMLResponse, name="rack")
    def rack(request: Request) -> HTMLResponse:
        return page(request, "rack.html")

    @app.get("/api/rack", name="rack_data")
    def rack_data(request: Request) -> Response:
        return json_response({"runs": rack_runs(source.catalogue(request), request)})

    return app


def metadata_only(procedure: str) -> tuple[frozenset[str], bool]:
    """A page that shows the run's figures only reads none of its data."""
    return frozenset(), False


def figure_tables(loaded: LoadedRun) -> dict[str, Any]:
    """The run's figures as the page shows them (as ``labrig report``'s summary leaves
    out every decay model's fit parameters): the run's own, and the data groups' side
    by side (``groups`` columns, one row per figure)."""
    from labrig.report import SUMMARY_SKIP_PREFIXES

    def shown(items: dict[str, tuple[Any, str]]) -> dict[str, str]:
        return {
            name: fmt(value, units)
            for name, (value, units) in items.items()
            if not name.startswith(SUMMARY_SKIP_PREFIXES)
        }

    run_figures = shown(loaded.figures(None))
    per_group = {g: shown(loaded.figures(g)) for g in loaded.run.groups if loaded.figures(g)}
    names = list(dict.fromkeys(n for figures in per_group.values() for n in figures))
    return {
        "run_figures": run_figures,
        "groups": list(per_group),
        "group_figures": [(n, [per_group[g].get(n, "") for g in per_group]) for n in names],
    }


def rack_runs(catalogue: Catalogue, request: Request) -> list[dict[str, Any]]:
    """Every running lifetime run: its channels' latest L/L0 and T50 so far, and the
    decay figure."""
    out = []
    for key in catalogue.running("lifetime"):
        try:
            loaded = catalogue.load(key, figures.wants)
        except RunNotFound:  # removed between the search and the read
            continue
        channels = []
        for group, curve in figures.lifetime_curves(loaded).items():
            channels.append(
                {
                    "channel": group,
                    "relative": float(curve.relative[-1]) if curve.relative.size else None,
                    "hours": float(curve.time_h[-1]) if curve.time_h.size else None,
                    "l0": curve.l0,
                    "t50_h": curve.t50_h,
                    "rows": loaded.rows(group),
                }
            )
        (plot,) = figures.lifetime_plots(loaded)
        plot.figure.update_layout(height=300, title=None)
        out.append(
            {
                "key": key,
                "url": str(request.url_for("run", key=key)),
                "sample": loaded.run.sample,
                "start_time": loaded.run.start_time,
                "channels": channels,
                "figure": plot.figure,
            }
        )
    return out


def figures_json(data: Any) -> str:
    """JSON of ``data`` with Plotly figures and numpy arrays in it (NaN as null)."""
    from plotly.io.json import to_json_plotly

    return to_json_plotly(data)


def json_response(data: Any) -> Response:
    return Response(figures_json(data), media_type="application/json")
