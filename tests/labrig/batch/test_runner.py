"""A simulated batch end to end: 3 substrates x 8 pixels with a configured spread and two
defective pixels, on the simulated instruments behind their real transports, each pixel
switched in and measured (J-V-L, then a spectrum) into its own real run file.  The
stored peak EQE recovers the configured distribution within its sampling error, the
defects are found by the sweep's first points, skipped with their reason and counted,
and no relay ever moved with the output on."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from labrig.batch.file import read_batch
from labrig.batch.plan import load_plan
from labrig.batch.runner import PixelBench, run_batch
from labrig.simulators.led import LEDDevice
from labrig.simulators.physics import pixel_models
from labrig.store import load_run

from .batch_plans import EQE_MAX, JVL, SPECTRUM, substrate_bench, write_plan

#: two defective pixels in the batch: one shorted on S1, one open on S3
DEFECTS = {"S1/B": "short", "S3/E": "open"}


class RecordingBench(PixelBench):
    """The batch's own bench, keeping each run's relay moves (the simulator's record)."""

    moves: list = []
    outputs: list = []

    def close(self, ramp: bool = True) -> None:
        lab = self.simulation
        if lab is not None and "switch" in lab.instruments:
            RecordingBench.moves.extend(lab.instruments["switch"].relays.moves)
            RecordingBench.outputs.append(lab.instruments["smu"].output)
        super().close(ramp)


@pytest.fixture(scope="module")
def batch(tmp_path_factory, switch_configs):
    """The 3 x 8 batch, run once for the tests of this module."""
    folder = tmp_path_factory.mktemp("batch")
    bench = substrate_bench(switch_configs, defects=DEFECTS)
    path = write_plan(folder, bench, measurements=[{"jvl": JVL}])
    plan = load_plan(path)
    RecordingBench.moves, RecordingBench.outputs = [], []
    result = run_batch(plan, progress=False, bench_factory=RecordingBench)
    return SimpleNamespace(plan=plan, result=result, read=read_batch(result.path))


def test_every_planned_run_is_in_the_batch_file_with_its_own_run_file(batch):
    read = batch.read
    assert (batch.result.status, read.status, read.name) == ("finished", "finished", "NSA series")
    assert len(read.devices) == 3 * 8
    measured = [d for d in read.devices if d.status == "finished"]
    assert len(measured) == 3 * 8 - 2
    files = {d.run_file for d in read.devices if d.run_file is not None}
    assert len(files) == 3 * 8  # the defective pixels' sweeps are kept too
    for d in measured:
        run = load_run(d.run_file).run
        assert (run.status, run.procedure, run.sample) == (
            "finished",
            d.measurement,
            f"{d.substrate}-{d.pixel}",
        )
        assert d.run_file.name.startswith(f"{d.substrate}-{d.pixel}_{d.measurement}_")
        assert run.instruments["switch"].driver == "keithley7001"
    s2c = next(d for d in read.devices if (d.substrate, d.pixel) == ("S2", "C"))
    assert s2c.condition == "control" and s2c.figures["peak_eqe"][1] == "%"


def test_the_defects_are_found_skipped_with_their_reason_and_counted(batch):
    skipped = [d for d in batch.read.devices if d.status == "skipped"]
    assert [(d.substrate, d.pixel) for d in skipped] == [("S1", "B"), ("S3", "E")]
    for d in skipped:
        assert d.reason.startswith("shorted: " if d.pixel == "B" else "open: "), d.reason
        run = load_run(d.run_file)  # the sweep that found it is the evidence
        assert run.figures()["contact_defect"][0] == DEFECTS[f"{d.substrate}/{d.pixel}"]
        # stopped at the first telling point: 0.25 V (short), 3 V (open)
        assert run.rows() == (2 if d.pixel == "B" else 13)
    pixels = batch.result.pixels
    assert sum(state == "skipped" for state in pixels.values()) == 2
    assert sum(state == "finished" for state in pixels.values()) == 22


def test_no_relay_moved_with_the_output_on_and_every_output_ended_off(batch):
    assert RecordingBench.moves  # the simulator's record of every relay move
    assert all(on is False for _, _, on in RecordingBench.moves)
    # break before make: every close found nothing else closed
    assert all(before == () for action, before, _ in RecordingBench.moves if "close" in action)
    assert not any(RecordingBench.outputs[-1:])


def _true_peak_eqe(model) -> float:
    """The pixel model's peak intrinsic EQE (%), over J on a fine log grid."""
    device = LEDDevice(model, 0.04)
    return 100 * max(device.intrinsic_eqe(j) for j in np.logspace(-6, 0, 2001))


def test_peak_eqe_recovers_each_pixel_and_the_configured_distribution(batch):
    plan = batch.plan
    rows = [d for d in batch.read.devices if d.measurement == "jvl" and d.status == "finished"]
    measured = np.array([d.figures["peak_eqe"][0] for d in rows])
    truth = np.array(
        [
            _true_peak_eqe(pixel_models(plan.device_config(d.substrate, d.pixel))[d.pixel])
            for d in rows
        ]
    )
    # each pixel: its own drawn device (seed, substrate, pixel), within the coarse
    # sweep's sampling of the EQE plateau and the heating of a DC sweep
    assert np.all(np.abs(measured / truth - 1) < 0.03), measured / truth
    # the distribution: the peak of EQE(J) is c * EQE_max for a fixed shape, so the
    # stored mean and s.d. are c * (0.20, 0.02) within their standard errors; tolerance
    # 3 s.e. with n = 22: mean s.e. c*sd/sqrt(n), s.d. s.e. c*sd/sqrt(2(n-1))
    n = len(measured)
    c = float(np.mean(truth / (100 * np.array([_eqe_max(plan, d) for d in rows]))))
    mean, sd = 100 * c * EQE_MAX["mean"], 100 * c * EQE_MAX["sd"]
    assert n == 22
    assert abs(measured.mean() - mean) < 3 * sd / math.sqrt(n)
    assert abs(measured.std(ddof=1) - sd) < 3 * sd / math.sqrt(2 * (n - 1))
    # three substrates differ, and the draws are the plan's (a rerun repeats them)
    by_substrate = {s: measured[[d.substrate == s for d in rows]] for s in ("S1", "S2", "S3")}
    assert len({tuple(np.round(v, 6)) for v in by_substrate.values()}) == 3


def test_each_pixels_shunt_is_recovered_from_its_sweep_below_turn_on(batch):
    """Below 1 V only the shunt conducts: J = V/Rsh, the pixel's own drawn Rsh."""
    for d in batch.read.devices:
        if d.status != "finished":
            continue
        table = load_run(d.run_file).table()
        low = (table["voltage"] > 0) & (table["voltage"] <= 1.0)
        j_a_cm2 = table["current_density"][low] * 1e-3
        fitted = float(np.sum(table["voltage"][low] ** 2) / np.sum(table["voltage"][low] * j_a_cm2))
        model = pixel_models(batch.plan.device_config(d.substrate, d.pixel))[d.pixel]
        assert fitted == pytest.approx(model.rsh_ohm_cm2, rel=0.01), (d.substrate, d.pixel)


def _eqe_max(plan, d) -> float:
    return pixel_models(plan.device_config(d.substrate, d.pixel))[d.pixel].eqe_max


def test_a_rerun_with_the_same_seed_measures_the_same_devices(batch, tmp_path, switch_configs):
    bench = substrate_bench(switch_configs, defects=DEFECTS)
    samples = [{"substrate": "S1", "pixels": ["A", "B", "C"]}]
    path = write_plan(tmp_path, bench, samples=samples)
    again = run_batch(load_plan(path), progress=False)
    first = [d for d in batch.read.devices if d.substrate == "S1" and d.pixel in "ABC"]
    second = [d for d in read_batch(again.path).devices]
    assert [d.status for d in second] == [d.status for d in first]
    for a, b in zip(first, second, strict=True):
        if a.status == "finished":
            assert b.figures["peak_eqe"][0] == pytest.approx(a.figures["peak_eqe"][0], rel=2e-3)


def test_each_pixel_gets_its_measurements_in_order_and_a_skip_covers_the_rest(
    tmp_path, switch_configs
):
    bench = substrate_bench(switch_configs, spectrometer=True, defects={"B": "short"})
    samples = [{"substrate": "S1", "pixels": ["A", "B"], "condition": "NSA 0.6 M"}]
    path = write_plan(
        tmp_path, bench, samples=samples, measurements=[{"jvl": JVL}, {"spectrum": SPECTRUM}]
    )
    result = run_batch(load_plan(path), progress=False)
    rows = [(d.pixel, d.measurement, d.status) for d in read_batch(result.path).devices]
    assert rows == [
        ("A", "jvl", "finished"),
        ("A", "spectrum", "finished"),
        ("B", "jvl", "skipped"),
        ("B", "spectrum", "skipped"),
    ]
    a_jvl, a_spectrum, _, b_spectrum = read_batch(result.path).devices
    assert load_run(a_spectrum.run_file).run.procedure == "spectrum"
    assert a_spectrum.figures["peak_wavelength"] == (pytest.approx(628, abs=2), "nm")
    assert a_spectrum.run_file.stat().st_mtime >= a_jvl.run_file.stat().st_mtime
    assert b_spectrum.run_file is None and b_spectrum.reason.startswith("shorted: ")


def test_the_batch_report_tables_the_run_files_figures_and_the_yield(batch, tmp_path):
    """`labrig report` of this batch file: per condition, the statistics of the peak EQE
    each device's own run file holds; per substrate, the pixels measured, the short (S1)
    and the open pixel (S3) counted by kind."""
    import csv

    from labrig.report import make_report

    result = make_report([batch.result.path], tmp_path, dpi=30)
    assert result.tables == [
        tmp_path / "NSA_series_batch_summary.csv",
        tmp_path / "NSA_series_batch_yield.csv",
    ]
    eqe = {
        d.substrate + "-" + d.pixel: load_run(d.run_file).figures()["peak_eqe"][0]
        for d in batch.read.devices
        if d.status == "finished"
    }
    with result.tables[0].open() as f:
        rows = {(r["figure"], r["condition"]): r for r in csv.DictReader(f)}
    for condition, substrates in (
        ("NSA 0.6 M", ("S1", "S3")),
        ("control", ("S2",)),
        ("all", ("S1", "S2", "S3")),
    ):
        mine = {k: v for k, v in eqe.items() if k.split("-")[0] in substrates}
        row = rows[("peak_eqe", condition)]
        defective = sum(f"{s}/{p}" in DEFECTS for s in substrates for p in "ABCDEFGH")
        assert int(row["n"]) == len(mine) == 8 * len(substrates) - defective
        assert float(row["mean"]) == pytest.approx(np.mean(list(mine.values())), rel=1e-12)
        assert float(row["sd_sample"]) == pytest.approx(np.std(list(mine.values()), ddof=1))
        assert row["champion"] == max(mine, key=mine.get)
    with result.tables[1].open() as f:
        yields = [
            (y["substrate"], y["planned"], y["measured"], y["skipped_shorted"], y["skipped_open"])
            for y in csv.DictReader(f)
        ]
    assert yields == [
        ("S1", "8", "7", "1", "0"),
        ("S2", "8", "8", "0", "0"),
        ("S3", "8", "7", "0", "1"),
    ]
