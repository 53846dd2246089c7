"""The exceptions labrig raises, grouped by who has to act on them.

``UserInputError`` subclasses are mistakes the person at the bench can fix (bad config,
bad parameter, a limit exceeded): the CLI prints their one-line message and exits 2,
without a traceback and before any instrument is touched.  ``InstrumentError``
subclasses are things the hardware (or its simulator) did: the run is ended safely,
recorded as failed, and the CLI exits 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LabrigError(Exception):
    """Base class of every error labrig raises on purpose."""


class UserInputError(LabrigError):
    """A mistake in what the user asked for; exit status 2, no traceback."""


class ConfigError(UserInputError):
    """The bench config (or a calibration file it names) is missing, unreadable or invalid."""


class ParameterError(UserInputError):
    """A procedure parameter has the wrong type or lies outside its allowed range."""


class SafetyLimitError(UserInputError):
    """A requested drive would exceed the bench's configured safety limits."""


class InstrumentError(LabrigError):
    """An instrument (real or simulated) misbehaved; the run ends and is marked failed."""


class InstrumentSettingError(InstrumentError, ValueError):
    """A driver refused a setting outside the instrument's capability, before sending SCPI."""


class InstrumentTimeoutError(InstrumentError):
    """The instrument did not answer within its time-out."""


class GarbledReplyError(InstrumentError):
    """The instrument answered with something that cannot be parsed."""


class InstrumentDisconnectedError(InstrumentError):
    """The connection to the instrument was lost."""


class WrongInstrumentError(InstrumentError):
    """The instrument at the resource identifies as a different model than configured."""


class InstrumentNotFoundError(InstrumentError):
    """No instrument answers at the configured resource (or serial number)."""


class OutputStateUnknownError(InstrumentError):
    """Shutdown could not confirm a source output is off: someone must check the bench."""


class OverRangeError(InstrumentError):
    """A reading was over range (the 6485 reports +9.9E37); never use it as a number."""


class SaturationError(InstrumentError):
    """A spectrum stays saturated even at the shortest integration time."""


class RunAborted(LabrigError):
    """The user stopped the run (Ctrl-C, SIGTERM or the GUI's abort)."""


class NotARunFileError(UserInputError):
    """A file given as a run file is missing, not HDF5, or not written by labrig."""


class RunFileDamagedError(UserInputError):
    """A run file is truncated or damaged: it cannot be read whole or continued (the
    report, export and inspect commands still show what it holds)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'jvl'?)"`` when ``word`` is close to one of ``choices`` (difflib,
    case-insensitive), else ``""``: appended to an "unknown X" message."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


class StoreWriteError(LabrigError):
    """The run file stopped taking writes (disk full, file-size limit): the run stops,
    is recorded as failed, and the rows already on disk are kept."""


#: what to do, by what went wrong (the message says what happened)
ADVICE: tuple[tuple[type[Exception], str], ...] = (
    (InstrumentNotFoundError, "check that it is switched on and connected, and its resource"),
    (InstrumentTimeoutError, "check that it is on, the cable, the address and the baud rate"),
    (WrongInstrumentError, "another instrument answers there: check the resource or driver"),
    (InstrumentDisconnectedError, "check the cable, and that no other program holds the port"),
    (GarbledReplyError, "check the baud rate and the line terminator set on the instrument"),
    (OverRangeError, "use auto range or a larger range"),
    (SaturationError, "lower the drive, or attenuate the light into the spectrometer"),
    (InstrumentSettingError, "change the parameter that asks for it"),
    (ConfigError, "fix the config"),
)


def advice(exc: BaseException) -> str:
    """What the person at the bench can do about ``exc``."""
    for kind, text in ADVICE:
        if isinstance(exc, kind):
            return text
    return "check the instrument, its connection and the config's resource"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "no answer"


def for_user(exc: BaseException) -> str:
    """One line for the terminal: what happened and what to do, without Python's class
    names (the run file keeps those, and the log the traceback)."""
    if isinstance(exc, InstrumentError):
        return f"{first_line(exc)}; {advice(exc)}"
    if isinstance(exc, LabrigError):
        return first_line(exc)
    return (
        f"an unexpected error inside labrig ({first_line(exc) or 'no message'}); the run "
        "file records it: please report it"
    )
