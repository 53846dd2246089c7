"""Device config models: strict, unit-suffixed keys; shipped presets validate."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labrig.config import load_preset, shipped_config_dir
from labrig.devices import DegradationModel, DeviceConfig, LEDModel

#: keys that are dimensionless by nature (everything else must carry a unit suffix)
DIMENSIONLESS = {
    "kind", "ideality", "m", "a", "b", "eqe_max", "degradation", "fraction1",
    "acceleration_exponent", "stretch_exponent", "peak_shift_nm_per_decade", "eqe_temperature_coefficient_per_k",
}  # fmt: skip
UNIT_SUFFIXES = ("_a_cm2", "_a_cm2_vm", "_ohm_cm2", "_nm", "_k", "_s", "_h", "_k_cm2_w")


@pytest.mark.parametrize("model", [LEDModel, DegradationModel])
def test_keys_carry_units(model: type) -> None:
    for name in model.model_fields:
        assert name in DIMENSIONLESS or name.endswith(UNIT_SUFFIXES), name


def test_unknown_and_bad_values_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        LEDModel(peak_wavelength=628)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="eqe_max"):
        LEDModel(eqe_max=1.5)
    with pytest.raises(ValidationError, match="j0_a_cm2"):
        LEDModel(j0_a_cm2=0)
    with pytest.raises(ValidationError, match="fraction1"):
        DegradationModel(fraction1=1.2)
    with pytest.raises(ValidationError, match="peak_shift_nm_per_decade"):
        LEDModel(peak_shift_nm_per_decade=100)
    with pytest.raises(ValidationError, match="ambient_temperature_k"):
        LEDModel(ambient_temperature_k=20)


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (shipped_config_dir() / "devices").glob("*.yaml"))
)
def test_shipped_presets_validate(name: str) -> None:
    dev = DeviceConfig.model_validate(load_preset(name))
    assert dev.model is not None
    assert dev.model.kind == dev.kind


@pytest.mark.parametrize(
    ("name", "peak_nm"), [("red_cspbi3", 628), ("green_cspbbr3", 512), ("blue_cspbbr3", 475)]
)
def test_led_presets(name: str, peak_nm: float) -> None:
    dev = DeviceConfig.model_validate(load_preset(name))
    assert isinstance(dev.model, LEDModel)
    assert dev.model.peak_nm == peak_nm
    assert dev.model.degradation.reference_current_density_a_cm2 > 0
