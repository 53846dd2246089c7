"""Bench lifecycle: open all or nothing; every way out leaves sources off and links closed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labrig.bench import Bench
from labrig.clock import WallClock
from labrig.errors import (
    ConfigError,
    InstrumentError,
    InstrumentNotFoundError,
    InstrumentTimeoutError,
    RunAborted,
    SafetyLimitError,
)

# the recording fakes live next to this file; importable in any pytest import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fakes import FakePicoammeter, FakeSMU, fake_config, make_opener  # noqa: E402


@pytest.fixture
def rig():
    events: list = []
    smu, pam = FakeSMU(events), FakePicoammeter(events)
    return events, smu, pam, make_opener({"smu": smu, "photometer": pam})


def test_normal_exit_turns_sources_off_first_and_closes_all(rig) -> None:
    events, smu, pam, opener = rig
    with Bench(fake_config(), ["photometer", "smu"], opener=opener) as bench:
        assert bench.smu is smu and bench.photometer is pam
        assert bench.spectrometer is None and not bench.has("lifetime")
        assert isinstance(bench.clock, WallClock) and bench.simulation is None
        assert bench.identities()["smu"][1:] == ("FAKE::smu", "keithley2400")
        smu.set_level(3.0)
        smu.enable_output()
    assert not smu.output_enabled and smu.level == 0.0
    assert smu.closed and pam.closed
    shutdowns = [e for e in events if e[0].endswith("shutdown")]
    assert shutdowns == [("smu.shutdown", True), ("photometer.shutdown",)]


def test_exception_is_not_masked_by_a_failing_shutdown(rig) -> None:
    events, smu, pam, opener = rig
    pam.shutdown_error = InstrumentTimeoutError("6485 did not answer")
    with pytest.raises(ZeroDivisionError):
        with Bench(fake_config(), ["smu", "photometer"], opener=opener) as bench:
            bench.smu.enable_output()
            1 / 0  # noqa: B018
    assert not smu.output_enabled and smu.closed and pam.closed


def test_one_failing_shutdown_does_not_leave_another_source_on(rig) -> None:
    events, smu, pam, opener = rig
    smu.shutdown_error = InstrumentTimeoutError("2400 did not answer")
    bench = Bench(fake_config(), ["smu", "photometer"], opener=opener)
    with pytest.raises(InstrumentError, match="safe shutdown incomplete: smu"):
        with bench:
            pass
    assert ("photometer.shutdown",) in events and smu.closed and pam.closed
    assert bench.shutdown_errors == ["smu: InstrumentTimeoutError: 2400 did not answer"]


def test_failure_part_way_through_opening_closes_what_was_opened(rig) -> None:
    events, smu, pam, _ = rig
    opener = make_opener({"smu": smu}, fail={"photometer": InstrumentNotFoundError("no 6485")})
    with pytest.raises(InstrumentNotFoundError):
        with Bench(fake_config(), ["smu", "photometer"], opener=opener):
            pytest.fail("the body must not run")
    assert ("smu.shutdown", False) in events and smu.closed


def test_missing_role_names_it_and_the_configured_ones(rig) -> None:
    _, _, _, opener = rig
    with pytest.raises(ConfigError, match=r"spectrometer.*configured: smu, photometer"):
        Bench(fake_config(), ["smu", "spectrometer"], opener=opener).open()
    assert opener.opened == []


def test_second_stop_during_the_ramp_skips_it(rig) -> None:
    events, smu, pam, opener = rig

    def second_ctrl_c(step: int) -> None:
        if step == 1:
            raise RunAborted("second Ctrl-C")

    smu.on_ramp_step = second_ctrl_c
    with Bench(fake_config(), ["smu", "photometer"], opener=opener) as bench:
        bench.smu.set_level(5.0)
        bench.smu.enable_output()
    assert events.count(("smu.off", True)) == 0
    assert ("smu.shutdown", False) in events and ("smu.off", False) in events
    assert not smu.output_enabled and smu.closed and pam.closed


def test_check_drive_names_the_limit(rig) -> None:
    _, _, _, opener = rig
    bench = Bench(fake_config(), ["smu"], opener=opener)
    bench.check_drive(volts=12.0, amps=0.1)
    with pytest.raises(SafetyLimitError, match=r"limits\.max_voltage_v \(12 V\)"):
        bench.check_drive(volts=-12.5)
    with pytest.raises(SafetyLimitError, match=r"limits\.max_current_a \(0\.1 A\)"):
        bench.check_drive(amps=0.2)


def test_illumination_on_a_real_bench_instructs_the_operator(rig, capsys) -> None:
    _, _, _, opener = rig
    with Bench(fake_config(), ["smu"], opener=opener) as bench:
        bench.set_illumination(True, 100.0)
    assert "OPERATOR: switch the illumination ON at 100 mW/cm²" in capsys.readouterr().err


def test_simulated_bench_uses_the_lab_clock_and_light(sim_config) -> None:
    """Against the simulated 2400 over TCP: the lab's clock and illumination, and the
    output left off on the simulator itself."""
    cfg = sim_config.model_copy(update={"instruments": {"smu": sim_config.instruments["smu"]}})
    with Bench(cfg, ["smu"]) as bench:
        lab = bench.simulation
        assert bench.clock is lab.clock and bench.clock.simulated
        assert bench.identities()["smu"][1] == lab.resources["smu"]
        bench.set_illumination(True, 80.0)
        assert lab.physics.illumination_mw_cm2 == 80.0
        bench.set_illumination(False)
        assert lab.physics.illumination_mw_cm2 == 0.0
        bench.smu.configure_source("voltage", 0.01)
        bench.smu.set_level(2.5)
        bench.smu.enable_output()
        assert bench.smu.output_enabled  # a query: the server has handled the write
        simulator = lab.instruments["smu"]
        assert simulator.handle(":OUTP?") == "1"
    assert simulator.handle(":OUTP?") == "0"
    assert not lab.physics.operating_point.output_on and not lab.servers
