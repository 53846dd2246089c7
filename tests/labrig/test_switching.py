"""Switching pixels safely, checked against the simulators' own states: the SMU output is
off whenever a relay moves, every channel opens before the next closes, the closed channel
is confirmed by asking the switch, and the bench leaves every relay open on the way out."""

from __future__ import annotations

import pytest

from labrig.bench import Bench
from labrig.switching import SwitchError, select_channel

DRIVERS = ("keithley7001", "relay_board")


def _lit(bench: Bench, volts: float = 3.0) -> None:
    bench.smu.configure_source("voltage", 0.01)
    bench.smu.set_level(volts)
    bench.smu.enable_output()


@pytest.mark.parametrize("driver", DRIVERS)
def test_selecting_turns_the_source_off_and_breaks_before_make(driver, switch_configs):
    cfg = switch_configs.switch_config(driver)
    with Bench(cfg, ["smu", "switch"]) as bench:
        sim = bench.simulation
        first, second = bench.switch.channels[:2]
        select_channel(bench.smu, bench.switch, first)
        _lit(bench)
        assert sim.instruments["smu"].output is True
        select_channel(bench.smu, bench.switch, second)
        assert sim.instruments["smu"].output is False  # the instrument's own state
        assert sim.physics.closed_channels == (second,)
        moves = sim.instruments["switch"].relays.moves
        # every move with the output off; every close onto nothing closed
        assert [on for _, _, on in moves] == [False] * len(moves)
        closes = [(action, before) for action, before, _ in moves if action.startswith("close")]
        assert closes == [(f"close {first}", ()), (f"close {second}", ())]


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_closed_pixel_is_the_one_on_the_smu_and_under_the_photodiode(driver, switch_configs):
    cfg = switch_configs.switch_config(
        driver, spread={"eqe_max": {"mean": 0.2, "sd": 0.05}}, defects={"C": "short"}
    )
    with Bench(cfg, ["smu", "switch"]) as bench:
        physics = bench.simulation.physics
        signals = {}
        for channel in bench.switch.channels[:4]:
            select_channel(bench.smu, bench.switch, channel)
            _lit(bench, 4.0)
            reading = bench.smu.measure()
            truth = physics.truth()
            signals[channel] = (reading.current, truth["photodiode_signal_a"], truth.get("eqe"))
        bench.smu.shutdown()
        a, b, c, d = (signals[ch] for ch in bench.switch.channels[:4])
        assert c[0] == pytest.approx(0.01)  # the shorted pixel sits at compliance
        assert c[1] == 0.0  # and gives no light
        for pixel in (a, b, d):
            assert 1e-6 < pixel[0] < 0.01 and pixel[1] > 0
        # light per current follows each pixel's own drawn EQE (same J, same optics)
        ratio = (a[1] / a[0]) / (b[1] / b[0])
        assert ratio == pytest.approx(a[2] / b[2], rel=0.02)
        assert a[2] != pytest.approx(b[2], rel=1e-3)


@pytest.mark.parametrize("driver", DRIVERS)
def test_nothing_closed_is_an_open_circuit(driver, switch_configs):
    with Bench(switch_configs.switch_config(driver), ["smu", "switch"]) as bench:
        bench.switch.open_all()
        _lit(bench, 4.0)
        assert abs(bench.smu.measure().current) < 1e-9
        bench.smu.shutdown()


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_channel_the_switch_lacks_moves_nothing(driver, switch_configs):
    with Bench(switch_configs.switch_config(driver), ["smu", "switch"]) as bench:
        with pytest.raises(SwitchError, match="no channel '99'; this switch has"):
            select_channel(bench.smu, bench.switch, "99")
        assert bench.simulation.instruments["switch"].relays.moves == []


@pytest.mark.parametrize("driver", DRIVERS)
def test_leaving_the_bench_on_an_exception_turns_off_and_opens_every_relay(driver, switch_configs):
    cfg = switch_configs.switch_config(driver)
    with pytest.raises(RuntimeError, match="boom"):
        with Bench(cfg, ["smu", "switch"]) as bench:
            sim = bench.simulation
            select_channel(bench.smu, bench.switch, bench.switch.channels[0])
            _lit(bench)
            raise RuntimeError("boom")
    assert sim.instruments["smu"].output is False
    assert sim.instruments["switch"].relays.closed() == ()
    last = sim.instruments["switch"].relays.moves[-1]
    assert last[0] == "open all" and last[2] is False  # opened after the output went off


@pytest.mark.parametrize("driver", DRIVERS)
def test_ctrl_c_mid_switch_leaves_the_output_off_and_the_relays_open(
    driver, monkeypatch, switch_configs
):
    with Bench(switch_configs.switch_config(driver), ["smu", "switch"]) as bench:
        sim = bench.simulation
        select_channel(bench.smu, bench.switch, bench.switch.channels[0])
        _lit(bench)
        real_close = bench.switch.close

        def interrupted(channel=None):
            real_close(channel)
            raise KeyboardInterrupt

        monkeypatch.setattr(bench.switch, "close", interrupted)
        with pytest.raises(KeyboardInterrupt):
            select_channel(bench.smu, bench.switch, bench.switch.channels[1])
        assert sim.instruments["smu"].output is False
        assert sim.instruments["switch"].relays.closed() == ()
        monkeypatch.undo()
