"""A run-file writer in its own process, for the crash and live-read tests.

Usage: ``python writer_proc.py OUTPUT_DIR MODE [SECONDS]``

* ``stream``: append one row every ~0.2 ms for SECONDS, then close the run ``finished``;
* ``forever``: append rows until killed;
* ``burst``: append 1000 rows at once, print ``appended``, then block without writing
  (the background flush alone must bring them to disk).
* ``fill``: append batches of SECONDS rows (one flush each) until the store refuses
  (a full disk), close the run as the runner does, print ``stopped ROWS``, exit 1.

Prints the run file's path on the first line, so the parent can open it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from labrig.errors import StoreWriteError
from labrig.procedure import Column
from labrig.store import RunStore

COLUMNS = [
    Column("index", "", "row number", "i8"),
    Column("t", "s", "wall time at append (Unix epoch)"),
    Column("voltage_v", "V", "voltage"),
]


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3600.0
    store = RunStore.create(
        out,
        procedure="crashtest",
        sample="proc-writer",
        columns=COLUMNS,
        signal="voltage_v",
        axis="index",
        parameters={"mode": (mode, "")},
        config_text="name: test\n",
        simulated=True,
    )
    print(store.path, flush=True)
    if mode == "burst":
        for i in range(1000):
            store.append_row({"index": i, "t": time.time(), "voltage_v": 0.001 * i})
        print("appended", flush=True)
        time.sleep(seconds)
        return
    if mode == "fill":
        i, batch = 0, int(seconds)
        try:
            while True:
                rows = range(i, i + batch)
                store.append_rows({"index": rows, "t": [time.time()] * batch, "voltage_v": rows})
                i += batch
                store.flush()
        except StoreWriteError as exc:
            store.close("failed", f"StoreWriteError: {exc}")
        print("stopped", i, flush=True)
        sys.exit(1)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        store.append_row({"index": i, "t": time.time(), "voltage_v": 0.001 * i})
        i += 1
        time.sleep(0.0002)
    store.close("finished")
    print("closed", i, flush=True)


if __name__ == "__main__":
    main()
