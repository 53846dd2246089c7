"""Fault-injection matrix: every procedure x every fault the simulators can inject.

Each case runs a real procedure through the runner, the real drivers and pyvisa-py /
pyserial to the simulated instruments over loopback, with one fault armed in the config
(``simulation.faults``) or a signal delivered from the simulator's thread while the run
waits on the instrument (``pthread_kill`` to the main thread, so it lands inside a
blocked read, as a Ctrl-C at the bench does).  Whatever the fault, three things must hold:

1. every source output is off -- asked of the simulators themselves (the 2400's
   ``:OUTP?`` and its bench's operating point; every rig channel), not of the drivers;
2. the file opens with its status and, unless it finished, a reason naming the fault;
3. no completed row is lost: the rows in the file equal the rows the procedure emitted
   (counted by a wrapper around ``emit_row``/``emit_rows``), and for J-V-L also the steps
   it completed (both readings taken), so a row still waiting for its spectrum counts.
"""

from __future__ import annotations

import collections
import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from labrig import registry
from labrig.bench import Bench
from labrig.config import BenchConfig, parse_config, shipped_config_dir
from labrig.runner import run_procedure
from labrig.store import read_run

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


# ----------------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Plan:
    """How to run one procedure small and fast on the simulated bench."""

    name: str  # registry name
    base: str  # shipped config
    roles: tuple[str, ...]
    params: dict[str, Any]
    instrument: dict[str, Any] = field(default_factory=dict)  # extra keys for every role
    source: str = "smu"  # role whose simulator counts readings (faults, signals)
    replace: dict[str, dict[str, Any]] = field(default_factory=dict)  # roles configured anew


PLANS = {
    "jvl": Plan(
        "jvl",
        "sim",
        ("smu", "photometer", "spectrometer"),
        # spectra every 4 steps: rows wait for the next spectrum, so a fault between two
        # spectra tests the shutdown's flush of pending rows
        dict(
            stop_voltage=4.0,
            step_voltage=0.25,
            spectra="every_n_steps",
            spectrum_interval=4,
            smu_nplc=0.01,
            photometer_nplc=0.01,
            source_delay=0.0,
            dark_readings=3,
        ),
    ),
    "solar-jv": Plan("solar-jv", "solar_sim", ("smu",), dict(nplc=0.01)),
    "pulsed-el": Plan(
        "pulsed-el",
        "sim",
        ("smu", "photometer"),
        # 6 widths x (4 timing cycles + 5 pulses) on the 2400, then 3 DC points
        dict(
            drive_levels="0.004", pulses_per_point=5, rest=0.0, dc_reference="measure", dc_dwell=0.1
        ),
    ),
    "lifetime": Plan(
        "lifetime",
        "sim",
        ("lifetime",),
        dict(
            channels="1,2",
            drive="current density",
            levels="50",
            max_duration=0.05,
            settle_time=1.0,
            first_interval=1.0,
        ),
        instrument={"channels": 2},
        source="lifetime",
    ),
    # the same procedure on the one-channel rig made of the 2400 and the 6485
    "lifetime-2400": Plan(
        "lifetime",
        "sim",
        ("smu", "photometer", "lifetime"),
        dict(
            drive="current density",
            levels="10",
            max_duration=0.02,
            settle_time=1.0,
            first_interval=1.0,
            max_interval=5.0,
        ),
        replace={"lifetime": {"driver": "smu_photometer", "simulated": True}},
    ),
}


@dataclass(frozen=True)
class Case:
    procedure: str
    fault: str
    spec: dict[str, Any] | None  # a FaultSpec armed in the config, or None (a signal)
    role: str  # the instrument that fails
    status: str
    reason: str | None  # a substring of the recorded reason (None: there is none)
    noted: str | None = None  # a log kind the file must hold (the fault was noticed)


def _comm(procedure: str, role: str, after_messages: int, after_readings: int) -> list[Case]:
    return [
        Case(procedure, "timeout", {"kind": "timeout", "after": after_messages}, role, "failed",
             "TimeoutError"),
        Case(procedure, "garbled", {"kind": "garbled", "after": after_messages}, role, "failed",
             "GarbledReplyError"),
        Case(procedure, "disconnect", {"kind": "disconnect", "after": after_readings}, role,
             "failed", "DisconnectedError"),
    ]  # fmt: skip


def _signals(procedure: str, role: str, at: int) -> list[Case]:
    return [
        Case(procedure, name, {"signal": name, "at": at}, role, "aborted", f"interrupted by {name}")
        for name in SIGNALS
    ]


CASES: list[Case] = [
    # J-V-L: the 2400 stepping point by point, the 6485 reading each step
    *_comm("jvl", "smu", after_messages=40, after_readings=6),
    Case("jvl", "short", {"kind": "short", "after": 6}, "smu", "finished", None),
    Case("jvl", "open", {"kind": "open", "after": 6}, "smu", "finished", None),
    Case("jvl", "photometer time-out", {"kind": "timeout", "after": 30}, "photometer", "failed",
         "TimeoutError"),
    Case("jvl", "overrange", {"kind": "overrange", "after": 8}, "photometer", "failed",
         "OverRangeError"),
    *_signals("jvl", "smu", at=8),
    # solar J-V: four 41-point list sweeps, each one :READ?; faults land inside the second
    *_comm("solar-jv", "smu", after_messages=30, after_readings=60),
    Case("solar-jv", "short", {"kind": "short", "after": 60}, "smu", "finished", None),
    Case("solar-jv", "open", {"kind": "open", "after": 60}, "smu", "finished", None),
    *_signals("solar-jv", "smu", at=60),
    # pulsed EL: auto-off pulse trains on the 2400, the 6485 triggered inside each pulse
    *_comm("pulsed-el", "smu", after_messages=45, after_readings=20),
    Case("pulsed-el", "short", {"kind": "short", "after": 20}, "smu", "finished", None, "short"),
    Case("pulsed-el", "open", {"kind": "open", "after": 20}, "smu", "finished", None),
    Case("pulsed-el", "overrange", {"kind": "overrange", "after": 12}, "photometer", "failed",
         "OverRangeError"),
    *_signals("pulsed-el", "smu", at=20),
    # lifetime: two rig channels over pyserial; a dropped link is waited out and resumed,
    # a failed device ends only its own channel
    Case("lifetime", "timeout", {"kind": "timeout", "after": 30}, "lifetime", "failed",
         "TimeoutError"),
    Case("lifetime", "garbled", {"kind": "garbled", "after": 30}, "lifetime", "failed",
         "GarbledReplyError"),
    Case("lifetime", "disconnect", {"kind": "disconnect", "after": 30}, "lifetime", "finished",
         None),
    Case("lifetime", "short", {"kind": "short", "after": 3, "channel": 1}, "lifetime", "finished",
         None),
    Case("lifetime", "open", {"kind": "open", "after": 3, "channel": 2}, "lifetime", "finished",
         None),
    *_signals("lifetime", "lifetime", at=30),
    # lifetime on the 2400 + 6485: a lost link is not waited out (no rig to reconnect to)
    *_comm("lifetime-2400", "smu", after_messages=40, after_readings=10),
    Case("lifetime-2400", "short", {"kind": "short", "after": 10}, "smu", "finished", None),
    Case("lifetime-2400", "open", {"kind": "open", "after": 10}, "smu", "finished", None),
    Case("lifetime-2400", "overrange", {"kind": "overrange", "after": 14}, "photometer", "failed",
         "OverRangeError"),
    *_signals("lifetime-2400", "smu", at=10),
]  # fmt: skip


# ----------------------------------------------------------------------------- machinery
def _config(plan: Plan, case: Case) -> BenchConfig:
    data = yaml.safe_load((shipped_config_dir() / f"{plan.base}.yaml").read_text())
    data["instruments"] = {role: data["instruments"][role] for role in plan.roles}
    data["instruments"].update(plan.replace)
    # short only where an instrument falls silent (a time-out case costs a few of these):
    # elsewhere a reply slowed by a loaded machine must not turn the fault into a time-out
    silent = case.spec is not None and case.spec.get("kind") == "timeout"
    for inst in data["instruments"].values():
        if inst["driver"] not in ("usb2000plus", "smu_photometer"):
            inst["timeout_s"] = 0.3 if silent else 5.0
        inst.update(plan.instrument)
    if case.spec is not None and "kind" in case.spec:
        data["simulation"]["faults"] = {case.role: [case.spec]}
    return parse_config(data)


def _counting(cls: type) -> type:
    """``cls`` with every emitted row (and, for J-V-L, every completed step) counted."""

    def emit_row(self, values, group=None):
        self.counted[group or "data"] += 1
        super(counting, self).emit_row(values, group)

    def emit_rows(self, columns, group=None):
        self.counted[group or "data"] += max((len(v) for v in columns.values()), default=0)
        super(counting, self).emit_rows(columns, group)

    namespace: dict[str, Any] = {"emit_row": emit_row, "emit_rows": emit_rows}
    if hasattr(cls, "_step_done"):  # J-V-L: both readings of the step are in

        def _step_done(self, step, rising):
            self.completed += 1
            return super(counting, self)._step_done(step, rising)

        namespace["_step_done"] = _step_done
    counting = type(f"Counting{cls.__name__}", (cls,), namespace)
    return counting


class _Watched(Bench):
    """A Bench that keeps its simulated lab for the checks (``Bench.simulation`` is
    cleared on close) and delivers the case's signal from a simulator thread."""

    def __init__(self, config, roles, *, case: Case, plan: Plan, seen: dict) -> None:
        super().__init__(config, roles)
        self._case, self._plan, self._seen = case, plan, seen

    def open(self) -> None:
        super().open()
        self._seen["lab"] = self.simulation
        spec = self._case.spec or {}
        if "signal" in spec:
            _signal_after(self.simulation.instruments[self._plan.source], spec, self._seen)


def _signal_after(sim: Any, spec: dict, seen: dict) -> None:
    """Send the signal to the main thread when the simulator handles its ``at``-th
    reading (2400) or command (rig): the run is then blocked waiting for the reply."""
    main = threading.main_thread().ident
    count = [0]

    def fire() -> None:
        count[0] += 1
        if count[0] == spec["at"]:
            seen["signalled"] = True
            signal.pthread_kill(main, SIGNALS[spec["signal"]])

    if hasattr(sim, "faults"):  # a SCPI instrument: count readings
        original = sim.faults.on_reading

        def on_reading() -> None:
            fire()
            original()

        sim.faults.on_reading = on_reading
    else:  # the lifetime rig: count commands
        original_handle = sim.handle

        def handle(line: str) -> str | None:
            fire()
            return original_handle(line)

        sim.handle = handle


def _outputs_on(lab: Any) -> list[str]:
    """Every source output the simulators still have on (empty: all safe)."""
    on = []
    for role, sim in lab.instruments.items():
        if sim.__class__.__name__ == "SimulatedKeithley2400":
            if sim.handle(":OUTP?") != "0":
                on.append(f"{role} :OUTP? {sim.handle(':OUTP?')}")
        if hasattr(sim, "n_channels"):  # lifetime rig
            for n in range(1, sim.n_channels + 1):
                ch = sim._chan(n)
                if ch.output_on or ch.physics.operating_point.output_on:
                    on.append(f"{role} channel {n}")
    if lab.physics.operating_point.output_on:
        on.append("bench operating point output_on")
    return on


def _rows(run: Any) -> dict[str, int]:
    return {g: len(next(iter(cols.values()))[0]) for g, cols in run.columns.items() if cols}


def _ids(case: Case) -> str:
    return f"{case.procedure}-{case.fault}".replace(" ", "_")


# ----------------------------------------------------------------------------- the matrix
@pytest.fixture(autouse=True)
def _signals_restored():
    before = {s: signal.getsignal(s) for s in SIGNALS.values()}
    yield
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_fault_leaves_outputs_off_file_readable_rows_kept(case: Case, tmp_path: Path, caplog):
    plan = PLANS[case.procedure]
    if registry.find_measurement(plan.name) not in registry.measurements():
        pytest.skip(f"procedure {plan.name} not installed yet")
    config = _config(plan, case)
    proc = _counting(registry.measurement(plan.name).procedure_class())()
    proc.counted = collections.Counter()
    proc.completed = 0
    proc.set_parameters(plan.params)
    seen: dict[str, Any] = {}

    def factory(cfg, roles):
        return _Watched(cfg, roles, case=case, plan=plan, seen=seen)

    with caplog.at_level(logging.CRITICAL):  # the expected failures are logged; keep quiet
        result = run_procedure(
            proc, config, output_dir=tmp_path, progress=False, bench_factory=factory
        )

    # 1. every output off, on the simulators' side
    lab = seen["lab"]
    assert _outputs_on(lab) == [], f"outputs left on: {_outputs_on(lab)}"
    assert not lab.servers  # the simulated lab was stopped
    if case.spec and "signal" in case.spec:
        assert seen.get("signalled"), "the signal was never sent: the run ended too early"

    # 2. the file opens, with its status and reason
    run = read_run(result.path)
    assert (run.status, run.abort_reason) == (result.status, result.reason)
    assert run.end_time is not None
    assert result.status == case.status, result.reason
    if case.reason is None:
        assert result.reason is None
    else:
        assert case.reason in (result.reason or ""), result.reason
    if result.status == "failed":
        assert any(e.kind == "error" for e in run.log)
    if case.noted is not None:
        assert [e.kind for e in run.log].count(case.noted) == 1, [e.kind for e in run.log]

    # 3. nothing completed is lost
    rows = _rows(run)
    emitted = {g: proc.counted.get(g, 0) for g in rows}
    assert rows == emitted
    assert sum(rows.values()) > 0, "the fault struck before any row: the case tests nothing"
    if case.procedure == "jvl":
        assert rows["data"] == proc.completed
