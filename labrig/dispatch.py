"""Hand each run record to every subscriber, as peers.

Modelled on bluesky's ``Dispatcher`` behind ``RunEngine.subscribe``: a subscriber is any
callable taking one record (``labrig.records``); ``subscribe`` returns a token for
``unsubscribe``; ``publish`` calls every subscriber in the order they subscribed.  As
bluesky subscribes a callback to one document name or to ``"all"``, a subscriber may
name the record types it takes (``kinds``): the display never sees a row.

What a failing subscriber does to the run is the subscriber's own declaration, not a
rule about who it is:

* an ordinary subscriber (a display, a feed, a publisher) that raises is logged once,
  unsubscribed, and the failure is published as an ``Event`` of kind
  ``subscriber_failed`` to the others (so the run file records it); the run goes on;
* a *critical* subscriber (``critical = True`` on it, or ``subscribe(..., critical=True)``:
  the HDF5 writer, without which the run records nothing) fails the run: its exception
  reaches the procedure after every other subscriber has had the record, and its
  ``failure`` attribute (a sentence, or None) says when it can take no more records
  although it did not raise (the disk is about to fill), which stops the run too.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from labrig.records import Event, Record

log = logging.getLogger(__name__)

Subscriber = Callable[[Record], None]

#: the ``Event.kind`` of a subscriber's isolation
SUBSCRIBER_FAILED = "subscriber_failed"


@dataclass
class _Subscription:
    callback: Subscriber
    name: str
    critical: bool
    #: the record types it takes; None: every record
    kinds: tuple[type, ...] | None


def subscriber_name(callback: Subscriber) -> str:
    """A readable name for messages: the function's or the object's class name."""
    return getattr(callback, "__qualname__", None) or type(callback).__name__


class Dispatcher:
    """Subscribers of one run, and the delivery of its records (module docstring)."""

    def __init__(self) -> None:
        self._subscriptions: dict[int, _Subscription] = {}
        #: per record type, who takes it: worked out once per type, forgotten on
        #: (un)subscribe (a run delivers many rows to the same few subscribers)
        self._routes: dict[type, tuple[tuple[int, _Subscription], ...]] = {}
        #: the critical subscriptions, worked out and forgotten as ``_routes``
        self._critical: tuple[_Subscription, ...] | None = None
        self._tokens = itertools.count()
        #: names of the subscribers that failed and were unsubscribed
        self.isolated: list[str] = []

    def subscribe(
        self,
        callback: Subscriber,
        *,
        critical: bool | None = None,
        kinds: tuple[type, ...] | None = None,
    ) -> int:
        """Add ``callback``; ``critical`` and ``kinds`` (the record types it takes)
        default to its own attributes of those names (not critical; every record)."""
        if critical is None:
            critical = bool(getattr(callback, "critical", False))
        if kinds is None:
            kinds = getattr(callback, "kinds", None)
        token = next(self._tokens)
        self._subscriptions[token] = _Subscription(
            callback, subscriber_name(callback), critical, None if kinds is None else tuple(kinds)
        )
        self._routes.clear()
        self._critical = None
        return token

    def unsubscribe(self, token: int) -> None:
        self._subscriptions.pop(token, None)
        self._routes.clear()
        self._critical = None

    def _route(self, kind: type) -> tuple[tuple[int, _Subscription], ...]:
        route = self._routes.get(kind)
        if route is None:
            route = self._routes[kind] = tuple(
                (token, sub)
                for token, sub in self._subscriptions.items()
                if sub.kinds is None or issubclass(kind, sub.kinds)
            )
        return route

    def wants(self, kind: type) -> bool:
        """Whether any subscriber takes records of ``kind`` (a record nobody takes need
        not be made: a J-V-L step's ``Progress`` with no display)."""
        return bool(self._route(kind))

    def failure(self) -> str | None:
        """Why a critical subscriber can take no more records, or None (asked before
        every step of a run, with its stop checks)."""
        critical = self._critical
        if critical is None:
            critical = self._critical = tuple(
                sub for sub in self._subscriptions.values() if sub.critical
            )
        for sub in critical:
            if why := getattr(sub.callback, "failure", None):
                return str(why)
        return None

    def publish(self, record: Record) -> None:
        """Deliver ``record`` to every subscriber; then re-raise the first critical
        subscriber's exception, if one raised."""
        critical_error: Exception | None = None
        failed: list[tuple[_Subscription, Exception]] = []
        for token, sub in self._route(type(record)):
            try:
                sub.callback(record)
            except Exception as exc:  # noqa: BLE001 - isolated or re-raised below
                if sub.critical:
                    critical_error = critical_error or exc
                else:
                    self.unsubscribe(token)
                    failed.append((sub, exc))
        for sub, exc in failed:  # after the record went round: the file keeps the order
            self._report(sub, record, exc)
        if critical_error is not None:
            raise critical_error

    def _report(self, sub: _Subscription, record: Record, exc: Exception) -> None:
        self.isolated.append(sub.name)
        error = f"{type(exc).__name__}: {exc}"
        message = (
            f"subscriber {sub.name} failed on a {type(record).__name__} record ({error}); "
            "it gets no more records, the run goes on"
        )
        log.error("%s", message, exc_info=exc)
        self.publish(
            Event(
                SUBSCRIBER_FAILED,
                message,
                logging.ERROR,
                {"subscriber": sub.name, "record": type(record).__name__, "error": error},
                logged=True,
            )
        )
