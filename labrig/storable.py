"""What text a run file can hold: UTF-8 without NUL.

HDF5 stores strings NUL-terminated and labrig writes them as UTF-8, so a NUL (``"\\0"``
in a YAML double-quoted string) or a lone surrogate (an argument with a byte that is not
UTF-8 arrives in Python as ``"\\udcff"``) cannot be written.  Names and config values are
checked against this at the edges (config loading, ``run_procedure``), before anything is
touched, instead of failing inside h5py half-way into a run.
"""

from __future__ import annotations


def unstorable_reason(text: str) -> str | None:
    """Why a run file cannot hold ``text``, or None when it can."""
    if "\0" in text:
        return f"contains a NUL character at position {text.index(chr(0))}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        return (
            f"contains {bad!r} at position {exc.start}, not valid text (a byte that is not UTF-8?)"
        )
    return None


ALLOWED = "allowed: UTF-8 text without NUL"


def check_storable(text: str, what: str | None = None) -> str:
    """``text`` unchanged, or ValueError saying what is wrong and what is allowed (naming
    ``what`` and quoting the text when ``what`` is given)."""
    reason = unstorable_reason(text)
    if reason is not None:
        named = f"{what} {text!r} " if what else ""
        raise ValueError(f"{named}{reason}; {ALLOWED}")
    return text
