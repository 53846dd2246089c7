"""labrig export: CSV files whose columns and units round-trip to the run file's."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_runs import make_run  # noqa: E402

from labrig.cli import main  # noqa: E402
from labrig.export import export_csv, header, parse_header, spectrum_labels  # noqa: E402
from labrig.store import read_run  # noqa: E402


@pytest.fixture(scope="session")
def exported_runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("export_runs")
    return {name: make_run(name, out) for name in ("jvl", "solar-jv", "lifetime")}


def _read(path: Path) -> tuple[list[tuple[str, str]], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return [parse_header(h) for h in rows[0]], rows[1:]


def _assert_round_trip(run, group: str, path: Path) -> None:
    heads, rows = _read(path)
    cols = run.columns[group]
    assert heads == [(name, units) for name, (_, units, _) in cols.items()]
    for k, (data, _, _) in enumerate(cols.values()):
        text = [r[k] for r in rows]
        if np.asarray(data).dtype.kind in "biuf":
            np.testing.assert_array_equal(np.asarray(text, dtype=float), data.astype(float))
        else:
            assert text == [str(v) for v in data]


def test_header_format_and_parse():
    assert header("J", "mA/cm^2") == "J [mA/cm^2]"
    assert header("scan", "") == "scan"
    assert parse_header("J [mA/cm^2]") == ("J", "mA/cm^2")
    assert parse_header("scan") == ("scan", "")
    assert parse_header("W [W/(sr*m^2)]") == ("W", "W/(sr*m^2)")


def test_jvl_columns_spectra_and_analysis_round_trip(exported_runs, tmp_path):
    path = exported_runs["jvl"]
    written = export_csv(path, tmp_path)
    run = read_run(path)
    names = {p.name for p in written}
    assert names == {f"{path.stem}_{s}.csv" for s in ("data", "spectra", "analysis")}
    _assert_round_trip(run, "data", tmp_path / f"{path.stem}_data.csv")
    heads, rows = _read(tmp_path / f"{path.stem}_spectra.csv")
    assert heads[0] == ("wavelength_nm", "nm")
    # each spectrum is headed by the drive of its step: V and J of that data row
    v, j = run.columns["data"]["voltage"][0], run.columns["data"]["current_density"][0]
    assert heads[1:] == [
        (f"V = {v[k]:.4g} V; J = {j[k]:.4g} mA/cm^2", "counts") for k in run.spectra.step
    ]
    assert heads[1][0].startswith("V = 2.5 V; J = ")
    matrix = np.asarray(rows, dtype=float)
    np.testing.assert_array_equal(matrix[:, 0], run.spectra.wavelength_nm)
    np.testing.assert_array_equal(matrix[:, 1:].T, run.spectra.counts)
    heads, rows = _read(tmp_path / f"{path.stem}_analysis.csv")
    figures = {r[1]: (float(r[2]), r[3]) for r in rows if r[0] == ""}
    assert figures["peak_eqe"] == (run.analysis[None]["peak_eqe"][0], "%")


def test_text_columns_and_groups(exported_runs, tmp_path):
    solar = exported_runs["solar-jv"]
    export_csv(solar, tmp_path)
    _assert_round_trip(read_run(solar), "data", tmp_path / f"{solar.stem}_data.csv")
    assert not (tmp_path / f"{solar.stem}_mpp.csv").exists()  # an empty extra group
    life = exported_runs["lifetime"]
    written = export_csv(life, tmp_path)
    run = read_run(life)
    assert f"{life.stem}_channel_02.csv" in {p.name for p in written}
    _assert_round_trip(run, "channel_02", tmp_path / f"{life.stem}_channel_02.csv")


def test_cli_export_next_to_the_file_and_bad_format(exported_runs, tmp_path):
    result = CliRunner().invoke(
        main, ["export", str(exported_runs["solar-jv"]), "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"{exported_runs['solar-jv'].stem}_data.csv" in result.output
    result = CliRunner().invoke(main, ["export", str(exported_runs["solar-jv"]), "--format", "xls"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["export", str(tmp_path / "missing.h5")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_spectrum_labels_number_repeats_and_name_steps_without_a_row(exported_runs):
    from labrig.store import load_run

    loaded = load_run(exported_runs["jvl"])
    v = loaded.table()["voltage"]
    first = f"V = {v[0]:.4g} V; J = {loaded.table()['current_density'][0]:.4g} mA/cm^2"
    assert spectrum_labels(loaded, [0, 0, 10_000]) == [
        f"{first} (#1)",
        f"{first} (#2)",
        "step 10000",
    ]


def test_an_empty_run_writes_no_files(tmp_path):
    """A run that ended before its first row: no header-only CSVs, and the CLI says so."""
    from labrig.procedure import Column
    from labrig.store import RunStore

    store = RunStore.create(
        tmp_path,
        procedure="jvl",
        sample="empty",
        columns=[Column("voltage", "V", "voltage")],
        signal="voltage",
        axis="voltage",
        parameters={},
        config_text="",
        simulated=True,
        groups=("channel_01",),
    )
    store.close("aborted", "stopped at once")
    out = tmp_path / "csv"
    assert export_csv(store.path, out) == []
    assert list(out.iterdir()) == []
    result = CliRunner().invoke(main, ["export", str(store.path), "-o", str(out)])
    assert result.exit_code == 0
    assert result.output == f"nothing to export: {store.path} holds no rows, spectra or figures\n"
