"""The fault matrix for switches: each switch fault while selecting the next pixel of a
lit substrate stops with the SMU output off (asked of the simulated 2400) and the relays
told to open; only a welded relay may stay closed, and it is reported."""

from __future__ import annotations

import pytest

from labrig.bench import Bench
from labrig.switching import SwitchError, select_channel

#: fault -> what the SwitchError says
EXPECTED = {
    "no_confirm": r"asked for channel \S+ alone, the switch reports closed: none",
    "stuck": r"still closed after opening all",
    "garbled": r"failed selecting channel",
    "disconnect": r"failed selecting channel",
    "timeout": r"failed selecting channel",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("driver", ["keithley7001", "relay_board"])
def test_switch_fault_stops_with_every_output_off(driver, kind, switch_configs):
    data = switch_configs.switch_config_data(driver)
    # short only where the switch falls silent: elsewhere a reply slowed by a loaded
    # machine must not turn the fault under test into a time-out
    data["instruments"]["switch"]["timeout_s"] = 0.3 if kind == "timeout" else 5.0
    cfg = switch_configs.parse_config(data)
    with Bench(cfg, ["smu", "switch"]) as bench:
        sim = bench.simulation
        first, second = bench.switch.channels[:2]
        select_channel(bench.smu, bench.switch, first)
        bench.smu.configure_source("voltage", 0.01)
        bench.smu.set_level(3.0)
        bench.smu.enable_output()
        relays = sim.instruments["switch"].relays
        relays.faults.inject(kind, 0)
        with pytest.raises(SwitchError, match=EXPECTED[kind]) as info:
            select_channel(bench.smu, bench.switch, second)
        assert "every output is off" in str(info.value)
        assert sim.instruments["smu"].output is False  # the 2400's own state
        assert sim.physics.operating_point.output_on is False
        # no relay ever moved with the output on
        assert all(on is False for _, _, on in relays.moves)
        if kind == "stuck":
            assert relays.closed() == (first,)  # welded: reported, the rest open
        elif kind != "disconnect":
            assert relays.closed() == ()
        relays.faults.clear()
