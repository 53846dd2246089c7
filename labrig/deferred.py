"""Modules that labrig's dependencies import but a run may never use, loaded on first use.

pymeasure's ``pymeasure.experiment`` package imports its ``Results`` class, and with it
pandas (~34 MB and ~0.5 s), whenever any of its parts is imported: labrig uses its
``Procedure`` and ``Parameter`` classes and never its CSV ``Results``, so a run would pay
for pandas without touching it.  Likewise ``pymeasure.instruments.keithley``, whose
``__init__`` imports all eighteen of its drivers (the 2281S's uses pandas at import): the
2400 driver defers the package and imports the one module it subclasses; and
``pymeasure.experiment`` itself, whose ``__init__`` loads ``Worker``, ``Results`` and
``Experiment`` (IPython and zmq when installed): labrig imports its ``parameters`` and
``procedure`` modules alone.  ``defer`` puts a stand-in into ``sys.modules`` that
imports the real module the first time one of its attributes is used (the GUI's pandas
table, a user's own ``import pandas``); until then, nothing is loaded.

Not ``importlib.util.LazyLoader``: on Python 3.11 the ``import pandas`` statement itself
reads the module's ``__spec__`` and so loads a lazily-loaded module at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

#: re-entrant: loading one deferred module may use another (the Keithley package, pandas)
_lock = threading.RLock()


class _Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module until one of its attributes is used."""

    def __getattr__(self, attr: str) -> Any:
        if attr == "__warningregistry__":  # asked of every module by warnings machinery
            raise AttributeError(attr)
        return getattr(_load(self), attr)


def _load(proxy: _Deferred) -> types.ModuleType:
    with _lock:
        if sys.modules.get(proxy.__name__) is proxy:
            del sys.modules[proxy.__name__]
        module = importlib.import_module(proxy.__name__)
        # whoever holds the stand-in now reads the real module's names directly
        vars(proxy).update(vars(module))
    return module


def defer(name: str) -> None:
    """Let ``import name`` succeed without loading ``name`` until it is used.  A module
    already imported, or one that is not installed, is left alone."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    proxy = _Deferred(name)
    # what code scanning sys.modules asks (inspect.getmodule: __file__), answered from
    # the spec without loading; importlib.util.find_spec(name) keeps working
    proxy.__spec__, proxy.__loader__, proxy.__file__ = spec, spec.loader, spec.origin
    if spec.submodule_search_locations is not None:
        proxy.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = proxy


def defer_pymeasure_packages() -> None:
    """Defer the pymeasure packages labrig takes single modules from (see above); called
    by each labrig package or module that imports one, before it does."""
    defer("pymeasure.experiment")
    defer("pymeasure.instruments.keithley")


def loaded(name: str) -> bool:
    """Whether ``name`` has really been imported (not only deferred)."""
    return name in sys.modules and not isinstance(sys.modules[name], _Deferred)


def require(name: str) -> None:
    """Load ``name`` for real now: for a library that imports its submodules behind the
    stand-in's back (dask, under tiled, reads ``pandas.core`` while pandas' own import
    is still under way)."""
    module = sys.modules.get(name)
    if isinstance(module, _Deferred):
        _load(module)
