"""The HDF5 run file: round trip with units, naming, layout, resume, bad files."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import labrig
from labrig.errors import NotARunFileError, UserInputError
from labrig.interfaces import InstrumentIdentity, Spectrum
from labrig.procedure import Column
from labrig.store import RunStore, read_run, sanitize
from labrig.store import writer as store_mod

COLUMNS = [
    Column("voltage_v", "V", "applied voltage"),
    Column("current_density_ma_cm2", "mA/cm²", "current density"),
    Column("luminance_cd_m2", "cd/m²", "luminance"),
    Column("compliance", "", "compliance hit", "i1"),
    Column("status", "", "channel status", "str"),
]


def _create(tmp_path: Path, **kw) -> RunStore:
    args = dict(
        procedure="jvl",
        sample="QD-LED #7 (red)",
        columns=COLUMNS,
        signal="luminance_cd_m2",
        axis="voltage_v",
        parameters={
            "start_voltage": (0.0, "V"),
            "stop_voltage": (6.0, "V"),
            "points": (61, ""),
            "direction": ("up", ""),
            "spectra": (True, ""),
            "levels": ([1.0, 2.0, 3.0], "V"),
            "note": (None, ""),
        },
        config_text="name: simulated bench\nlimits: {max_voltage_v: 12}\n",
        simulated=True,
        operator="ada",
    )
    args.update(kw)
    return RunStore.create(tmp_path, **args)


def test_round_trip_with_units(tmp_path: Path) -> None:
    store = _create(tmp_path, groups=["channel_01"], spectrum_pixels=8)
    ident = InstrumentIdentity(
        "KEITHLEY INSTRUMENTS INC.", "MODEL 2400", "4045678", "C30", "raw idn"
    )
    store.record_instrument("smu", ident, "TCPIP::127.0.0.1::5025::SOCKET", "keithley2400")
    store.append_row({"voltage_v": 0.0, "current_density_ma_cm2": 1e-3, "luminance_cd_m2": 0.0})
    store.append_rows(
        {
            "voltage_v": [1.0, 2.0],
            "current_density_ma_cm2": [0.1, 1.0],
            "luminance_cd_m2": [1.0, 100.0],
            "compliance": [0, 1],
        }
    )
    store.append_rows([{"voltage_v": 3.0, "luminance_cd_m2": 500.0, "status": "OK"}])
    store.append_rows({"voltage_v": [5.0], "status": ["SHORT"]}, group="channel_01")
    wl = np.linspace(500.0, 700.0, 8)
    store.append_spectrum(2, Spectrum(wl, np.arange(8.0), 0.1, scans_averaged=3), dark=np.ones(8))
    store.append_spectrum(3, Spectrum(wl, np.arange(8.0) * 2, 0.05, saturated=True))
    store.set_analysis({"peak_eqe": (26.1, "%"), "turn_on_voltage": (2.3, "V")})
    store.set_analysis({"t50": (12.5, "h")}, group="channel_01")
    store.log("compliance", "hit 50 mA at 5.8 V", logging.WARNING)
    store.close("finished")

    run = read_run(store.path)
    assert run.procedure == "jvl" and run.status == "finished"
    assert run.sample == "QD-LED #7 (red)" and run.operator == "ada" and run.simulated is True
    assert run.labrig_version == labrig.__version__
    assert run.abort_reason is None
    for stamp in (run.start_time, run.end_time):
        assert dt.datetime.fromisoformat(stamp).tzinfo is not None
    assert run.parameters["stop_voltage"] == (6.0, "V")
    assert run.parameters["points"] == (61, "")
    assert run.parameters["direction"] == ("up", "")
    assert run.parameters["spectra"] == (True, "")
    assert run.parameters["note"] == (None, "")
    np.testing.assert_array_equal(run.parameters["levels"][0], [1.0, 2.0, 3.0])
    data = run.columns["data"]
    assert list(data) == [c.name for c in COLUMNS]
    volts, units, long_name = data["voltage_v"]
    np.testing.assert_array_equal(volts, [0.0, 1.0, 2.0, 3.0])
    assert (units, long_name) == ("V", "applied voltage")
    assert data["current_density_ma_cm2"][1] == "mA/cm²"
    assert data["luminance_cd_m2"][1] == "cd/m²"
    # missing values are NaN (0 / "" for integer and text columns), never silently shifted
    assert np.isnan(data["current_density_ma_cm2"][0][3])
    np.testing.assert_array_equal(data["compliance"][0], [0, 0, 1, 0])
    assert list(data["status"][0]) == ["", "", "", "OK"]
    ch = run.columns["channel_01"]
    assert list(ch["status"][0]) == ["SHORT"] and ch["voltage_v"][0][0] == 5.0
    assert run.analysis[None]["peak_eqe"] == (26.1, "%")
    assert run.analysis["channel_01"]["t50"] == (12.5, "h")
    assert run.signal == "luminance_cd_m2" and run.axis == "voltage_v"
    assert run.config_text.startswith("name: simulated bench")
    inst = run.instruments["smu"]
    assert (inst.model, inst.serial_number, inst.firmware) == ("MODEL 2400", "4045678", "C30")
    assert inst.resource.startswith("TCPIP::") and inst.driver == "keithley2400"
    sp = run.spectra
    assert sp is not None
    np.testing.assert_allclose(sp.wavelength_nm, wl)
    np.testing.assert_array_equal(sp.counts[1], np.arange(8.0) * 2)
    np.testing.assert_array_equal(sp.step, [2, 3])
    np.testing.assert_array_equal(sp.integration_time_s, [0.1, 0.05])
    np.testing.assert_array_equal(sp.saturated, [False, True])
    np.testing.assert_array_equal(sp.dark_step, [2])
    kinds = [e.kind for e in run.log]
    assert kinds[0] == "start" and "compliance" in kinds and kinds[-1] == "finished"
    assert run.log[kinds.index("compliance")].level == logging.WARNING


def test_nexus_attributes(tmp_path: Path) -> None:
    store = _create(tmp_path, groups=["channel_01"])
    store.append_row({"voltage_v": 1.0, "luminance_cd_m2": 2.0})
    store.close("finished")
    with h5py.File(store.path, "r") as f:
        assert f.attrs["NX_class"] == "NXroot" and f.attrs["default"] == "entry"
        assert f.attrs["file_format"] == "labrig-run/3"
        assert f["entry"].attrs["NX_class"] == "NXentry"
        data = f["entry/data"]
        assert data.attrs["NX_class"] == "NXdata"
        assert data.attrs["signal"] == "luminance_cd_m2" and data.attrs["axes"] == "voltage_v"
        for name, col in zip(data.attrs["columns"], COLUMNS, strict=True):
            # long_name carries the units, so viewers label axes with them; "" is no unit
            if col.units:
                assert data[name].attrs["long_name"] == f"{col.long_name} ({col.units})"
                assert data[name].attrs["units"] == col.units
            else:
                assert data[name].attrs["long_name"] == col.long_name
                assert "units" not in data[name].attrs
        assert f["entry/parameters/stop_voltage"].attrs["units"] == "V"
        # a group that got no rows is no plot: an empty NXdata shows nothing in a viewer
        assert f["entry/channel_01"].attrs["NX_class"] == "NXcollection"
    assert read_run(store.path).columns["data"]["voltage_v"][1:] == ("V", "applied voltage")


def test_default_plot_moves_to_a_group_with_rows(tmp_path: Path) -> None:
    store = _create(tmp_path, groups=["channel_01", "channel_02"], default_plot="channel_01")
    store.append_row({"voltage_v": 1.0}, "channel_02")
    store.close("aborted", "stopped")
    with h5py.File(store.path, "r") as f:
        assert f["entry"].attrs["default"] == "channel_02"
        assert [f[f"entry/{g}"].attrs["NX_class"] for g in ("data", "channel_01")] == [
            "NXcollection"
        ] * 2
    resumed = RunStore.resume(store.path)  # rows may come again: plots again
    resumed.append_row({"voltage_v": 2.0}, "channel_01")
    resumed.close("finished")
    with h5py.File(store.path, "r") as f:
        assert f["entry/channel_01"].attrs["NX_class"] == "NXdata"
        assert f["entry/data"].attrs["NX_class"] == "NXcollection"


def test_resolved_config_and_requested_parameters_round_trip(tmp_path: Path) -> None:
    resolved = {
        "device": {"preset": ("red_cspbi3", ""), "active_area_cm2": (0.04, "cm^2")},
        "calibration": {"photodiode": {"responsivity": {"a_per_w": ([0.2, 0.4], "A/W")}}},
    }
    store = _create(
        tmp_path,
        parameters={"compliance_current": (0.05, "A"), "points": (61, "")},
        requested_parameters={"compliance_current": 0.0},
        resolved_config=resolved,
    )
    store.close("finished")
    run = read_run(store.path)
    assert run.parameters["compliance_current"] == (0.05, "A")  # the value used
    assert run.requested_parameters == {"compliance_current": 0.0}  # the value asked
    assert run.resolved_config["device"] == resolved["device"]
    table = run.resolved_config["calibration"]["photodiode"]["responsivity"]["a_per_w"]
    np.testing.assert_array_equal(table[0], [0.2, 0.4])
    assert table[1] == "A/W"
    with h5py.File(store.path, "r") as f:
        for name in ("resolved_config", "resolved_config/calibration/photodiode/responsivity"):
            assert f[f"entry/{name}"].attrs["NX_class"] == "NXcollection"


def test_unknown_default_plot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="default plot 'channel_01' is not one of the data"):
        _create(tmp_path, default_plot="channel_01")
    assert not list(tmp_path.glob("*.h5"))


def test_status_aborted_with_reason(tmp_path: Path) -> None:
    store = _create(tmp_path)
    store.append_row({"voltage_v": 1.0})
    store.close("aborted", "interrupted by SIGINT")
    store.close("finished")  # idempotent: the first ending stands
    run = read_run(store.path)
    assert (run.status, run.abort_reason) == ("aborted", "interrupted by SIGINT")
    with pytest.raises(RuntimeError, match="closed"):
        store.append_row({"voltage_v": 2.0})


def test_file_name_from_sample_procedure_and_time_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = dt.datetime(2026, 11, 21, 5, 40, 2).timestamp()
    monkeypatch.setattr(store_mod, "_now", lambda: start)
    names = []
    for _ in range(3):
        store = _create(tmp_path)
        store.close("finished")
        names.append(store.path.name)
    stem = "QD-LED_7_red_jvl_20261121-054002"
    assert names == [f"{stem}.h5", f"{stem}-2.h5", f"{stem}-3.h5"]
    assert all(read_run(tmp_path / n).status == "finished" for n in names)


def test_sanitize() -> None:
    assert sanitize("a/b\\c d") == "a_b_c_d"
    assert sanitize("../..") == "run"
    assert len(sanitize("x" * 200)) == 64


def test_unknown_column_and_group_are_refused(tmp_path: Path) -> None:
    store = _create(tmp_path)
    with pytest.raises(ValueError, match="unknown column"):
        store.append_row({"voltage": 1.0})
    with pytest.raises(ValueError, match="unknown data group"):
        store.append_row({"voltage_v": 1.0}, group="channel_09")
    with pytest.raises(ValueError, match="unequal length"):
        store.append_rows({"voltage_v": [1.0, 2.0], "luminance_cd_m2": [1.0]})
    store.close("failed", "test")


def test_a_row_fills_what_it_leaves_out_after_every_flush(tmp_path: Path) -> None:
    """Each column's buffer and fill are looked up once per store: rows appended after
    a flush still reach every column, a left-out one as its fill value."""
    store = _create(tmp_path)
    store.append_row({"voltage_v": 1.0, "compliance": 1, "status": "ok"})
    store.flush()
    store.append_row({"voltage_v": 2.0, "luminance_cd_m2": 5.0})
    store.close("finished")
    data = read_run(store.path).columns["data"]
    np.testing.assert_array_equal(data["voltage_v"][0], [1.0, 2.0])
    np.testing.assert_array_equal(data["luminance_cd_m2"][0], [np.nan, 5.0])
    np.testing.assert_array_equal(data["compliance"][0], [1, 0])
    assert list(data["status"][0]) == ["ok", ""]
    with pytest.raises(RuntimeError, match="already closed"):
        store.append_row({"voltage_v": 3.0})


def test_unwritable_output_dir_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UserInputError, match=str(blocker)):
        _create(blocker / "runs")


def test_flush_interval_writes_without_further_appends(tmp_path: Path) -> None:
    """The background flush brings a lone row to disk with no further call."""
    store = _create(tmp_path, flush_interval_s=0.1)
    store.append_row({"voltage_v": 4.2})
    import time

    deadline = time.monotonic() + 3
    seen = 0
    while time.monotonic() < deadline and not seen:
        time.sleep(0.1)
        with h5py.File(store.path, "r", libver="latest", swmr=True, locking=False) as f:
            seen = f["entry/data/voltage_v"].shape[0]
    store.close("finished")
    assert seen == 1


def test_resume_appends_to_the_same_file(tmp_path: Path) -> None:
    store = _create(tmp_path)
    store.append_rows({"voltage_v": [1.0, 2.0]})
    store.close("aborted", "interrupted by SIGINT")
    again = RunStore.resume(store.path)
    assert again.path == store.path
    again.append_rows({"voltage_v": [3.0]})
    again.close("finished")
    run = read_run(store.path)
    assert run.status == "finished" and run.abort_reason is None
    np.testing.assert_array_equal(run.columns["data"]["voltage_v"][0], [1.0, 2.0, 3.0])
    assert [e.kind for e in run.log].count("resumed") == 1


def test_rows_and_spectra_reach_the_file_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-row appends and single spectra are buffered and written many at a time (the
    speed this buys is measured by benchmarks/store_throughput.py, not here)."""
    from labrig.store import writer

    appended: dict[str, list[int]] = {}
    real_append = writer._append

    def counting(ds, values):
        appended.setdefault(ds.name, []).append(len(values))
        real_append(ds, values)

    monkeypatch.setattr(writer, "_append", counting)
    store = _create(tmp_path, spectrum_pixels=2048)
    for i in range(20_000):
        store.append_row({"voltage_v": i * 1e-3, "luminance_cd_m2": 1.0})
    spectrum = Spectrum(np.linspace(340, 1030, 2048), np.ones(2048), 0.01)
    for i in range(500):
        store.append_spectrum(i, spectrum)
    store.close("finished")
    rows, spectra = appended["/entry/data/voltage_v"], appended["/entry/spectra/counts"]
    assert sum(rows) == 20_000 and sum(spectra) == 500
    # the background flush every 0.5 s decides how many writes: on any machine, far
    # fewer than one a row (hundreds of rows a write) or one a spectrum
    assert len(rows) <= 20_000 / 100, rows
    assert max(spectra) <= writer.SPECTRA_SPILL and len(spectra) <= 500 / 10, spectra
    assert read_run(store.path).spectra.counts.shape == (500, 2048)


def test_read_run_rejects_files_that_are_not_runs(tmp_path: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(NotARunFileError, match="not an HDF5 file"):
        read_run(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(NotARunFileError, match="not a labrig run file"):
        read_run(other)
    with pytest.raises(NotARunFileError, match="no such file"):
        read_run(tmp_path / "missing.h5")
    assert issubclass(NotARunFileError, UserInputError)


def test_a_bad_value_does_not_lose_the_batch(tmp_path: Path, caplog) -> None:
    store = _create(tmp_path)
    store.append_rows(
        {"voltage_v": [1.0, "oops", None], "status": ["OK", None, "état"], "compliance": [1, 0, 1]}
    )
    store.close("finished")
    data = read_run(store.path).columns["data"]
    np.testing.assert_array_equal(data["voltage_v"][0], [1.0, np.nan, np.nan])
    assert list(data["status"][0]) == ["OK", "", "état"]
    assert "value 'oops' is not float64" in caplog.text


def test_context_manager_records_how_a_script_ended(tmp_path: Path) -> None:
    with _create(tmp_path) as store:
        store.append_row({"voltage_v": 1.0})
    assert read_run(store.path).status == "finished"
    with pytest.raises(ZeroDivisionError):
        with _create(tmp_path) as failing:
            1 / 0  # noqa: B018
    run = read_run(failing.path)
    assert (run.status, run.abort_reason) == ("failed", "ZeroDivisionError: division by zero")


def test_figures_are_in_the_file_as_soon_as_they_are_set(tmp_path: Path) -> None:
    """A lifetime channel's end, the J-V-L light threshold: a run killed later keeps them."""
    store = _create(tmp_path, groups=["channel_01"])
    store.set_analysis({"end_reason": ("T50 reached at 3 h", "")}, "channel_01")
    reader = (  # another process, as `labrig watch` or a resume after a crash
        "import sys; from labrig.store import read_run; run = read_run(sys.argv[1]); "
        "print(run.status, run.analysis['channel_01']['end_reason'])"
    )
    live = subprocess.run(
        [sys.executable, "-c", reader, str(store.path)], capture_output=True, text=True
    )
    assert live.stdout.strip() == "running ('T50 reached at 3 h', '')", live.stderr
    store.set_analysis({"peak_eqe": (12.5, "%")})
    store.close("finished")
    assert read_run(store.path).analysis == {
        "channel_01": {"end_reason": ("T50 reached at 3 h", "")},
        None: {"peak_eqe": (12.5, "%")},
    }
