"""The lab catalogue's live web view (``labrig[catalog]``): run list with search, a run's
figures updating while it is written, and the lifetime rack, all read through the
catalogue's Tiled API.  ``create_app`` builds the app ``labrig catalog serve`` mounts."""

from labrig.catalog.web.app import create_app

__all__ = ["create_app"]
