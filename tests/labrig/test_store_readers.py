"""Every procedure's run file opened by tools labrig did not write: Debian's HDF5 1.10
``h5dump``, nexusformat (its NeXus check and default plot), silx (its default NXdata) and
pint (every units attribute).  And files written before the layout changed still open."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_runs import shared_run  # noqa: E402

from labrig.store import read_run  # noqa: E402

PROCEDURES = ("jvl", "spectrum", "pulsed-el", "lifetime", "solar-jv", "sclc")
#: the group each procedure's default plot must be
DEFAULT_PLOT = {
    "jvl": "/entry/data",
    "spectrum": "/entry/spectra",
    "pulsed-el": "/entry/data",
    "lifetime": "/entry/channel_01",
    "solar-jv": "/entry/light_reverse",
    "sclc": "/entry/data",
}


@pytest.fixture(scope="module", params=PROCEDURES)
def run_file(request, tmp_path_factory) -> tuple[str, Path]:
    return request.param, shared_run(request.param, tmp_path_factory)


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="hdf5-tools not installed")
def test_hdf5_1_10_h5dump_reads_the_file(run_file) -> None:
    _, path = run_file
    version = subprocess.run(["h5dump", "--version"], capture_output=True, text=True).stdout
    done = subprocess.run(["h5dump", "-H", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, (version, done.stderr[-500:])
    assert 'GROUP "entry"' in done.stdout and 'GROUP "resolved_config"' in done.stdout


def test_nexusformat_finds_no_error_and_plots_the_default(run_file) -> None:
    import nexusformat.nexus as nx

    procedure, path = run_file
    root = nx.nxload(str(path), "r")
    warnings, errors = root.check()
    assert errors == 0
    plot = root.plottable_data
    assert plot.nxpath == DEFAULT_PLOT[procedure]
    signal = np.asarray(plot.nxsignal.nxdata)
    assert signal.size > 0 and np.isfinite(signal).any()


def test_silx_default_is_a_valid_non_empty_nxdata(run_file) -> None:
    from silx.io.nxdata import get_default

    procedure, path = run_file
    with h5py.File(path, "r") as f:
        default = get_default(f)
        assert default is not None and default.is_valid, procedure
        assert default.group.name == DEFAULT_PLOT[procedure]
        assert default.signal.size > 0
        axis = default.axes[-1]  # the x axis (spectra: one row per spectrum)
        assert axis is not None and axis.shape == default.signal.shape[-1:]
        # the viewers label axes with long_name: it carries the units
        units = axis.attrs["units"]
        assert axis.attrs["long_name"].endswith(f" ({units})")


def test_every_group_is_classed_and_no_nxdata_is_empty(run_file) -> None:
    procedure, path = run_file
    problems = []

    def visit(name: str, obj) -> None:
        if not isinstance(obj, h5py.Group):
            return
        nx_class = obj.attrs.get("NX_class")
        if nx_class is None:
            problems.append(f"{name}: no NX_class")
        elif nx_class == "NXdata" and obj[obj.attrs["signal"]].size == 0:
            problems.append(f"{name}: empty NXdata")

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    assert problems == [], procedure


def test_every_units_attribute_parses_in_pint(run_file) -> None:
    import pint

    registry = pint.UnitRegistry()
    procedure, path = run_file
    found: dict[str, str] = {}

    def visit(name: str, obj) -> None:
        units = obj.attrs.get("units")
        if units is not None:
            found[units.decode() if isinstance(units, bytes) else str(units)] = name

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    bad = {}
    for units, where in found.items():
        try:
            registry.parse_units(units)
        except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError):
            bad[where] = units
        # pint reads 'a.u.' as atomic mass unit x year: abbreviations with dots are no units
        if "." in units:
            bad[where] = units
    assert bad == {}, procedure
    assert {"A", "s"} <= set(found) and "" not in found


# ---------------------------------------------------------------- files written before
def test_a_file_in_the_first_layout_still_opens(tmp_path: Path) -> None:
    """The first layout: written at libver="latest", no resolved configuration, units and
    long_name without units, empty units strings, every data group an NXdata."""
    path = tmp_path / "old.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs.update(NX_class="NXroot", default="entry", file_format="labrig-run/1")
        entry = f.create_group("entry")
        entry.attrs.update(NX_class="NXentry", default="data", data_groups=["data"])
        for name, value in (
            ("procedure", "jvl"),
            ("status", "finished"),
            ("start_time", "2026-11-01T10:00:00.000+00:00"),
            ("sample", "old"),
            ("operator", ""),
            ("config", "device: {preset: red_cspbi3}\n"),
        ):
            entry.create_dataset(name, data=value, dtype=h5py.string_dtype())
        entry["simulated"] = True
        params = entry.create_group("parameters")
        params["compliance_current"] = 0.0
        params["compliance_current"].attrs["units"] = "A"
        data = entry.create_group("data")
        data.attrs.update(NX_class="NXdata", signal="luminance", axes="voltage")
        data.attrs["columns"] = ["voltage", "luminance", "compliance"]
        for name, units, values in (
            ("voltage", "V", [1.0, 2.0]),
            ("luminance", "cd/m^2", [0.0, 5.0]),
            ("compliance", "", [0, 1]),
        ):
            data[name] = np.asarray(values)
            data[name].attrs.update(units=units, long_name=name)
        log = entry.create_group("log")
        for name, dtype in (("time", "f8"), ("level", "i4"), ("kind", "S64"), ("message", "S64")):
            log.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype)
    run = read_run(path)
    assert run.procedure == "jvl" and run.status == "finished" and run.simulated is True
    assert run.columns["data"]["luminance"][1:] == ("cd/m^2", "luminance")
    np.testing.assert_array_equal(run.columns["data"]["compliance"][0], [0, 1])
    assert run.parameters["compliance_current"] == (0.0, "A")
    assert run.resolved_config == {} and run.requested_parameters == {}
    assert run.config_text.startswith("device:")
    # and the readers built on it: inspect, the report's loader
    from labrig.describe import describe_run
    from labrig.store import load_run

    text = describe_run(path)
    assert "luminance" in text and "cd/m^2" in text
    loaded = load_run(path)
    np.testing.assert_array_equal(loaded.run.columns["data"]["voltage"][0], [1.0, 2.0])
