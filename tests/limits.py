"""Process limits for tests that run labrig as a real child process."""

from __future__ import annotations

import resource
import signal
from collections.abc import Callable


def file_size_limit(limit: int) -> Callable[[], None]:
    """preexec_fn: the child may write files of at most ``limit`` bytes; SIGXFSZ ignored
    so a write past it fails with EFBIG, as a full disk fails with ENOSPC."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply
