"""Device-to-device spread on a simulated substrate: seeded draws are reproducible, their
sample mean and s.d. match the configured distribution within sampling error, and
configured defects replace their pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labrig.config import Distribution
from labrig.errors import ConfigError
from labrig.simulators.physics import CoupledPhysics, draw_spread, pixel_models

SPREAD = {
    "eqe_max": {"mean": 0.20, "sd": 0.02},
    "rs_ohm_cm2": {"mean": 5.0, "sd": 1.0},
    "j0_a_cm2": {"mean": 1e-23, "sd": 0.5, "distribution": "lognormal"},
}


def test_a_seeded_spread_is_reproducible_and_seed_dependent(switch_configs):
    a = pixel_models(switch_configs.switch_config(pixels=8, spread=SPREAD, seed=7))
    b = pixel_models(switch_configs.switch_config(pixels=8, spread=SPREAD, seed=7))
    c = pixel_models(switch_configs.switch_config(pixels=8, spread=SPREAD, seed=8))
    assert [m.eqe_max for m in a.values()] == [m.eqe_max for m in b.values()]
    assert [m.j0_a_cm2 for m in a.values()] == [m.j0_a_cm2 for m in b.values()]
    assert [m.eqe_max for m in a.values()] != [m.eqe_max for m in c.values()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drawn_mean_and_sd_match_the_distribution_within_sampling_error(seed):
    n = 400
    spread = {k: Distribution(**v) for k, v in SPREAD.items()}
    drawn = draw_spread(spread, [f"P{k}" for k in range(n)], seed)
    for key, dist in spread.items():
        x = drawn[key] if dist.distribution == "normal" else np.log(drawn[key])
        mu = dist.mean if dist.distribution == "normal" else math.log(dist.mean)
        # 4 standard errors: mean s.e. sd/sqrt(n), sd s.e. sd/sqrt(2(n-1))
        assert abs(x.mean() - mu) < 4 * dist.sd / math.sqrt(n), key
        assert abs(x.std(ddof=1) - dist.sd) < 4 * dist.sd / math.sqrt(2 * (n - 1)), key


def test_each_substrate_draws_its_own_pixels_and_a_rerun_repeats_them(switch_configs):
    data = switch_configs.switch_config_data(pixels=8, spread=SPREAD, seed=7)

    def eqe(substrate: str, pixels: int = 8) -> list[float]:
        cfg = dict(data, device={**data["device"], "sample": substrate})
        cfg["substrate"] = {"pixels": dict(list(data["substrate"]["pixels"].items())[:pixels])}
        return [m.eqe_max for m in pixel_models(switch_configs.parse_config(cfg)).values()]

    s1, s2, s3 = eqe("S1"), eqe("S2"), eqe("S3")
    assert len({tuple(s1), tuple(s2), tuple(s3)}) == 3  # three substrates differ
    assert eqe("S2") == s2  # the same seed and substrate: the same pixels
    assert eqe("S2", pixels=3) == s2[:3]  # a pixel's draw is its own, whatever the layout


def test_pixels_of_a_substrate_carry_their_draws_in_the_physics(switch_configs):
    cfg = switch_configs.switch_config(
        pixels=8, spread=SPREAD, defects={"B": "short", "E": "open"}, seed=5
    )
    physics = CoupledPhysics(cfg)
    models = pixel_models(cfg)
    assert physics.closed_channels is None  # no switch simulator yet: the device is wired
    assert physics.source_voltage(4.0, 0.01).current > 1e-6
    physics.connect_channels(())  # a switch with nothing closed: open circuit
    assert abs(physics.source_voltage(4.0, 0.01).current) < 1e-10
    physics.output_off()
    assert physics.pixels["1!1"].model.eqe_max == models["A"].eqe_max
    assert physics.pixels["1!2"].ohms == pytest.approx(0.5)  # shorted
    assert physics.pixels["1!5"].ohms == pytest.approx(1e12)  # open
    physics.connect_channels(("1!3",))
    assert physics.device.model.eqe_max == models["C"].eqe_max
    assert physics.device.area_cm2 == 0.04


def test_a_draw_outside_the_models_range_is_one_readable_error(switch_configs):
    cfg = switch_configs.switch_config(pixels=8, spread={"eqe_max": {"mean": 0.95, "sd": 0.3}})
    with pytest.raises(ConfigError, match=r"simulation.spread: pixel \w drew eqe_max = .*narrow"):
        pixel_models(cfg)


def test_a_defect_may_name_its_substrate(switch_configs):
    from labrig.simulators.physics import pixel_defects

    data = switch_configs.switch_config_data(pixels=4, defects={"S1/B": "short", "C": "open"})

    def on(substrate: str) -> dict[str, str]:
        cfg = dict(data, device={**data["device"], "sample": substrate})
        return pixel_defects(switch_configs.parse_config(cfg))

    assert on("S1") == {"B": "short", "C": "open"}
    assert on("S2") == {"C": "open"}  # C on every substrate, B on S1 only
    data["simulation"]["defects"] = {"S1/Z": "short"}
    with pytest.raises(
        ConfigError, match=r"simulation.defects.S1/Z: no such pixel in the substrate"
    ):
        switch_configs.parse_config(data)
