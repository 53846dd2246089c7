"""labrig's instruments as ophyd-async devices under a RunEngine, on the simulated bench
in this process (its instruments served over loopback, its clock simulated) and in
ophyd-async's mock mode.  Output states are asked of the simulated 2400 itself."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import FailedStatus, RunEngineInterrupted
from ophyd_async.core import get_mock_put, init_devices, set_mock_value

from labrig.bluesky.devices import (
    BenchLink,
    LifetimeChannel,
    Picoammeter6485,
    SourceMeter2400,
    SpectrometerUSB2000,
)
from labrig.errors import SafetyLimitError


@pytest.fixture(scope="module")
def link():
    """The simulated bench's 2400 and 6485, opened once for the module's tests."""
    link = BenchLink("sim", roles=["smu", "photometer"])
    yield link
    assert link.close() == []


@pytest.fixture
def RE():
    engine = RunEngine(call_returns_result=True)
    engine.documents = []
    engine.subscribe(lambda name, doc: engine.documents.append((name, doc)))
    return engine


def _devices(link: BenchLink, **smu_options):
    with init_devices():
        smu = SourceMeter2400(link, **smu_options)
        photodiode = Picoammeter6485(link)
    return smu, photodiode


def _sim_2400(link: BenchLink):
    """The simulated 2400 (what it has switched, not what the driver believes)."""
    return link.simulation.instruments["smu"]


def _events(RE) -> list[dict]:
    return [doc["data"] for name, doc in RE.documents if name == "event"]


def test_a_scan_of_the_2400_level_reads_the_simulated_led_and_ends_off(link, RE):
    smu, photodiode = _devices(link)
    physics = link.simulation.physics
    truth = []  # the simulated LED's own current as each event is emitted (its clock stood)
    RE.subscribe(lambda name, doc: name == "event" and truth.append(physics.operating_point))
    result = RE(bp.scan([photodiode, smu], smu.level, 0, 6, 61))
    assert result.exit_status == "success"
    rows = _events(RE)
    assert [r["smu-level"] for r in rows] == pytest.approx(np.linspace(0, 6, 61))
    volts = np.array([r["smu-voltage"] for r in rows])
    amps = np.array([r["smu-current"] for r in rows])
    light = np.array([r["photodiode-current"] for r in rows])
    assert volts == pytest.approx(np.linspace(0, 6, 61), abs=1e-6)  # sourced V, read back
    # the device's ground truth at each point, within the 2400's reading noise
    assert [op.voltage for op in truth] == pytest.approx(volts, abs=1e-6)
    assert amps[volts >= 2.0] == pytest.approx(
        [op.current for op, v in zip(truth, volts, strict=True) if v >= 2.0], rel=1e-3
    )
    assert amps[-1] > 1e-3 and light[-1] > 1e-6  # mA through it, µA of light
    assert light[volts < 1.0].max() < 1e-9  # dark below turn-on
    descriptor = next(doc for name, doc in RE.documents if name == "descriptor")
    keys = descriptor["data_keys"]
    assert (keys["smu-voltage"]["units"], keys["smu-current"]["units"]) == ("V", "A")
    assert (keys["smu-level"]["units"], keys["photodiode-current"]["units"]) == ("V", "A")
    assert _sim_2400(link).output is False  # unstaged: ramped down and off


def test_a_level_beyond_the_config_limits_is_refused_and_the_output_ends_off(link, RE):
    smu, photodiode = _devices(link)
    with pytest.raises(FailedStatus) as failed:
        RE(bp.scan([photodiode, smu], smu.level, 0, 15, 4))
    refused = failed.value.__cause__
    assert isinstance(refused, SafetyLimitError)
    assert str(refused) == "voltage 15 V exceeds limits.max_voltage_v (12 V)"
    assert [r["smu-voltage"] for r in _events(RE)] == pytest.approx([0, 5, 10], abs=1e-6)
    assert _sim_2400(link).output is False
    assert _sim_2400(link).level["VOLT"] == pytest.approx(0.0)


def _pausing_plan(smu, photodiode):
    """2.5 V, a pause, then a reading at 3 V."""

    @bpp.stage_decorator([smu, photodiode])
    @bpp.run_decorator()
    def plan():
        yield from bps.mv(smu.level, 2.5)
        yield from bps.trigger_and_read([smu, photodiode])
        yield from bps.checkpoint()
        yield from bps.pause()
        yield from bps.mv(smu.level, 3.0)
        yield from bps.trigger_and_read([smu, photodiode])

    return plan()


@pytest.mark.parametrize("on_pause, on_while_paused", [("off", False), ("keep", True)])
def test_pause_leaves_the_output_as_chosen_and_resume_goes_on(link, RE, on_pause, on_while_paused):
    smu, photodiode = _devices(link, on_pause=on_pause)
    with pytest.raises(RunEngineInterrupted):
        RE(_pausing_plan(smu, photodiode))
    assert RE.state == "paused"
    assert _sim_2400(link).output is on_while_paused
    result = RE.resume()
    assert result.exit_status == "success"
    rows = _events(RE)
    assert [r["smu-voltage"] for r in rows] == pytest.approx([2.5, 3.0], abs=1e-6)
    assert rows[-1]["smu-current"] > rows[0]["smu-current"] > 0  # on again at 3 V
    assert _sim_2400(link).output is False


@pytest.mark.parametrize("stop", ["abort", "halt"])
def test_abort_and_halt_of_a_paused_plan_turn_the_output_off(link, RE, stop):
    smu, photodiode = _devices(link, on_pause="keep")
    with pytest.raises(RunEngineInterrupted):
        RE(_pausing_plan(smu, photodiode))
    assert _sim_2400(link).output is True  # kept on through the pause
    result = getattr(RE, stop)()
    assert result.exit_status == "abort"
    assert _sim_2400(link).output is False
    assert _sim_2400(link).level["VOLT"] == pytest.approx(0.0)  # ramped to zero first
    stop_doc = next(doc for name, doc in RE.documents if name == "stop")
    assert stop_doc["exit_status"] == "abort"


def test_an_exception_in_the_plan_turns_the_output_off(link, RE):
    smu, photodiode = _devices(link)

    @bpp.stage_decorator([smu])
    @bpp.run_decorator()
    def plan():
        yield from bps.mv(smu.level, 2.8)
        yield from bps.trigger_and_read([smu])
        raise RuntimeError("the plan broke")

    with pytest.raises(RuntimeError, match="the plan broke"):
        RE(plan())
    assert _sim_2400(link).output is False


def test_mock_mode_opens_nothing_and_reads_what_the_mock_says():
    RE = RunEngine(call_returns_result=True)
    link = BenchLink("sim", roles=["smu", "photometer"])
    with init_devices(mock=True):
        smu = SourceMeter2400(link)
        photodiode = Picoammeter6485(link)
    set_mock_value(smu.current, 1.5e-3)
    set_mock_value(photodiode.current, 2.0e-7)
    rows = []
    RE(bp.scan([photodiode, smu], smu.level, 0, 2, 3), lambda n, d: n == "event" and rows.append(d))
    assert not link.is_open and link.simulation is None
    assert get_mock_put(smu.level).call_args_list[:3] == [((0.0,),), ((1.0,),), ((2.0,),)]
    assert [r["data"]["smu-current"] for r in rows] == [1.5e-3] * 3
    assert [r["data"]["photodiode-current"] for r in rows] == [2.0e-7] * 3


def test_the_spectrometer_and_a_lifetime_channel_as_devices(RE):
    """The USB2000+ (seabreeze's simulated unit) and channel 2 of the served lifetime rig:
    a spectrum per reading with its wavelengths, a channel driven at 1 mA and off again."""
    link = BenchLink("sim", roles=["spectrometer", "lifetime"])
    try:
        with init_devices():
            spectrometer = SpectrometerUSB2000(link)
            channel = LifetimeChannel(link, 2, name="lifetime_2")
        rig = link.simulation.instruments["lifetime"]

        @bpp.stage_decorator([channel])
        @bpp.run_decorator()
        def plan():
            yield from bps.mv(spectrometer.integration_time, 0.05, channel.setpoint, 1e-3)
            yield from bps.trigger_and_read([spectrometer, channel])
            assert rig._channels[1].output_on  # the rig's own channel state: on

        RE(plan())
        (row,) = _events(RE)
        config = RE.documents[1][1]["configuration"]["spectrometer"]["data"]
        wavelengths = np.asarray(config["spectrometer-wavelengths"])
        assert len(row["spectrometer-spectrum"]) == len(wavelengths) == 2048
        assert 300 < wavelengths[0] < wavelengths[-1] < 1100  # nm, rising
        assert config["spectrometer-integration_time"] == pytest.approx(0.05)
        assert row["lifetime_2-current"] == pytest.approx(1e-3, rel=0.01)
        assert row["lifetime_2-voltage"] > 1.5 and row["lifetime_2-status"] == "OK"
        assert row["lifetime_2-photodiode_current"] > 0
        assert not rig._channels[1].output_on  # unstaged: off, as the rig has it
    finally:
        assert link.close() == []
