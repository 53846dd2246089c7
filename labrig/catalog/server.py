"""``labrig catalog serve``: a runs directory as a Tiled catalogue.

One Tiled app (``build``) over one catalogue database: the embedded SQLite file
``DIR/.labrig-catalog/catalog.db`` by default (created on first use), or any database
Tiled takes (``--database postgresql://...`` for a lab server behind several workers).
It serves

* the run files in DIR, registered by reference (``labrig.catalog.register``, in the
  server's own process and event loop; read by
  ``labrig.catalog.adapter``), never a file outside DIR (Tiled refuses any reference
  outside its readable storage);
* runs benches publish into it (``labrig run --publish``): their data live in Tiled's
  writable storage under ``DIR/.labrig-catalog/data`` (arrays as files).

Writes need the API key; reads too unless ``public``.

**The web view's hook.**  ``build`` mounts ``labrig.catalog.web.create_app(context)`` at
``/view`` when that module exists (``context``: a ``CatalogContext`` naming the served
directory and the catalogue's API address), so the web view runs in the same server, on
the same port, behind the same process; the web view needs nothing else from here.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrig.errors import UserInputError

log = logging.getLogger(__name__)

#: where in DIR the catalogue keeps its database, key and published runs' data
STATE_DIR = ".labrig-catalog"
#: the environment variable holding the API key (server and publishing clients alike)
API_KEY_ENV = "LABRIG_CATALOG_API_KEY"
#: where the web view is mounted, if installed
VIEW_PREFIX = "/view"


@dataclass(frozen=True)
class CatalogContext:
    """What the web view is told about the catalogue it is mounted in."""

    directory: Path
    #: the Tiled API, relative to the server root
    api_prefix: str = "/api/v1"
    public: bool = False


def state_dir(directory: Path) -> Path:
    path = Path(directory) / STATE_DIR
    path.mkdir(exist_ok=True)
    return path


def database_uri(directory: Path, database: str | None) -> str:
    """The catalogue database: ``database`` as given, else SQLite inside DIR."""
    if database:
        return database
    return f"sqlite:///{state_dir(directory) / 'catalog.db'}"


def api_key(directory: Path) -> tuple[str, bool]:
    """The key writes need, and whether it was made just now (then it is printed once).

    From ``LABRIG_CATALOG_API_KEY`` if set; else the key kept in DIR (made at the first
    start, readable by its owner only)."""
    from_env = os.environ.get(API_KEY_ENV)
    if from_env:
        if not from_env.isalnum():
            raise UserInputError(f"{API_KEY_ENV}: letters and digits only")
        return from_env, False
    path = state_dir(directory) / "api_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), False
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key, True


def initialize(database: str) -> None:
    """Create the catalogue's tables in ``database`` unless they exist (what ``tiled
    catalog init --if-not-exists`` does, in this process: no second interpreter start)."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine
    from tiled.alembic_utils import UninitializedDatabase, check_database, stamp_head
    from tiled.catalog.alembic_constants import ALEMBIC_DIR, ALEMBIC_INI_TEMPLATE_PATH
    from tiled.catalog.core import ALL_REVISIONS, REQUIRED_REVISION, initialize_database
    from tiled.utils import ensure_specified_sql_driver

    database = ensure_specified_sql_driver(database)

    async def setup() -> bool:
        engine = create_async_engine(database)
        try:
            await check_database(engine, REQUIRED_REVISION, ALL_REVISIONS)
        except UninitializedDatabase:
            await initialize_database(engine)
            return True
        finally:
            await engine.dispose()
        return False

    if asyncio.run(setup()):
        stamp_head(ALEMBIC_INI_TEMPLATE_PATH, ALEMBIC_DIR, database)


def catalogue(directory: Path, database: str | None = None) -> Any:
    """The Tiled catalogue over ``directory`` (its database created on first use): reads
    run files inside ``directory`` only, writes published runs' arrays under its state."""
    from labrig.catalog import tiled_ready

    tiled_ready()
    from tiled.catalog import from_uri

    from labrig.catalog.adapter import MIMETYPE, LabrigRunAdapter

    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise UserInputError(f"{directory}: not a directory")
    data = state_dir(directory) / "data"
    data.mkdir(exist_ok=True)
    database = database_uri(directory, database)
    initialize(database)
    return from_uri(
        database,
        readable_storage=[str(directory)],
        writable_storage=[str(data)],
        adapters_by_mimetype={MIMETYPE: LabrigRunAdapter},
    )


def build(
    directory: Path,
    *,
    key: str,
    database: str | None = None,
    public: bool = False,
    tree: Any = None,
) -> Any:
    """The catalogue's ASGI (FastAPI) app over ``directory`` (or over ``tree``, a
    ``catalogue`` already open); see the module docstring for what it serves and where
    the web view is mounted."""
    from labrig.catalog import tiled_ready

    tiled_ready()
    from tiled.config import Authentication
    from tiled.server.app import build_app

    directory = Path(directory).resolve()
    if tree is None:
        tree = catalogue(directory, database)
    app = build_app(tree, Authentication(single_user_api_key=key, allow_anonymous_access=public))
    _own_settings(app)
    if importlib.util.find_spec("labrig.catalog.web") is not None:
        from labrig.catalog.web import create_app

        app.mount(VIEW_PREFIX, create_app(CatalogContext(directory, public=public)))
    return app


def _own_settings(app: Any) -> None:
    """Give ``app`` its own copy of Tiled's settings.  Tiled writes each app's key and
    access rule into one process-wide ``Settings``, so a second catalogue started in the
    same process (a test session, a notebook) would replace the first one's API key."""
    from tiled.server.settings import get_settings

    own = app.dependency_overrides[get_settings]().model_copy(deep=True)
    app.dependency_overrides[get_settings] = lambda: own


class Server:
    """The catalogue served by uvicorn in this process, and its directory watched: for a
    command (``serve``) and for tests (``start``/``stop`` on a free port)."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        database: str | None = None,
        public: bool = False,
        watch: bool = True,
    ) -> None:
        from labrig.catalog import tiled_ready

        tiled_ready()
        import uvicorn

        self.directory = Path(directory).resolve()
        self.key, self.new_key = api_key(self.directory)
        self.tree = catalogue(self.directory, database)
        self.app = build(self.directory, key=self.key, public=public, tree=self.tree)
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning")
        self.uvicorn = uvicorn.Server(config)
        self.watch = watch
        self.registrar: Any = None
        self.loop: Any = None
        self._thread: threading.Thread | None = None

    @property
    def uri(self) -> str:
        host, port = self.uvicorn.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}{CatalogContext(self.directory).api_prefix}"

    def start(self, timeout_s: float = 30.0, scan: bool = True) -> Server:
        """Serve in a thread; return once the server answers and (``scan``) DIR is
        registered."""
        import time

        self._thread = threading.Thread(target=self._serve, name="catalog", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the catalogue server did not start")
            time.sleep(0.02)
        from labrig.catalog.register import Registrar

        self.registrar = Registrar(self.tree, self.loop, self.directory)
        if scan:
            self.registrar.scan()
        if self.watch:
            self.registrar.start()
        return self

    def _serve(self) -> None:
        import asyncio

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.uvicorn.serve()

        asyncio.run(main())

    def stop(self) -> None:
        if self.registrar is not None:
            self.registrar.stop()
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
