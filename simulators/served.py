"""``labrig sim serve`` in a child process, for tests and benchmarks that need the
simulated instruments in another process, as at a real physics.

The child prints one line per served instrument (``  smu   TCPIP::127.0.0.1::PORT::SOCKET
(read_termination='\\n', write_termination='\\n')``, ``  lifetime  socket://127.0.0.1:PORT``)
and how their clock runs (``clock: real time x 1``); :func:`sim_serve` reads them, yields
what it read, and stops the child (SIGTERM; killed if it does not stop).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"\s+(\w+)\s+((?:TCPIP::|socket://)\S+)(?:\s+\((.*)\))?$")


@dataclass
class Served:
    """What the child serves: role -> VISA resource, role -> the terminations it printed."""

    pid: int
    resources: dict[str, str] = field(default_factory=dict)
    terminations: dict[str, str] = field(default_factory=dict)
    #: how the served instruments' time runs (``clock: real time x 3600``)
    clock: str = ""


@contextmanager
def sim_serve(
    config: str | Path = "sim", roles: Sequence[str] = ("smu", "photometer")
) -> Iterator[Served]:
    """Serve ``config``'s simulated instruments in a child process for the ``with``
    block, once ``roles`` are all listening."""
    log = tempfile.TemporaryFile(mode="w+")  # the child's log: never a pipe left to fill
    child = subprocess.Popen(
        [sys.executable, "-m", "labrig", "sim", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    served = Served(pid=child.pid)
    try:
        assert child.stdout is not None
        for line in child.stdout:
            found = _LINE.match(line.rstrip("\n"))
            if found:
                served.resources[found.group(1)] = found.group(2)
                served.terminations[found.group(1)] = found.group(3) or ""
            if line.startswith("clock:"):
                served.clock = line.strip()
            if set(roles) <= set(served.resources) and served.clock:
                break
        else:
            child.wait(timeout=10)
            log.seek(0)
            raise RuntimeError(f"labrig sim serve did not serve {', '.join(roles)}: {log.read()}")
        yield served
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        log.close()


def ask(resource: str, command: str) -> str:
    """One query of a served instrument by a third party (opened, asked, closed): what the
    instrument itself says, e.g. ``ask(resource, ":OUTP?")`` after a run let go of it."""
    import pyvisa

    rm = pyvisa.ResourceManager("@py")
    try:
        inst = rm.open_resource(
            resource, read_termination="\n", write_termination="\n", timeout=5000
        )
        try:
            return inst.query(command).strip()
        finally:
            inst.close()
    finally:
        rm.close()
