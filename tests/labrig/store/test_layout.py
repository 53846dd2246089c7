"""Format 2's compact columns: enumerated text as one-byte HDF5 enum codes whose names
every reader shows, float32 where a procedure's column says so."""

from __future__ import annotations

import logging
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from labrig.procedures.lifetime import LifetimeProcedure
from labrig.store import FILE_FORMAT, RunStore, read_run

ROW = {
    "time": 1.0,
    "rig_time": 11.0,
    "voltage": 3.1234567,
    "current": 4e-5,
    "current_set": 4e-5,
    "current_density": 1.0,
    "photodiode_current": 1.2345678e-7,
    "photodiode_dark": 2e-12,
    "luminance": 123.45678,
    "relative_luminance": 0.987654321,
}


def _lifetime_store(tmp_path) -> RunStore:
    return RunStore.create(
        tmp_path,
        procedure="lifetime",
        sample="s",
        columns=LifetimeProcedure.COLUMNS,
        signal="relative_luminance",
        axis="time",
        parameters={},
        config_text="",
        simulated=True,
        groups=["channel_01"],
    )


def test_lifetime_rows_are_49_bytes_status_an_enum_readings_float32(tmp_path, caplog):
    store = _lifetime_store(tmp_path)
    for status in ("OK", "COMPL", "SHORT", "BROKEN"):
        store.append_row({**ROW, "status": status}, "channel_01")
    store.append_row({"time": 2.0}, "channel_01")  # no status given
    with caplog.at_level(logging.WARNING):
        store.close("finished")
    assert "'BROKEN' is not one of ['OK', 'OFF', 'COMPL', 'OPEN', 'SHORT', 'WDOG']" in caplog.text
    with h5py.File(store.path, "r") as f:
        assert f.attrs["file_format"] == FILE_FORMAT == "labrig-run/2"
        grp = f["entry/channel_01"]
        sizes = {name: grp[name].dtype.itemsize for name in grp}
        assert sum(sizes.values()) == 49
        assert grp["time"].dtype == "f8" and grp["luminance"].dtype == "f4"
        assert h5py.check_enum_dtype(grp["status"].dtype) == {
            "?": 0, "OK": 1, "OFF": 2, "COMPL": 3, "OPEN": 4, "SHORT": 5, "WDOG": 6
        }  # fmt: skip
        np.testing.assert_array_equal(grp["status"][()], [1, 3, 5, 0, 0])
    cols = read_run(store.path).columns["channel_01"]
    assert list(cols["status"][0]) == ["OK", "COMPL", "SHORT", "?", "?"]
    assert cols["luminance"][0][0] == pytest.approx(123.45678, rel=1e-7)  # 7 digits kept
    assert cols["time"][0][0] == 1.0


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="hdf5-tools not installed")
def test_h5dump_shows_the_status_names(tmp_path):
    store = _lifetime_store(tmp_path)
    store.append_row({**ROW, "status": "WDOG"}, "channel_01")
    store.close("finished")
    out = subprocess.run(
        ["h5dump", "-d", "/entry/channel_01/status", str(store.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "H5T_ENUM" in out and '"WDOG"' in out and "(0): WDOG" in out


def test_a_resumed_format_2_run_keeps_its_enum(tmp_path):
    store = _lifetime_store(tmp_path)
    store.append_row({**ROW, "status": "OK"}, "channel_01")
    store.close("aborted", "test")
    again = RunStore.resume(store.path)
    again.append_row({**ROW, "time": 2.0, "status": "OPEN"}, "channel_01")
    again.close("finished")
    assert list(read_run(store.path).columns["channel_01"]["status"][0]) == ["OK", "OPEN"]
