"""The terminal may go away while a run goes on; the run must not notice.

Closing the terminal (SIGHUP) turns every later write to it into ``EIO``; a reader that
quits early (``labrig run … 2>&1 | head``) turns them into ``EPIPE``.  Either would
otherwise raise from a progress line, a log message or a signal handler's notice at an
arbitrary point of the run (or of its safe shutdown), and make Python exit 120 at the
end.  ``keep_running_without_terminal`` wraps ``sys.stdout``/``sys.stderr`` so the first
failed write points the file descriptor at ``/dev/null`` and everything after it (the
buffered rest, the logging fall-back handler, tqdm) goes there quietly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO


class _Resilient:
    """A text stream whose writes never raise once the other end has gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            self._lost()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._lost()

    def _lost(self) -> None:
        """Point the descriptor at /dev/null, so the buffered rest flushes without error."""
        with contextlib.suppress(OSError, ValueError):
            fd = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def keep_running_without_terminal() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` survive a closed terminal or pipe."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _Resilient):
            setattr(sys, name, _Resilient(stream))


def say(message: str) -> None:
    """One line for the person at the terminal (stderr); never raises."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)
