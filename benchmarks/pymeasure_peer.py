"""labrig's J-V-L against a PyMeasure user's own stack, on the same served instruments.

The peer is what a PyMeasure user writes for the same sweep: a ``Procedure`` with
``DATA_COLUMNS``, pymeasure's stock ``Keithley2400``, a minimal 6485 ``Instrument``, and
``Worker`` + ``Results`` writing CSV.  Both send the same SCPI per point
(``:SOURCE:VOLTAGE v``, ``:READ?`` to the 2400, ``READ?`` to the 6485) with the same
instrument settings (NPLC 0.01, source delay 0) to ``labrig sim serve`` in its own process
(instrument timing off), with Nagle's algorithm off on both clients.  labrig runs its
default J-V-L with spectra off (dark readings, stop checks, photometry, HDF5 store).

Printed: per-point time (median over interleaved sweeps, first row to last row, in this
process), the ratio's bootstrap 95 % interval, the spread of the ratio sweep by sweep
(each labrig sweep against the peer sweep right after it) and in how many the target
holds; the client CPU per point of each
(``time.process_time`` over the same rows: every thread of the process, so the peer's
``Worker`` and its CSV recorder count as labrig's store flusher does); whole-process
time (spawn to exit, median) and peak RSS of each as a child process.

    .venv/bin/python benchmarks/pymeasure_peer.py [--points 400] [--repeat 25] [--process-repeat 3]

Targets: per point <= 1.0x the peer, whole process <= 1.0x, labrig peak RSS <= 120 MB.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# ``served`` (labrig's side) is imported where labrig runs, never in the peer's own
# process: importing labrig defers pandas (``labrig.deferred``), which a PyMeasure user's
# process does not get

STEP_V = 0.005
NPLC = 0.01
TARGET_RSS_MB = 120.0
GNU_TIME = "/usr/bin/time"


# ----------------------------------------------------------------------------- the peer
def _peer_classes():
    """The peer's Procedure and 6485, as a PyMeasure user would write them (imported
    only when the peer runs, so labrig's own timings do not carry pymeasure's GUI side)."""
    from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter, Procedure
    from pymeasure.instruments import Instrument
    from pymeasure.instruments.keithley import Keithley2400

    def _nodelay(instrument) -> None:
        # pyvisa-py leaves Nagle on for SOCKET sessions; the peer gets what labrig has
        session = instrument.adapter.connection
        sock = session.visalib.sessions[session.session].interface
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    class Keithley6485(Instrument):
        current = Instrument.measurement(
            "READ?", "Photocurrent in A.", get_process_list=lambda v: v[0]
        )
        nplc = Instrument.control(":SENS:CURR:NPLC?", ":SENS:CURR:NPLC %g", "NPLC.")

    class PeerJVL(Procedure):
        smu_resource = Parameter("SMU resource")
        photometer_resource = Parameter("Photometer resource")
        points = IntegerParameter("Points", default=400)
        step = FloatParameter("Step", units="V", default=STEP_V)
        DATA_COLUMNS = ["Voltage (V)", "Current (A)", "Photocurrent (A)"]
        stamps: list[float] = []
        cpu_stamps: list[float] = []

        def startup(self):
            kw = {"read_termination": "\n", "write_termination": "\n"}
            self.smu = Keithley2400(self.smu_resource, **kw)
            self.pam = Keithley6485(self.photometer_resource, "Keithley 6485", **kw)
            for inst in (self.smu, self.pam):
                _nodelay(inst)
            self.smu.apply_voltage(compliance_current=0.1)
            self.smu.current_nplc = NPLC  # pymeasure 0.16's way (measure_current is deprecated)
            self.smu.current_range_auto_enabled = True
            self.smu.source_delay = 0.0
            self.pam.nplc = NPLC
            self.smu.source_voltage = 0.0
            self.smu.enable_source()

        def execute(self):
            for k in range(self.points):
                self.smu.source_voltage = round(k * self.step, 6)
                v, i = self.smu.values(":READ?")[:2]
                light = self.pam.current
                self.emit(
                    "results",
                    {"Voltage (V)": v, "Current (A)": i, "Photocurrent (A)": light},
                )
                self.stamps.append(time.perf_counter())
                self.cpu_stamps.append(time.process_time())
                self.emit("progress", 100 * (k + 1) / self.points)
                if self.should_stop():
                    break

        def shutdown(self):
            if hasattr(self, "smu"):
                self.smu.disable_source()
                self.smu.adapter.close()
                self.pam.adapter.close()

    return PeerJVL


def peer_sweep(
    resources: dict[str, str], out: Path, points: int, cpu: list[float] | None = None
) -> float:
    """Seconds per point of the PyMeasure user's sweep (first row to last row); ``cpu``
    gets the process's CPU seconds per point over the same rows (every thread)."""
    from pymeasure.experiment import Results, Worker

    procedure = _peer_classes()()
    procedure.smu_resource = resources["smu"]
    procedure.photometer_resource = resources["photometer"]
    procedure.points = points
    procedure.stamps = []
    procedure.cpu_stamps = []
    out.mkdir(parents=True, exist_ok=True)
    results = Results(procedure, str(out / "peer.csv"))
    worker = Worker(results)
    worker.start()
    worker.join(timeout=600)
    stamps = procedure.stamps
    if len(stamps) != points:
        raise RuntimeError(f"peer sweep: {len(stamps)} of {points} rows")
    if cpu is not None:
        cpu.append((procedure.cpu_stamps[-1] - procedure.cpu_stamps[0]) / (points - 1))
    return (stamps[-1] - stamps[0]) / (points - 1)


# ----------------------------------------------------------------------------- labrig
def labrig_settings(points: int) -> dict[str, object]:
    """labrig's default J-V-L with spectra off, at the peer's instrument settings."""
    return {
        "start_voltage": 0.0,
        "stop_voltage": round(STEP_V * (points - 1), 6),
        "step_voltage": STEP_V,
        "spectra": "none",
        "smu_nplc": NPLC,
        "photometer_nplc": NPLC,
        "source_delay": 0.0,
    }


def labrig_sweep(config: Path, out: Path, points: int, cpu: list[float] | None = None) -> float:
    """Seconds per point of labrig's J-V-L (first row to last row; ``cpu`` as the peer's)."""
    from served import timed_jvl

    return timed_jvl(config, out, labrig_settings(points), cpu=cpu)


# ----------------------------------------------------------------------------- processes
def _child(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process from spawn to exit.

    The peak RSS comes from GNU time (Debian's ``time`` package), not from this process's
    ``wait4``: Linux carries a forking parent's RSS high-water mark into the child's
    ``ru_maxrss`` across exec, so every child of this ~120 MB process would read ~120 MB.
    """
    if not Path(GNU_TIME).exists():
        raise SystemExit(f"{GNU_TIME} is needed for the peak RSS: apt-get install time")
    t0 = time.perf_counter()
    done = subprocess.run(
        [GNU_TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return wall, int(done.stderr.split()[-1]) / 1024


def labrig_process(config: Path, out: Path, points: int) -> tuple[float, float]:
    argv = [sys.executable, "-m", "labrig", "run", "jvl", "--config", str(config)]
    argv += ["-o", str(out), "--no-progress"]
    for name, value in labrig_settings(points).items():
        argv += ["--set", f"{name}={value}"]
    return _child(argv)


def peer_process(resources: dict[str, str], out: Path, points: int) -> tuple[float, float]:
    argv = [sys.executable, __file__, "--as-peer", resources["smu"], resources["photometer"]]
    argv += ["--points", str(points), "--out", str(out)]
    return _child(argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=25, help="interleaved sweeps each")
    parser.add_argument(
        "--process-repeat", type=int, default=3, help="whole processes each (~2 s apiece)"
    )
    parser.add_argument("--as-peer", nargs=2, metavar=("SMU", "PHOTOMETER"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_peer:  # the peer's whole process, spawned by the benchmark
        smu, pam = args.as_peer
        peer_sweep({"smu": smu, "photometer": pam}, args.out, args.points)
        assert "labrig" not in sys.modules, "the peer's process must not import labrig"
        return
    from served import bench_config, ratio_interval, served_instruments, spread

    with tempfile.TemporaryDirectory() as tmp_name, served_instruments(Path(tmp_name)) as res:
        tmp = Path(tmp_name)
        config = bench_config(tmp, res)
        labrig_sweep(config, tmp / "warm-up", 20)  # imports, first connections
        peer_sweep(res, tmp / "warm-up-peer", 20)
        per_point: dict[str, list[float]] = {"labrig": [], "peer": []}
        cpu: dict[str, list[float]] = {"labrig": [], "peer": []}
        process: dict[str, list[tuple[float, float]]] = {"labrig": [], "peer": []}
        for k in range(args.repeat):
            per_point["labrig"].append(
                labrig_sweep(config, tmp / f"l{k}", args.points, cpu["labrig"])
            )
            per_point["peer"].append(peer_sweep(res, tmp / f"p{k}", args.points, cpu["peer"]))
        for k in range(args.process_repeat):
            process["labrig"].append(labrig_process(config, tmp / f"lp{k}", args.points))
            process["peer"].append(peer_process(res, tmp / f"pp{k}", args.points))
    pp = {who: statistics.median(t) for who, t in per_point.items()}
    _, low, high = ratio_interval(per_point["labrig"], per_point["peer"])
    runs = [lab / peer for lab, peer in zip(per_point["labrig"], per_point["peer"], strict=True)]
    cpu_pp = {who: statistics.median(c) for who, c in cpu.items()}
    wall = {who: statistics.median(w for w, _ in runs) for who, runs in process.items()}
    rss = {who: max(m for _, m in runs) for who, runs in process.items()}
    ratios = {"per point": pp["labrig"] / pp["peer"], "process": wall["labrig"] / wall["peer"]}
    print(
        f"J-V-L, {args.points} points, labrig vs a PyMeasure user's stack, median of "
        f"{args.repeat} sweeps and {args.process_repeat} processes each (sim served in its "
        "own process, clock_speed .inf):"
    )
    print(
        f"  per point      : labrig {pp['labrig'] * 1e3:6.3f} ms, peer {pp['peer'] * 1e3:6.3f}"
        f" ms -> {ratios['per point']:.2f}x (95 % interval {low:.2f}-{high:.2f}; target <= 1.0)"
    )
    print(
        f"    sweep by sweep (labrig / the peer sweep after it): {spread(runs, '.2f')}; "
        f"<= 1.0 in {sum(r <= 1.0 for r in runs)} of {len(runs)}"
    )
    print(
        f"    client CPU per point: labrig {cpu_pp['labrig'] * 1e3:.3f} ms, peer "
        f"{cpu_pp['peer'] * 1e3:.3f} ms (every thread) -> "
        f"{cpu_pp['labrig'] / cpu_pp['peer']:.2f}x"
    )
    print(
        f"  whole process  : labrig {wall['labrig']:6.2f} s,  peer {wall['peer']:6.2f} s"
        f"  -> {ratios['process']:.2f}x (target <= 1.0)"
    )
    print(
        f"  peak RSS       : labrig {rss['labrig']:6.1f} MB, peer {rss['peer']:6.1f} MB"
        f" (target labrig <= {TARGET_RSS_MB:g} MB)"
    )
    met = max(ratios.values()) <= 1.0 and rss["labrig"] <= TARGET_RSS_MB
    print("targets met" if met else "TARGETS NOT MET")


if __name__ == "__main__":
    main()
