"""The standard subscribers of a run: the HDF5 writer, the progress display, Python
logging."""

from __future__ import annotations

import logging

from labrig import subscribers


# --------------------------------------------------------------------------- progress display
def test_no_progress_is_silent(capsys, monkeypatch):
    monkeypatch.setattr(subscribers.sys.stderr, "isatty", lambda: False, raising=False)
    display = subscribers.ProgressDisplay("jvl", False)
    for pct in (0, 10, 55, 100):
        display.update(pct)
    display.close()
    assert capsys.readouterr() == ("", "")


def test_progress_lines_use_h_mm_ss_and_a_cadence_that_grows_with_the_run(capsys, monkeypatch):
    clock = {"t": 1000.0}
    monkeypatch.setattr(subscribers.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(subscribers.sys.stderr, "isatty", lambda: False, raising=False)
    display = subscribers.ProgressDisplay("lifetime", None)
    assert display.line(25.0, 3725.0) == (
        "labrig: lifetime: 25% done, 1:02:05 elapsed, ETA 3:06:15"
    )
    assert [display.line_interval(t) for t in (0, 50, 3600, 86400)] == [10, 10, 360, 900]
    printed = []
    monkeypatch.setattr(subscribers, "say", printed.append)
    # a 24-hour run that creeps: lines every ~1/10 of the elapsed time, at most 15 min apart
    for minute in range(1, 24 * 60 + 1):
        clock["t"] = 1000.0 + 60 * minute
        display.update(5.0 + minute / 1000)
    assert 50 <= len(printed) <= 200, len(printed)
    assert printed[0] == "labrig: lifetime: 5% done, 01:00 elapsed, ETA 18:59"
    assert printed[-1].startswith("labrig: lifetime: 6% done, 2")


# --------------------------------------------------------------------------- logging
def test_logging_subscriber_logs_procedure_events_once_under_the_procedure(caplog):
    from pathlib import Path

    from labrig.records import Event, RunStarted

    sub = subscribers.LoggingSubscriber()
    sub(RunStarted("jvl", {}, "sim", "0" * 64, "dev", Path("x.h5"), (), ("data",)))
    with caplog.at_level(logging.INFO, logger="labrig.procedures"):
        sub(Event("compliance", "hit at 3 V", logging.WARNING, {"voltage": 3.0}))
        sub(Event("error", "said by the runner already", logging.ERROR, logged=True))
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("labrig.procedures.jvl", logging.WARNING, "compliance: hit at 3 V")
    ]


def test_progress_subscriber_follows_the_run(capsys, monkeypatch):
    from pathlib import Path

    from labrig.records import Progress, RunEnded, RunStarted

    monkeypatch.setattr(subscribers.sys.stderr, "isatty", lambda: False, raising=False)
    printed: list[str] = []
    monkeypatch.setattr(subscribers, "say", printed.append)
    sub = subscribers.ProgressSubscriber(None)
    sub(Progress(50.0))  # before the run: nothing to show it on
    sub(RunStarted("sclc", {}, "sim", "0" * 64, "dev", Path("x.h5"), (), ("data",)))
    sub(Progress(50.0))
    sub(RunEnded("finished"))
    sub(Progress(60.0))  # after: ignored
    assert len(printed) == 1 and printed[0].startswith("labrig: sclc: 50% done")
    assert sub.display is None
