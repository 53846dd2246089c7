"""The bodies of ``labrig catalog serve|search|sync`` and of ``labrig run --publish``
(``labrig.cli`` keeps only the thin click commands, importing this lazily)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labrig.errors import UserInputError

#: where ``search`` and ``sync`` look without ``--uri`` (also ``LABRIG_CATALOG_URI``)
DEFAULT_URI = "http://127.0.0.1:8000/api/v1"
URI_ENV = "LABRIG_CATALOG_URI"


def default_uri() -> str:
    return os.environ.get(URI_ENV) or DEFAULT_URI


def serve(
    directory: Path,
    *,
    database: str | None,
    host: str,
    port: int,
    public: bool,
    echo: Callable[[str], None],
) -> None:
    """Serve DIR until Ctrl-C (``labrig.catalog.server``)."""
    from labrig.catalog.server import STATE_DIR, VIEW_PREFIX, Server

    directory = Path(directory)
    if not directory.is_dir():
        raise UserInputError(f"{directory}: not a directory (the runs directory to serve)")
    server = Server(directory, host=host, port=port, database=database, public=public)
    server.start()
    root = server.uri.removesuffix("/api/v1")
    echo(f"serving {server.directory} at {server.uri}")
    if server.app.router.routes and any(
        getattr(r, "path", "") == VIEW_PREFIX for r in server.app.router.routes
    ):
        echo(f"web view: {root}{VIEW_PREFIX}")
    echo("reads: " + ("public" if public else "need the API key") + "; writes need the API key")
    if server.new_key:
        echo(
            f"API key (shown this once; kept in {server.directory / STATE_DIR / 'api_key'}): "
            f"{server.key}"
        )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def search(text: str, uri: str, limit: int, echo: Callable[[str], None]) -> int:
    """Print one line per matching run; returns how many matched."""
    from labrig.catalog.publish import connect
    from labrig.catalog.query import parse

    queries = parse(text)  # a bad search fails before any connection
    root = connect(uri)
    for query in queries:
        root = root.search(query)
    shown = 0
    for key, node in root.items():
        if shown >= limit:
            break
        echo(describe_match(key, dict(node.metadata), queries))
        shown += 1
    return len(root)


def describe_match(key: str, md: dict[str, Any], queries: list[Any]) -> str:
    """``key  procedure  sample  status  start  figure=value unit ...`` (the figures the
    search named)."""
    figures = []
    for query in queries:
        path = getattr(query, "key", "")
        if path.startswith("figures."):
            value: Any = md
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            unit: Any = md.get("units", {})
            for part in path.split(".")[1:]:
                unit = unit.get(part) if isinstance(unit, dict) else None
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            figures.append(f"{path.removeprefix('figures.')}={shown}{' ' + unit if unit else ''}")
    fields = [md.get(f, "") for f in ("procedure", "sample", "status", "start_time")]
    return "  ".join([key, *map(str, fields), *figures])


def sync(directory: Path, uri: str, echo: Callable[[str], None]) -> int:
    """Send DIR's runs the catalogue lacks; one line per file; returns files not sent."""
    from labrig.catalog.publish import sync as sync_runs

    missed = 0
    for done in sync_runs(directory, uri):
        echo(
            f"{done.outcome:>9}  {done.key}"
            if " " not in done.outcome
            else f"{done.key}: {done.outcome}"
        )
        missed += done.outcome.startswith("skipped")
    return missed


def publisher(uri: str) -> Any:
    """The run subscriber of ``labrig run --publish URI``."""
    require_extra("--publish")
    from labrig.catalog.publish import Publisher

    return Publisher(uri)


def unpublished(pub: Any, wait_s: float) -> str | None:
    """After the run: the line to print when the catalogue does not have it all after
    ``wait_s`` (or at once, while it cannot be reached)."""
    if pub.finish(wait_s) or pub.path is None:
        return None
    return (
        f"labrig: catalogue {pub.uri} does not have all of {pub.path.name} yet "
        f"({pub.problem or 'still sending'}); `labrig catalog sync {pub.path.parent} "
        f"{pub.uri}` sends it"
    )


def require_extra(what: str) -> None:
    """One line, exit 2, when the catalog extra (Tiled) is not installed."""
    try:
        import tiled  # noqa: F401 - only its presence is checked here
    except ImportError as exc:
        raise UserInputError(
            f"{what} needs the catalog extra ({exc.name} is missing): pip install 'labrig[catalog]'"
        ) from None
