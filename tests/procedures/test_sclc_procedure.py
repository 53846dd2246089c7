"""sclc end to end: simulated single-carrier film -> simulated 2400 over TCP -> HDF5."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import yaml

from labrig.config import load_config, parse_config
from labrig.errors import ParameterError, SafetyLimitError
from labrig.procedures.sclc import SCLCProcedure
from labrig.runner import run_procedure


def _config(**device):
    """The shipped sclc_sim bench with ``device`` keys merged over its preset."""
    data = yaml.safe_load(load_config("sclc_sim").source_text)
    data["device"].update(device)
    return parse_config(data)


def _run(tmp_path, config, **params):
    result = run_procedure(SCLCProcedure(**params), config, output_dir=tmp_path)
    assert result.status == "finished", result.reason
    return result


def _analysis(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f["entry/analysis"][k][()] for k in f["entry/analysis"]}


@pytest.mark.parametrize(
    ("preset", "mobility", "trap_density"),
    [("hole_only_cspbbr3", 0.01, 1e15), ("electron_only_cspbbr3", 0.02, 3e14)],
)
def test_recovers_the_preset_mobility_and_trap_density(tmp_path, preset, mobility, trap_density):
    result = _run(tmp_path, _config(preset=preset))
    a = _analysis(result.path)
    assert a["mobility"] == pytest.approx(mobility, rel=0.10)
    assert a["trap_density"] == pytest.approx(trap_density, rel=0.10)
    assert a["child_fit_v_min"] > a["v_tfl"] and a["child_fit_v_max"] == pytest.approx(10, rel=0.01)
    assert a["ohmic_slope"] == pytest.approx(1.0, abs=0.05)
    assert a["tfl_slope"] > 3
    assert a["child_slope"] == pytest.approx(2.0, abs=0.15)
    with h5py.File(result.path, "r") as f:
        v, slope = f["entry/data/voltage"][()], f["entry/data/slope"][()]
        assert slope[0] == pytest.approx(1.0, abs=0.05) and slope[-1] == pytest.approx(
            2.0, abs=0.05
        )
        assert slope.max() > 3
        assert len(v) == 61 and v[0] == pytest.approx(0.01) and v[-1] == pytest.approx(10.0)
        assert np.allclose(np.diff(np.log(v)), np.log(10) / 20, rtol=1e-3)  # log spaced
        assert f["entry/analysis/mobility"].attrs["units"] == "cm^2/(V*s)"
        assert f["entry/analysis/trap_density"].attrs["units"] == "cm^-3"


def test_recovers_config_given_parameters(tmp_path):
    config = _config(
        thickness_nm=1200,
        relative_permittivity=15,
        model={
            "mobility_cm2_vs": 0.004,
            "trap_density_cm3": 2e15,
            "free_carrier_density_cm3": 3e12,
        },
    )
    a = _analysis(_run(tmp_path, config, points=91).path)
    assert a["mobility"] == pytest.approx(0.004, rel=0.10)
    assert a["trap_density"] == pytest.approx(2e15, rel=0.10)


def test_no_slope_two_region_reports_no_mobility(tmp_path):
    result = _run(tmp_path, _config(), stop_voltage=2.0, points=50)
    a = _analysis(result.path)
    assert "mobility" not in a and "child_fit_v_min" not in a
    notes = a["notes"].decode() if isinstance(a["notes"], bytes) else a["notes"]
    assert "no Mott–Gurney mobility" in notes
    assert a["trap_density"] == pytest.approx(1e15, rel=0.10)
    with h5py.File(result.path, "r") as f:
        messages = [m.decode() for m in f["entry/log/message"][()]]
        assert any("no Mott–Gurney mobility" in m for m in messages)


def test_compliance_stops_the_sweep_and_is_flagged(tmp_path):
    result = _run(tmp_path, _config(), compliance_current=1e-3)
    with h5py.File(result.path, "r") as f:
        i, hit = f["entry/data/current"][()], f["entry/data/compliance"][()]
        assert 30 < len(i) < 61  # the instrument aborted the sweep at compliance
        assert np.all(np.abs(i[~hit.astype(bool)]) <= 1e-3)
        kinds, messages = f["entry/log/kind"][()], f["entry/log/message"][()]
        log = {k.decode(): m for k, m in zip(kinds, messages, strict=True)}
        assert "compliance" in log and b"the sweep stopped" in log["compliance"]


def test_missing_geometry_and_limits_are_refused_before_the_run(tmp_path):
    data = yaml.safe_load(load_config("sclc_sim").source_text)
    data["device"] = {
        "kind": "single_carrier",
        "model": {"kind": "single_carrier"},
        "relative_permittivity": 22,
    }
    with pytest.raises(ParameterError, match="device.thickness_nm"):
        run_procedure(SCLCProcedure(), parse_config(data), output_dir=tmp_path)
    data["device"] = {
        "kind": "single_carrier",
        "model": {"kind": "single_carrier"},
        "thickness_nm": 100,
    }
    with pytest.raises(ParameterError, match="device.relative_permittivity"):
        run_procedure(SCLCProcedure(), parse_config(data), output_dir=tmp_path)
    with pytest.raises(SafetyLimitError, match="max_voltage_v"):
        run_procedure(SCLCProcedure(stop_voltage=20), _config(), output_dir=tmp_path)
    with pytest.raises(ParameterError, match="start_voltage"):
        run_procedure(
            SCLCProcedure(start_voltage=5, stop_voltage=1), _config(), output_dir=tmp_path
        )
    assert not list(tmp_path.iterdir())


def test_a_stop_mid_sweep_keeps_the_chunks_already_read(tmp_path, monkeypatch):
    """The 2400 sweeps in chunks of <= 0.5 s; a stop after two of them leaves those
    points in the file (no slope: the analysis needs the whole sweep), run aborted."""
    from labrig.drivers.keithley2400 import Keithley2400
    from labrig.errors import RunAborted
    from labrig.store import read_run

    real = Keithley2400.sweep_chunks
    taken: list[int] = []

    def two_then_stop(self, levels, **kw):
        for chunk in real(self, levels, **kw):
            taken.append(len(chunk))
            yield chunk
            if len(taken) == 2:
                raise RunAborted("stopped by the test")

    monkeypatch.setattr(Keithley2400, "sweep_chunks", two_then_stop)
    result = run_procedure(
        SCLCProcedure(points=61), load_config("sclc_sim"), output_dir=tmp_path, progress=False
    )
    assert (result.status, result.reason) == ("aborted", "stopped by the test")
    run = read_run(result.path)
    volts = run.columns["data"]["voltage"][0]
    assert len(volts) == sum(taken) and 0 < len(volts) < 61
    assert volts == pytest.approx(SCLCProcedure(points=61).voltages()[: len(volts)], rel=1e-3)
    assert np.isnan(run.columns["data"]["slope"][0]).all()
