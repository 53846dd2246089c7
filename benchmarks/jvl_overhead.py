"""Per-point cost of a J-V-L point through labrig against a bare pyvisa loop sending the
same SCPI to the same simulated instruments.

The simulated 2400 and 6485 are served by ``labrig sim serve`` in their own process
(as instruments are), with instrument timing off (``clock_speed: .inf``), so what is
measured is software: labrig's path is procedure -> drivers -> pyvisa-py -> simulator,
plus photometry and the HDF5 store; the baseline is a loop of ``:SOURCE:VOLTAGE v``,
``:READ?`` (2400) and ``READ?`` (6485) on plain pyvisa-py sessions, parsing the floats.
Runs alternate labrig / bare; per-point times are medians of the steady state (first to
last row of each sweep), and the figure is their ratio, with its bootstrap 95 % interval
(whole sweeps swing by ~10 % on a shared 2-core machine).  Beside it: the spread of the
ratio run by run (each labrig sweep against the bare sweep right after it: min, median,
max, and in how many runs the target holds), and the client's CPU per point
(``time.process_time`` over the same rows; the instruments run in another process): on
a machine shared with other work the wall clock of both loops swings with the
scheduler, the CPU each spends per point much less.  The bare loop with Nagle's
algorithm the other way is timed once, on a short sweep, for context (~44 ms a point).

    .venv/bin/python benchmarks/jvl_overhead.py [--points 400] [--repeat 25] [--profile]
        [--critical-path]

Target: labrig / bare <= 1.10 (issue 21).  ``--profile`` prints where labrig's time goes (cProfile
of one labrig sweep, by own time) and its split per point by layer: the difference of two
profiled sweeps of different lengths, so start-up and shutdown cancel out (times under the
profiler, ~2x the real ones; the bare loop pays the sockets and pyvisa too).
``--critical-path`` times what only the client can shorten: from each reply's arrival
(pyvisa-py's ``select`` returning) to the next command's send, per instrument, labrig
against the bare loop in alternating sweeps.  The rest of a point is the instruments'
and the wake-ups', the same for both; work labrig does while an instrument measures
(the previous step's row and store) is not in it.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import itertools
import pstats
import select
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyvisa
from served import bench_config, ratio_interval, served_instruments, spread, timed_jvl

STEP_V = 0.005
#: labrig / bare per point (issue 21)
TARGET = 1.10
#: points of the one bare sweep with Nagle's algorithm the other way (~44 ms each when on)
OTHER_POINTS = 40


def sweep_settings(points: int) -> dict[str, object]:
    """The J-V-L parameters of a ``points``-point software-bound sweep."""
    return {
        "start_voltage": 0.0,
        "stop_voltage": round(STEP_V * (points - 1), 6),
        "step_voltage": STEP_V,
        "spectra": "none",
        "smu_nplc": 0.01,
        "photometer_nplc": 0.01,
        "source_delay": 0.0,
        "dark_readings": 2,
    }


def labrig_sweep(
    config: Path,
    out: Path,
    points: int,
    profile: cProfile.Profile | None,
    cpu: list[float] | None = None,
) -> float:
    """Seconds per point of a labrig J-V-L sweep (first row to last row)."""
    return timed_jvl(config, out, sweep_settings(points), profile, cpu)


def bare_sweep(
    resources: dict[str, str], points: int, nodelay: bool, cpu: list[float] | None = None
) -> float:
    """Seconds per point of the same SCPI sent from a plain pyvisa-py loop (``cpu``
    gets the CPU seconds per point)."""
    rm = pyvisa.ResourceManager("@py")
    smu = rm.open_resource(resources["smu"], read_termination="\n", write_termination="\n")
    pam = rm.open_resource(resources["photometer"], read_termination="\n", write_termination="\n")
    for inst in (smu, pam):  # pyvisa-py does not implement VI_ATTR_TCPIP_NODELAY
        sock = inst.visalib.sessions[inst.session].interface
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))
    try:
        smu.write(":SOURCE:VOLTAGE 0")
        smu.write(":OUTPUT 1")
        t0 = None
        for k in range(points):
            smu.write(f":SOURCE:VOLTAGE {k * STEP_V:g}")
            v, i, _, _, _ = (float(x) for x in smu.query(":READ?").split(","))
            light, _ = (float(x) for x in pam.query("READ?").split(","))
            if k == 0:
                t0, c0 = time.perf_counter(), time.process_time()
        elapsed = time.perf_counter() - t0
        if cpu is not None:
            cpu.append((time.process_time() - c0) / (points - 1))
        smu.write(":OUTPUT 0")
    finally:
        smu.close()
        pam.close()
        rm.close()
    return elapsed / (points - 1)


#: (layer, what a profiled function's file or name contains), first match wins
LAYERS = (
    ("sockets (select, send, recv)", ("select.select", "'send'", "'recv'")),
    ("pyvisa + pyvisa-py", ("/pyvisa/", "/pyvisa_py/")),
    ("pymeasure (adapter, properties)", ("/pymeasure/",)),
    ("labrig drivers", ("drivers/",)),
    ("J-V-L step + photometry", ("procedures/", "/analysis/")),
    (
        "records, dispatch, run state",
        ("labrig/procedure.py", "dispatch", "runner", "run_state", "records", "subscribers"),
    ),
    ("store + h5py", ("store/", "/h5py/")),
)


def _layer(func: tuple[str, int, str]) -> str:
    where = f"{func[0]}:{func[2]}"
    for name, marks in LAYERS:
        if any(mark in where for mark in marks):
            return name
    return "other (stdlib, builtins, benchmark)"


def profile_split(
    config: Path, tmp: Path, points: int
) -> tuple[collections.Counter[str], int, pstats.Stats]:
    """labrig's own time per point by layer (two profiled sweeps, the shorter one
    subtracted), the shorter sweep's length, and the longer sweep's profile."""
    short = max(20, points // 4)
    stats = {}
    for n in (short, points):
        profile = cProfile.Profile()
        labrig_sweep(config, tmp / f"profiled{n}", n, profile)
        stats[n] = pstats.Stats(profile)
    per_point: collections.Counter[str] = collections.Counter()
    for func, row in stats[points].stats.items():  # type: ignore[attr-defined]
        before = stats[short].stats.get(func, (0, 0, 0.0))  # type: ignore[attr-defined]
        per_point[_layer(func)] += (row[2] - before[2]) / (points - short)
    return per_point, short, stats[points]


@contextmanager
def socket_events() -> Iterator[list[tuple[int, str, int]]]:
    """Inside the block, every pyvisa-py ``select`` that ends a wait for a reply, and
    every one before a send, as (ns, "reply" or "send", socket fd)."""
    import pyvisa_py.tcpip

    events: list[tuple[int, str, int]] = []
    clock, real = time.perf_counter_ns, select.select

    class Recording:
        @staticmethod
        def select(r, w, x, *timeout):  # type: ignore[no-untyped-def]
            if w:  # pyvisa-py waits for a socket to be writable before each send
                events.append((clock(), "send", w[0].fileno()))
                return real(r, w, x, *timeout)
            ready = real(r, w, x, *timeout)
            if ready[0]:
                events.append((clock(), "reply", r[0].fileno()))
            return ready

    pyvisa_py.tcpip.select = Recording  # type: ignore[attr-defined]
    try:
        yield events
    finally:
        pyvisa_py.tcpip.select = select  # type: ignore[attr-defined]


def critical_path_us(events: list[tuple[int, str, int]], skip: int = 20) -> list[float]:
    """Median µs from a reply's arrival to the next send, per link (in the order the
    links were opened: the 2400's, then the 6485's), the first and last ``skip`` of each
    left out (start-up and shutdown)."""
    gaps: dict[int, list[float]] = collections.defaultdict(list)
    for (t0, kind0, fd), (t1, kind1, _) in itertools.pairwise(events):
        if kind0 == "reply" and kind1 == "send":
            gaps[fd].append((t1 - t0) / 1e3)
    return [statistics.median(g[skip:-skip]) for _, g in sorted(gaps.items()) if len(g) > 4 * skip]


def critical_path(
    config: Path, resources: dict[str, str], tmp: Path, points: int, nodelay: bool
) -> list[tuple[str, float, float]]:
    """Per link: its name, labrig's and the bare loop's time from a reply to the next send
    (µs, median of 5 sweeps each; the bare loop with Nagle's algorithm as labrig has it)."""
    labrig: list[list[float]] = []
    bare: list[list[float]] = []
    for k in range(5):
        with socket_events() as events:
            labrig_sweep(config, tmp / f"critical{k}", points, None)
        labrig.append(critical_path_us(events))
        with socket_events() as events:
            bare_sweep(resources, points, nodelay)
        bare.append(critical_path_us(events))
    names = ("after the 2400's reading", "after the 6485's reading")
    return [
        (
            name,
            statistics.median(run[link] for run in labrig),
            statistics.median(run[link] for run in bare),
        )
        for link, name in enumerate(names)
    ]


def _tcp_nodelay_in_drivers(resource: str) -> bool:
    """Whether labrig's 2400 driver has Nagle's algorithm off on its TCPIP SOCKET link
    (the bare loop is run the same way, and the other way for comparison)."""
    from labrig.drivers import keithley2400
    from labrig.drivers.visa import _socket_of

    smu = keithley2400.connect(resource)
    try:
        sock = _socket_of(smu.adapter)
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    finally:
        smu.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--critical-path", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with served_instruments(tmp) as resources:
            nodelay = _tcp_nodelay_in_drivers(resources["smu"])
            config = bench_config(tmp, resources)
            labrig_sweep(config, tmp / "warm-up", 20, None)  # imports, first connections
            labrig, bare = [], []
            cpu_labrig: list[float] = []
            cpu_bare: list[float] = []
            for k in range(args.repeat):
                labrig.append(labrig_sweep(config, tmp / f"run{k}", args.points, None, cpu_labrig))
                bare.append(bare_sweep(resources, args.points, nodelay, cpu_bare))
            med_o = bare_sweep(resources, OTHER_POINTS, not nodelay)
            profiled = profile_split(config, tmp, args.points) if args.profile else None
            links = (
                critical_path(config, resources, tmp, args.points, nodelay)
                if args.critical_path
                else []
            )
    med_l, med_b = statistics.median(labrig), statistics.median(bare)
    ratio, low, high = ratio_interval(labrig, bare)
    runs = [lab / b for lab, b in zip(labrig, bare, strict=True)]
    own = [(c_l - c_b) * 1e3 for c_l, c_b in zip(cpu_labrig, cpu_bare, strict=True)]
    same = "on" if nodelay else "off"
    print(f"J-V-L point overhead ({args.points} points, median of {args.repeat}, sim in its own")
    print("process, clock_speed .inf):")
    print(f"  labrig (procedure, drivers, store)  : {med_l * 1e3:7.3f} ms/point")
    print(f"  bare pyvisa-py loop, TCP_NODELAY {same:3s}: {med_b * 1e3:7.3f} ms/point")
    print(
        f"  ratio labrig/bare                   : {ratio:7.2f}   (95 % interval {low:.2f}-"
        f"{high:.2f}; target <= {TARGET:.2f})"
    )
    print(
        f"  run by run (labrig / the bare sweep after it): {spread(runs, '.2f')}; "
        f"<= {TARGET:.2f} in {sum(r <= TARGET for r in runs)} of {len(runs)} runs"
    )
    print(
        f"  (bare loop with TCP_NODELAY {'off' if nodelay else 'on'}, {OTHER_POINTS} points: "
        f"{med_o * 1e3:.3f} ms/point)"
    )
    cpu_l, cpu_b = statistics.median(cpu_labrig), statistics.median(cpu_bare)
    print(
        f"  client CPU per point: labrig {cpu_l * 1e3:.3f} ms, bare {cpu_b * 1e3:.3f} ms "
        f"(labrig's own work {(cpu_l - cpu_b) * 1e3:+.3f} ms a point = "
        f"{(cpu_l - cpu_b) / med_b:+.1%} of the bare loop's wall time per point)"
    )
    print(f"  labrig's own work run by run (ms a point): {spread(own, '+.3f')}")
    print("target met" if ratio <= TARGET else "TARGET NOT MET")
    if links:
        print("\nfrom a reply's arrival to the next send (median of 5 sweeps each, us):")
        for name, mine, theirs in links:
            print(f"  {name:26s}: labrig {mine:6.1f}, bare {theirs:6.1f} ({mine - theirs:+.1f})")
    if profiled is not None:
        per_point, short, stats = profiled
        print(f"\nlabrig's own time per point by layer (cProfile, {args.points} - {short} points):")
        for name, seconds in per_point.most_common():
            print(f"  {name:38s} {seconds * 1e6:7.1f} us")
        print(f"  {'total':38s} {sum(per_point.values()) * 1e6:7.1f} us")
        print("\nlabrig sweep profile (own time):")
        stats.sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
