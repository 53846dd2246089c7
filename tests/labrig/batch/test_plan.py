"""Bad plans: each refused by ``labrig batch run`` with one line naming what is wrong and
what is allowed, exit status 2, no traceback, before anything is switched or enabled
(no simulator started, no output directory made)."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from labrig.batch.plan import load_plan
from labrig.cli import main

from .batch_plans import JVL, substrate_bench, write_plan


def _refused(tmp_path, bench, **plan) -> str:
    path = write_plan(tmp_path, bench, substrates=1, **plan)
    started = []
    import labrig.simulators.lab as lab

    original = lab.start_lab
    lab.start_lab = lambda *a, **k: started.append(a) or original(*a, **k)
    try:
        result = CliRunner().invoke(main, ["batch", "run", str(path)], prog_name="labrig")
    finally:
        lab.start_lab = original
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert started == [] and not (tmp_path / "runs").exists()  # nothing opened or written
    lines = result.output.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_pixel_the_layout_lacks(tmp_path, switch_configs):
    line = _refused(
        tmp_path,
        substrate_bench(switch_configs),
        samples=[{"substrate": "S1", "pixels": ["A", "Z"]}],
    )
    assert line == (
        f"labrig: error: plan {tmp_path / 'plan.yaml'}: samples.0.pixels: no pixel 'Z' in the "
        f"substrate layout of {tmp_path / 'bench.yaml'}; allowed: A, B, C, D, E, F, G, H"
    )


def test_a_channel_the_switch_does_not_have(tmp_path, switch_configs):
    bench = substrate_bench(switch_configs)
    bench["substrate"]["pixels"]["H"]["channel"] = "1!9"
    assert _refused(tmp_path, bench) == (
        f"labrig: error: config {tmp_path / 'bench.yaml'}: substrate.pixels.H.channel: the "
        "keithley7001 has no channel '1!9'; allowed: 1!1 .. 2!8"
    )


def test_an_area_missing(tmp_path, switch_configs):
    bench = substrate_bench(switch_configs)
    del bench["substrate"]["pixels"]["C"]["area_cm2"]
    assert _refused(tmp_path, bench) == (
        f"labrig: error: config {tmp_path / 'bench.yaml'}: substrate.pixels.C.area_cm2: "
        "required key is missing"
    )


def test_two_pixels_on_one_channel(tmp_path, switch_configs):
    bench = substrate_bench(switch_configs)
    bench["substrate"]["pixels"]["B"]["channel"] = "1!1"
    assert _refused(tmp_path, bench) == (
        f"labrig: error: config {tmp_path / 'bench.yaml'}: substrate: pixels A and B are both "
        "on channel '1!1'; each pixel needs its own channel"
    )


@pytest.mark.parametrize(
    ("measurements", "message"),
    [
        (
            ["jvll"],
            "measurements.0: unknown procedure 'jvll' (did you mean 'jvl'?); allowed: jvl, "
            "spectrum, pulsed-el, lifetime, solar-jv, sclc",
        ),
        (
            [{"jvl": {"stop_votlage": 6}}],
            "measurements.0.jvl: stop_votlage: no such parameter (did you mean "
            "'stop_voltage'?); allowed: ",
        ),
        (
            [{"jvl": {"stop_voltage": "7 kV"}}],
            "measurements.0.jvl: stop_voltage=7 kV: above the maximum; allowed: -210 to 210 V",
        ),
        (
            ["solar-jv"],
            "device.kind: procedure solar-jv needs a device of kind solar",
        ),
        (
            [{"jvl": JVL}, {"jvl": JVL}],
            "measurements: a measurement is listed twice; once each",
        ),
    ],
)
def test_an_unknown_measurement_or_parameter(tmp_path, switch_configs, measurements, message):
    line = _refused(tmp_path, substrate_bench(switch_configs), measurements=measurements)
    assert line.startswith(f"labrig: error: plan {tmp_path / 'plan.yaml'}: {message}"), line


def test_a_limit_names_the_limit(tmp_path, switch_configs):
    line = _refused(
        tmp_path, substrate_bench(switch_configs), measurements=[{"jvl": {"stop_voltage": 20}}]
    )
    assert line == (
        f"labrig: error: plan {tmp_path / 'plan.yaml'}: measurements.0.jvl (pixel A): "
        "start/stop_voltage: the sweep reaches 20 V, beyond limits.max_voltage_v (12 V)"
    )


def test_plan_keys_are_checked_one_line_each(tmp_path, switch_configs):
    line = _refused(tmp_path, substrate_bench(switch_configs), sampels=[])
    assert line == (
        f"labrig: error: plan {tmp_path / 'plan.yaml'}: sampels: unknown key (check the "
        "spelling; see the config reference in README.md) (got [])"
    )


def test_a_substrate_twice_and_a_bench_without_a_layout(tmp_path, switch_configs):
    bench = substrate_bench(switch_configs)
    line = _refused(tmp_path, bench, samples=[{"substrate": "S1"}, {"substrate": "S1"}])
    assert line.endswith("samples.1.substrate: 'S1' is planned twice; each substrate once")
    del bench["substrate"]
    del bench["instruments"]["switch"]
    del bench["simulation"]["defects"]
    line = _refused(tmp_path, bench)
    assert line.endswith(
        "no substrate layout (substrate.pixels with each pixel's channel and area_cm2) for "
        "the batch to switch through"
    )


def test_a_good_plan_resolves_paths_next_to_it(tmp_path, switch_configs):
    path = write_plan(tmp_path, substrate_bench(switch_configs), substrates=2)
    plan = load_plan(path)
    assert plan.output_dir == tmp_path / "runs"
    assert [s.pixels for s in plan.samples] == [tuple("ABCDEFGH")] * 2
    assert plan.rows[:2] == [("S1", "A", "NSA 0.6 M", "jvl"), ("S1", "B", "NSA 0.6 M", "jvl")]
    assert plan.steps[0].values["stop_voltage"] == 4.0
    config = plan.device_config("S2", "C")
    assert (config.device.sample, config.device.active_area_cm2) == ("S2", 0.04)
    assert config.simulation.seed == 11
    assert yaml.safe_load(plan.text)["name"] == "NSA series"
