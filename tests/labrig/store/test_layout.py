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


def test_lifetime_rows_are_41_bytes_status_an_enum_readings_float32(tmp_path, caplog):
    store = _lifetime_store(tmp_path)
    for status in ("OK", "COMPL", "SHORT", "BROKEN"):
        store.append_row({**ROW, "status": status}, "channel_01")
    store.append_row({"time": 2.0}, "channel_01")  # no status given
    with caplog.at_level(logging.WARNING):
        store.close("finished")
    assert "'BROKEN' is not one of ['OK', 'OFF', 'COMPL', 'OPEN', 'SHORT', 'WDOG']" in caplog.text
    with h5py.File(store.path, "r") as f:
        assert f.attrs["file_format"] == FILE_FORMAT == "labrig-run/3"
        grp = f["entry/channel_01"]
        sizes = {name: grp[name].dtype.itemsize for name in grp if grp[name].shape != ()}
        assert sum(sizes.values()) == 41
        # the set current and the dark current are the channel's, stored once
        assert {name for name in grp if grp[name].shape == ()} == {
            "current_set",
            "photodiode_dark",
        }
        assert grp["current_set"][()] == np.float32(4e-5)
        assert grp["photodiode_dark"].attrs["units"] == "A"
        assert grp["time"].dtype == "f8" and grp["luminance"].dtype == "f4"
        assert h5py.check_enum_dtype(grp["status"].dtype) == {
            "?": 0, "OK": 1, "OFF": 2, "COMPL": 3, "OPEN": 4, "SHORT": 5, "WDOG": 6
        }  # fmt: skip
        np.testing.assert_array_equal(grp["status"][()], [1, 3, 5, 0, 0])
    cols = read_run(store.path).columns["channel_01"]
    assert list(cols["status"][0]) == ["OK", "COMPL", "SHORT", "?", "?"]
    assert cols["luminance"][0][0] == pytest.approx(123.45678, rel=1e-7)  # 7 digits kept
    assert cols["time"][0][0] == 1.0
    # read back as columns, the channel's value in every row (the row without it too)
    np.testing.assert_array_equal(cols["current_set"][0], np.full(5, 4e-5, "f4"))
    assert cols["current_set"][1:] == ("A", "set current")


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


def test_a_constant_column_refuses_a_second_value_before_buffering_the_row(tmp_path):
    store = _lifetime_store(tmp_path)
    store.append_row({**ROW, "status": "OK"}, "channel_01")
    with pytest.raises(ValueError, match="'current_set' is constant per data group; channel_01"):
        store.append_row({**ROW, "time": 2.0, "current_set": 5e-5}, "channel_01")
    with pytest.raises(ValueError, match="rows for channel_01 gave"):
        store.append_rows({"time": [3.0, 4.0], "photodiode_dark": [2e-12, 3e-12]}, "channel_01")
    store.append_rows({"time": [5.0], "current_set": [np.nan]}, "channel_01")  # NaN: not given
    store.close("finished")
    cols = read_run(store.path).columns["channel_01"]
    assert list(cols["time"][0]) == [1.0, 5.0]  # neither refused row reached the file
    np.testing.assert_array_equal(cols["current_set"][0], np.full(2, 4e-5, "f4"))


def test_a_resumed_format_3_run_keeps_its_constants(tmp_path):
    store = _lifetime_store(tmp_path)
    store.append_row({**ROW, "status": "OK"}, "channel_01")
    store.close("aborted", "test")
    again = RunStore.resume(store.path)
    # the value as read back from the file (float32) is the same value
    again.append_row({**ROW, "time": 2.0, "current_set": float(np.float32(4e-5))}, "channel_01")
    with pytest.raises(ValueError, match="constant per data group"):
        again.append_row({**ROW, "time": 3.0, "photodiode_dark": 1e-12}, "channel_01")
    again.close("finished")
    with h5py.File(store.path, "r") as f:
        assert f["entry/channel_01/current_set"].shape == ()
        assert f["entry/channel_01/time"].shape == (2,)
