"""The lab's catalogue (``catalog`` extra): run files searchable and readable through
Tiled.

* ``metadata``, ``parts``: what the catalogue knows of a run (searchable metadata; tables
  and arrays), from the store's one reader; no Tiled needed;
* ``query``: ``labrig catalog search`` terms as Tiled queries;
* ``adapter``, ``register``, ``server``: ``labrig catalog serve`` (a runs directory as a
  Tiled catalogue, new and growing files registered as they change);
* ``publish``: a run sent to a remote catalogue as it goes (``labrig run --publish``) and
  ``labrig catalog sync``.

Nothing here is imported by the core or ``labrig --help``; modules that need Tiled call
``tiled_ready()`` before importing it.
"""

from labrig import deferred


def tiled_ready() -> None:
    """Make the libraries under Tiled importable: dask reads ``pandas.core`` while
    being imported, past labrig's deferred pandas."""
    deferred.require("pandas")
