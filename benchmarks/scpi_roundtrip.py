"""Write-then-query round trip of a stock pyvisa-py client against the SCPI server.

A client that writes a setting and then queries (``inst.write(":SOUR:VOLT 1")`` then
``inst.query(":SOUR:VOLT?")``) leaves Nagle's algorithm on (pyvisa-py does): its query
waits for the ACK of the write, which a server in delayed-ACK mode holds ~40 ms.  The
server now sets ``TCP_NODELAY`` and re-arms ``TCP_QUICKACK`` on its accepted sockets
(``labrig.simulators.server.tune_socket``).  Baseline, in the same run: the same server
with those socket options switched off (patched out here only).

    .venv/bin/python benchmarks/scpi_roundtrip.py [--pairs 200]

Target: < 1 ms per write + query with the options on.  Prints both and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pyvisa

from labrig.config import load_config
from labrig.simulators import server as server_module
from labrig.simulators.keithley2400 import SimulatedKeithley2400
from labrig.simulators.physics import CoupledPhysics


@contextmanager
def _served(tuned: bool) -> Iterator[str]:
    smu = SimulatedKeithley2400(CoupledPhysics(load_config("sim")))
    with contextlib.ExitStack() as stack:
        if not tuned:
            stack.enter_context(mock.patch.object(server_module, "tune_socket", _off))
            stack.enter_context(mock.patch.object(server_module, "_quickack", _off))
        with server_module.SCPIServer(smu) as srv:
            yield srv.resource


def _off(sock: object) -> None:
    """The baseline server: no socket options."""


def _per_pair_ms(resource: str, pairs: int) -> float:
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(resource, read_termination="\n", write_termination="\n")
    try:
        inst.query("*IDN?")
        times = []
        for k in range(pairs):
            t0 = time.perf_counter()
            inst.write(f":SOUR:VOLT {0.001 * (k % 7)}")
            inst.query(":SOUR:VOLT?")
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3
    finally:
        inst.close()
        rm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    with _served(tuned=False) as resource:
        before = _per_pair_ms(resource, max(20, args.pairs // 10))  # ~44 ms each: fewer
    with _served(tuned=True) as resource:
        after = _per_pair_ms(resource, args.pairs)
    print(f"stock pyvisa-py write + query, median: server without socket options {before:.2f} ms")
    print(f"                                        server with NODELAY/QUICKACK  {after:.3f} ms")
    print(
        f"ratio before/after: {before / after:.0f}x   target < 1 ms: {'met' if after < 1 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
