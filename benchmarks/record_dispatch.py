"""What a run's records cost per row: J-V-L rows emitted by a procedure
(``emit_row`` -> ``Row`` record -> the runner's dispatcher -> the HDF5 writer, the
figures collector and the standard progress and log subscribers, each delivery inside
the signal-deferring block) against the same rows appended to ``RunStore`` directly,
measured in the same run.

    .venv/bin/python benchmarks/record_dispatch.py [--rows 100000] [--repeat 3]

Target: records / direct >= 0.5, i.e. the record path adds at most what the store itself
costs per row (a J-V-L point costs ~1 ms of instrument time, a lifetime sample ~0.7 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_throughput import _rows, _store, labrig_rows  # noqa: E402

from labrig.procedures.jvl import JVLProcedure  # noqa: E402
from labrig.run_state import StopControl  # noqa: E402
from labrig.runner import run_dispatcher  # noqa: E402
from labrig.subscribers import standard_subscribers  # noqa: E402


def through_records(out: Path, rows: list[dict]) -> float:
    store = _store(out)
    dispatcher = run_dispatcher(store, standard_subscribers(False), {})
    control = StopControl()

    def publish(record) -> None:  # as the runner's
        with control.deferred():
            dispatcher.publish(record)

    proc = JVLProcedure()
    proc.connect(publish, control.should_stop)
    proc._expected_rows = len(rows)  # progress derived from rows, as in a run
    t0 = time.perf_counter()
    for row in rows:
        proc.emit_row(row)
    store.flush()
    elapsed = time.perf_counter() - t0
    store.close("finished")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = _rows(args.rows)
    base, rec = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            base.append(len(rows) / labrig_rows(Path(tmp), rows))  # seconds
        with tempfile.TemporaryDirectory() as tmp:
            rec.append(through_records(Path(tmp), rows))
    b, r = statistics.median(base), statistics.median(rec)
    n = args.rows
    print(f"  RunStore.append_row directly : {n / b:10,.0f} rows/s")
    print(f"  through the run's records    : {n / r:10,.0f} rows/s")
    print(f"  added per row                : {(r - b) / n * 1e6:10.1f} us")
    ratio = b / r
    print(f"  ratio records/direct         : {ratio:10.2f}   (target >= 0.5)")
    print("target met" if ratio >= 0.5 else "TARGET NOT MET")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
