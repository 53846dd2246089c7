"""``labrig --help`` start-up time minus a bare interpreter's (``python -c pass``).

What a user feels on every command is the interpreter start plus labrig's imports; the
interpreter part is not labrig's to fix, so it is measured in the same run and
subtracted.  Runs are interleaved (labrig, bare, labrig, ...) and the medians compared,
so a burst of load on a shared machine hits both.

    .venv/bin/python benchmarks/cli_startup.py [--runs 9]

Target: median(labrig --help) - median(python -c pass) <= 0.3 s.  Also prints the
slowest imports of ``labrig --help`` (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = Path(sys.executable)
LABRIG = PYTHON.with_name("labrig")  # the console script users run


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _slowest_imports(n: int = 6) -> list[tuple[float, str]]:
    code = "import sys; from labrig.cli import main; sys.argv = ['labrig', '--help']; main()"
    proc = subprocess.run(
        [str(PYTHON), "-X", "importtime", "-c", code], capture_output=True, text=True
    )
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) <= 2:  # top-level imports only (cumulative time)
            rows.append((int(m.group(1)) / 1e6, m.group(3)))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    labrig_cmd = [str(LABRIG), "--help"] if LABRIG.exists() else [str(PYTHON), "-m", "labrig"]
    bare_cmd = [str(PYTHON), "-c", "pass"]
    _time(labrig_cmd), _time(bare_cmd)  # warm the page cache: "cold" = a new process
    labrig, bare = [], []
    for _ in range(args.runs):
        labrig.append(_time(labrig_cmd))
        bare.append(_time(bare_cmd))
    med_l, med_b = statistics.median(labrig), statistics.median(bare)
    extra = med_l - med_b
    print(f"cli start-up (median of {args.runs} interleaved runs):")
    print(f"  {' '.join(Path(c).name for c in labrig_cmd):25s}: {med_l:6.3f} s")
    print(f"  {'python -c pass':25s}: {med_b:6.3f} s")
    print(f"  labrig's own start-up    : {extra:6.3f} s   (target <= 0.3 s)")
    print("  slowest top-level imports of labrig --help (cumulative):")
    for seconds, module in _slowest_imports():
        print(f"    {seconds:6.3f} s  {module}")
    print("target met" if extra <= 0.3 else "TARGET NOT MET")


if __name__ == "__main__":
    main()
