"""A dead man's switch for the sources a RunEngine process drives.

Nothing runs in a process that is killed (``kill -9``, the out-of-memory killer), so the
process that holds the instruments cannot turn them off itself.  ``Guard.start`` spawns
a small watcher in its own session (a Ctrl-C at the terminal does not reach it) holding
the read end of a pipe.  The link writes ``disarm`` and closes the pipe once its own
safe shutdown confirmed every output off; if the pipe closes without it -- the process
died, however -- the watcher runs ``labrig safe-off`` for the watched roles (the kernel
has closed the dead process's connections, so the instruments take a new client),
retrying while an instrument still refuses, and prints one line per role.

Run as ``python -m labrig.bluesky.guard CONFIG ROLE...``; it imports only labrig's core.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from labrig import registry
from labrig.config import BenchConfig, load_config
from labrig.safe_off import safe_off

DISARM = b"disarm"
#: safe-off attempts after the watched process died, and the pause between them, s
ATTEMPTS, RETRY_S = 10, 0.5


def watched_roles(config: BenchConfig, roles: Iterable[str]) -> list[str]:
    """The roles a guard must turn off: real sources (a simulated one in this process
    dies with it)."""
    return [
        r
        for r in roles
        if registry.driver(config.instruments[r].driver).source
        and not config.instruments[r].simulated
    ]


@dataclass
class Guard:
    """The watcher of one bench link."""

    process: subprocess.Popen
    config_file: Path | None  # a copy of an in-memory config, removed on disarm

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, config: BenchConfig, roles: Sequence[str]) -> Guard:
        copy: Path | None = None
        path = config.source_path
        if not path:
            fd, name = tempfile.mkstemp(prefix="labrig-guard-", suffix=".yaml")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(config.source_text)
            path, copy = name, Path(name)
        process = subprocess.Popen(
            [sys.executable, "-m", "labrig.bluesky.guard", str(path), *roles],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        return cls(process, copy)

    def disarm(self) -> None:
        """The outputs are confirmed off: let the watcher go without touching them."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(DISARM)
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait(timeout=30)
        if self.config_file is not None:
            self.config_file.unlink(missing_ok=True)


def watch(config_path: str, roles: Sequence[str]) -> int:
    """Wait for the watched process to close the pipe; turn ``roles`` off unless it
    disarmed the guard.  Exit 0 when nothing was needed or every output is confirmed off."""
    said = sys.stdin.buffer.read()  # returns when the pipe closes, however the writer ended
    if said == DISARM:
        return 0
    config = load_config(config_path)
    needed = set(registry.with_parts(config, roles))
    config = config.model_copy(
        update={"instruments": {r: i for r, i in config.instruments.items() if r in needed}}
    )
    states = []
    for _attempt in range(ATTEMPTS):
        states = safe_off(config)
        if all(s.off for s in states):
            break
        time.sleep(RETRY_S)
    for state in states:
        print(f"labrig guard: {state.line()}", file=sys.stderr, flush=True)
    return 0 if all(s.off for s in states) else 1


if __name__ == "__main__":
    sys.exit(watch(sys.argv[1], sys.argv[2:]))
