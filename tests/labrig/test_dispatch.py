"""The dispatcher: every subscriber gets every record in order; a failing ordinary
subscriber is isolated (logged once, unsubscribed, recorded as an Event); a critical one
fails the caller after the others had the record."""

from __future__ import annotations

import logging

import pytest

from labrig.dispatch import SUBSCRIBER_FAILED, Dispatcher
from labrig.records import Event, Progress, Row


def _recorder(seen: list, tag: str):
    def record(rec) -> None:
        seen.append((tag, rec))

    return record


def test_every_subscriber_gets_every_record_in_subscription_order():
    seen: list = []
    d = Dispatcher()
    d.subscribe(_recorder(seen, "a"))
    token = d.subscribe(_recorder(seen, "b"))
    d.publish(Progress(10.0))
    d.unsubscribe(token)
    d.publish(Progress(20.0))
    assert [(tag, rec.percent) for tag, rec in seen] == [("a", 10.0), ("b", 10.0), ("a", 20.0)]


def test_a_failing_subscriber_is_logged_once_unsubscribed_and_recorded(caplog):
    seen: list = []
    calls = {"n": 0}

    def broken(rec) -> None:
        calls["n"] += 1
        raise ZeroDivisionError("division by zero")

    d = Dispatcher()
    d.subscribe(broken)
    d.subscribe(_recorder(seen, "file"))
    with caplog.at_level(logging.ERROR, logger="labrig.dispatch"):
        d.publish(Row({"x": 1.0}))
        d.publish(Row({"x": 2.0}))
    assert calls["n"] == 1
    assert d.isolated == [
        "test_a_failing_subscriber_is_logged_once_unsubscribed_and_recorded.<locals>.broken"
    ]
    assert len(caplog.records) == 1 and "ZeroDivisionError: division by zero" in caplog.text
    kinds = [type(rec).__name__ for _, rec in seen]
    assert kinds == ["Row", "Event", "Row"]  # the failure is recorded after the row it broke on
    event = seen[1][1]
    assert isinstance(event, Event) and event.kind == SUBSCRIBER_FAILED
    assert event.level == logging.ERROR and event.logged
    assert dict(event.data) == {
        "subscriber": d.isolated[0],
        "record": "Row",
        "error": "ZeroDivisionError: division by zero",
    }


class _Writer:
    critical = True

    def __init__(self) -> None:
        self.failure: str | None = None

    def __call__(self, rec) -> None:
        self.failure = "disk full"
        raise OSError("disk full")


def test_a_critical_subscriber_fails_the_publisher_after_the_others_had_the_record():
    seen: list = []
    d = Dispatcher()
    writer = _Writer()
    d.subscribe(writer)
    d.subscribe(_recorder(seen, "display"))
    assert d.failure() is None
    with pytest.raises(OSError, match="disk full"):
        d.publish(Progress(1.0))
    assert [tag for tag, _ in seen] == ["display"]
    assert d.isolated == [] and d.failure() == "disk full"
    # still subscribed: the next record reaches it (and fails again)
    with pytest.raises(OSError):
        d.publish(Progress(2.0))


def test_failure_is_asked_of_the_critical_subscribers_as_they_are_now():
    d = Dispatcher()
    d.subscribe(_recorder([], "display"))
    assert d.failure() is None
    writer = _Writer()
    token = d.subscribe(writer)  # after failure() was asked once
    writer.failure = "disk full"
    assert d.failure() == "disk full"
    d.unsubscribe(token)
    assert d.failure() is None


def test_wants_says_whether_any_subscriber_takes_a_kind():
    d = Dispatcher()
    assert not d.wants(Progress)

    def rows(rec) -> None:
        pass

    rows.kinds = (Row,)  # type: ignore[attr-defined]
    d.subscribe(rows)
    assert d.wants(Row) and not d.wants(Progress)
    token = d.subscribe(_recorder([], "everything"))
    assert d.wants(Progress) and d.wants(Event)
    d.unsubscribe(token)
    assert not d.wants(Progress)


def test_critical_can_be_given_at_subscribe():
    d = Dispatcher()

    def strict(rec) -> None:
        raise ValueError("bad record")

    d.subscribe(strict, critical=True)
    with pytest.raises(ValueError, match="bad record"):
        d.publish(Progress(1.0))


def test_records_are_read_only_for_subscribers():
    values = {"x": 1.0}
    row = Row(values)
    values["x"] = 2.0  # the emitter's dict changing later does not change the record
    assert row.values["x"] == 1.0
    with pytest.raises(TypeError):
        row.values["x"] = 3.0  # type: ignore[index]


def test_a_subscriber_naming_its_kinds_gets_only_those():
    from labrig.records import Rows

    seen: list = []

    class Display:
        kinds = (Progress,)

        def __call__(self, rec) -> None:
            seen.append(("display", type(rec).__name__))

    d = Dispatcher()
    d.subscribe(Display())
    d.subscribe(_recorder(seen, "file"), kinds=(Row, Rows))
    d.subscribe(_recorder(seen, "all"))
    for rec in (Row({"x": 1.0}), Progress(5.0), Rows({"x": [1.0, 2.0]}), Event("e", "m")):
        d.publish(rec)
    assert [(tag, type(r).__name__ if not isinstance(r, str) else r) for tag, r in seen] == [
        ("file", "Row"),
        ("all", "Row"),
        ("display", "Progress"),
        ("all", "Progress"),
        ("file", "Rows"),
        ("all", "Rows"),
        ("all", "Event"),
    ]
