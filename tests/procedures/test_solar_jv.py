"""solar-jv end to end: simulated PbS cell -> simulated 2400 over TCP -> driver -> HDF5."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from labrig.config import load_config
from labrig.errors import ParameterError, SafetyLimitError
from labrig.procedures.solar_jv import SolarJVProcedure
from labrig.runner import run_procedure
from labrig.simulators.solar_cell import SolarCell


@pytest.fixture(scope="module")
def config():
    return load_config("solar_sim")


@pytest.fixture(scope="module")
def truth(config):
    return SolarCell(config.device.model, config.device.active_area_cm2)


def _text(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def test_default_scan_recovers_the_preset_within_1_percent(config, truth, tmp_path):
    result = run_procedure(SolarJVProcedure(), config, output_dir=tmp_path)
    assert result.status == "finished", result.reason
    with h5py.File(result.path, "r") as f:
        data, analysis = f["entry/data"], f["entry/analysis"]
        scan, direction = _text(data["scan"][()]), _text(data["direction"][()])
        v, j = data["voltage"][()], data["current_density"][()]
        assert len(v) == 4 * 41
        assert scan.count("dark") == scan.count("light") == 82
        assert direction.count("forward") == direction.count("reverse") == 82
        assert data["current_density"].attrs["units"] == "mA/cm^2"
        # device side: the inverted cell's -0.7 -> +0.1 V SMU scan is +0.7 -> -0.1 V
        assert v.min() == pytest.approx(-0.1, abs=1e-3) and v.max() == pytest.approx(0.7, abs=1e-3)
        light = np.array(scan) == "light"
        assert j[light & np.isclose(v, 0.0, atol=1e-6)] == pytest.approx(
            -truth.jsc() * 1e3, rel=0.01
        )
        dark = ~light
        assert np.all(np.abs(j[dark & np.isclose(v, 0.0, atol=1e-6)]) < 1e-3)
        for d in ("forward", "reverse"):
            assert analysis[f"{d}_voc"][()] == pytest.approx(truth.voc(), rel=0.01)
            assert analysis[f"{d}_jsc"][()] == pytest.approx(truth.jsc() * 1e3, rel=0.01)
            assert analysis[f"{d}_ff"][()] == pytest.approx(truth.ff() * 100, rel=0.01)
            assert analysis[f"{d}_pce"][()] == pytest.approx(truth.pce() * 100, rel=0.01)
            assert analysis[f"{d}_pce"].attrs["units"] == "%"
        # and against the paper (Choi et al. 2020) the preset is built on
        assert analysis["reverse_voc"][()] == pytest.approx(0.65, rel=0.01)
        assert analysis["reverse_jsc"][()] == pytest.approx(30.2, rel=0.01)
        assert analysis["reverse_ff"][()] == pytest.approx(68.0, rel=0.01)
        assert analysis["reverse_pce"][()] == pytest.approx(13.3, rel=0.01)
        # a static cell has no hysteresis
        assert abs(analysis["hysteresis_index"][()]) < 0.005


def test_mpp_tracking_settles_at_the_maximum_power_point(config, truth, tmp_path):
    proc = SolarJVProcedure(mpp_duration=30.0, mpp_interval=0.5, mpp_step=0.005)
    result = run_procedure(proc, config, output_dir=tmp_path)
    assert result.status == "finished", result.reason
    vmp, _, pmax = truth.max_power_point()
    with h5py.File(result.path, "r") as f:
        mpp = f["entry/mpp"]
        assert len(mpp["voltage"]) == 60
        assert set(_text(mpp["direction"][()])) == {"mpp"}
        t = mpp["timestamp"][()]
        assert np.allclose(np.diff(t), 0.5, rtol=1e-6)  # on schedule, simulated clock
        a = f["entry/analysis"]
        assert a["mpp_voltage"][()] == pytest.approx(vmp, abs=0.01)
        assert a["mpp_power"][()] == pytest.approx(pmax * 1e3, rel=0.01)


def test_normal_polarity_and_any_range(config, truth, tmp_path):
    normal = config.model_copy(
        update={
            "device": config.device.model_copy(
                update={
                    "model": config.device.model.model_copy(update={"terminal_polarity": "normal"})
                }
            )
        }
    )
    proc = SolarJVProcedure(
        start_voltage=-0.2, stop_voltage=0.8, step_voltage=0.01, polarity="normal", mask_area=0.049
    )
    result = run_procedure(proc, normal, output_dir=tmp_path)
    assert result.status == "finished", result.reason
    with h5py.File(result.path, "r") as f:
        assert len(f["entry/data/voltage"]) == 4 * 101
        assert f["entry/analysis/forward_voc"][()] == pytest.approx(truth.voc(), rel=0.01)
        assert f["entry/analysis/forward_pce"][()] == pytest.approx(truth.pce() * 100, rel=0.01)


def test_voc_beyond_the_scan_is_reported_not_extrapolated(config, tmp_path):
    proc = SolarJVProcedure(start_voltage=-0.5, stop_voltage=0.1)
    result = run_procedure(proc, config, output_dir=tmp_path)
    assert result.status == "finished", result.reason
    with h5py.File(result.path, "r") as f:
        a = f["entry/analysis"]
        assert "forward_voc" not in a and "forward_pce" not in a
        assert _text([a["forward_voc_status"][()]]) == ["above the scanned range"]
        assert "forward_jsc" in a


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start_voltage": -0.7, "stop_voltage": -0.1}, ParameterError, "does not include 0 V"),
        ({"mask_area": 0.0}, ParameterError, "mask_area"),
        ({"step_voltage": 0.03}, ParameterError, "step_voltage"),
        ({"start_voltage": -3.0, "step_voltage": 0.1}, SafetyLimitError, "max_voltage_v"),
    ],
)
def test_bad_parameters_touch_no_hardware(config, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_procedure(SolarJVProcedure(**kwargs), config, output_dir=tmp_path)
    assert not list(tmp_path.iterdir())
