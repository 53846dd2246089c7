"""What the terminal says about an error: what happened and what to do, one line, no
Python class names."""

from __future__ import annotations

from labrig.errors import (
    InstrumentError,
    InstrumentTimeoutError,
    StoreWriteError,
    for_user,
)


def test_instrument_errors_say_what_to_do():
    exc = InstrumentTimeoutError("GPIB0::24::INSTR: no reply within 5 s\n(details)")
    assert for_user(exc) == (
        "GPIB0::24::INSTR: no reply within 5 s; check that it is on, the cable, the address "
        "and the baud rate"
    )
    assert for_user(InstrumentError("odd")) == (
        "odd; check the instrument, its connection and the config's resource"
    )


def test_other_errors_are_their_message_or_an_unexpected_error_to_report():
    assert for_user(StoreWriteError("disk full")) == "disk full"
    told = for_user(KeyError("gain"))
    assert told == (
        "an unexpected error inside labrig ('gain'); the run file records it: please report it"
    )
    assert "KeyError" not in told
