"""A run-file writer in its own process, moved step by step by its parent (the catalogue
tests: a growing file must be watched from another process, as on a bench).

Usage: ``python stepped_writer.py OUTPUT_DIR``; prints the run file's path, then obeys
one command per stdin line, answering ``ok`` to each: ``rows N`` (append N rows and
flush), ``figure NAME VALUE`` (a figure in %), ``close`` (status finished; then exits).
"""

from __future__ import annotations

import sys
from pathlib import Path

from labrig.procedure import Column
from labrig.store import RunStore

COLUMNS = [Column("index", "", "row number", "i8"), Column("voltage", "V", "voltage")]


def main() -> None:
    store = RunStore.create(
        Path(sys.argv[1]),
        procedure="stepped",
        sample="growing",
        columns=COLUMNS,
        signal="voltage",
        axis="index",
        parameters={},
        config_text="name: stepped bench\n",
        resolved_config={"name": ("stepped bench", ""), "device": {"kind": ("led", "")}},
        simulated=True,
    )
    print(store.path, flush=True)
    done = 0
    for line in sys.stdin:
        command, *args = line.split()
        if command == "rows":
            n = int(args[0])
            store.append_rows({"index": range(done, done + n), "voltage": [0.5] * n})
            done += n
            store.flush()
        elif command == "figure":
            store.set_analysis({args[0]: (float(args[1]), "%")})
            store.flush()
        elif command == "close":
            store.close("finished")
            print("ok", flush=True)
            return
        print("ok", flush=True)


if __name__ == "__main__":
    main()
