"""Limits.check: the one check of a requested drive against the config's safety limits,
one line naming the value, the limit and where it is set; check_drives asks the
configured driver's own ranges first; a procedure's default validate checks what it
declares."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pymeasure.experiment import FloatParameter

from labrig.config import load_config
from labrig.errors import SafetyLimitError
from labrig.limits import Drive, Limits, Requested, check_drives
from labrig.procedure import LabrigProcedure

LIMITS = Limits(max_voltage_v=12, max_current_a=0.1, default_compliance_a=0.05)


@pytest.mark.parametrize(
    ("drive", "message"),
    [
        (
            Requested("voltage", 15.0, "stop_voltage"),
            "stop_voltage=15 V exceeds limits.max_voltage_v (12 V)",
        ),
        (
            Requested("current", -0.2, "drive_current", units="mA"),
            "drive_current=-200 mA exceeds limits.max_current_a (100 mA)",
        ),
        (
            Requested("voltage", -13.0, "voltages", context="the sweep reaches"),
            "voltages: the sweep reaches -13 V, beyond limits.max_voltage_v (12 V)",
        ),
        (Requested("current", 0.5), "current 0.5 A exceeds limits.max_current_a (0.1 A)"),
        (
            Drive(Requested("voltage", 5.0, "drive_voltage"), Requested("current", 0.2, "icc")),
            "icc=0.2 A exceeds limits.max_current_a (0.1 A)",
        ),
    ],
)
def test_refusal_is_one_line_naming_value_limit_and_where_set(drive, message):
    with pytest.raises(SafetyLimitError) as info:
        LIMITS.check(drive)
    assert str(info.value) == message


def test_values_at_the_limits_pass():
    LIMITS.check(Drive(Requested("voltage", -12.0), Requested("current", 0.1)))
    LIMITS.check(Requested("current", 0.0))


def test_a_value_that_is_not_a_number_is_refused():
    with pytest.raises(SafetyLimitError, match=r"^bias=nan V: not a finite number$"):
        LIMITS.check(Requested("voltage", float("nan"), "bias"))


def test_current_density_and_power_limits_when_configured():
    strict = LIMITS.model_copy(update={"max_current_density_ma_cm2": 500.0, "max_power_w": 0.3})
    strict.check(Requested("current", 0.02, "levels", "mA"), area_cm2=0.04)  # 500 mA/cm²
    with pytest.raises(SafetyLimitError) as info:
        strict.check(Requested("current", 0.03, "levels", "mA"), area_cm2=0.04)
    assert str(info.value) == (
        "levels=30 mA is 750 mA/cm² on the 0.04 cm² device, beyond "
        "limits.max_current_density_ma_cm2 (500 mA/cm²)"
    )
    strict.check(Drive(Requested("voltage", 6.0, "v"), Requested("current", 0.05, "icc")))
    with pytest.raises(SafetyLimitError) as info:
        strict.check(Drive(Requested("voltage", 8.0, "v"), Requested("current", 0.05, "icc")))
    assert str(info.value) == (
        "v=8 V with icc=0.05 A may put 0.4 W into the device, beyond limits.max_power_w (0.3 W)"
    )
    LIMITS.check(Requested("current", 0.1), area_cm2=1e-6)  # no density limit configured


def test_config_carries_the_optional_limits():
    config = load_config("sim")
    assert config.limits.max_current_density_ma_cm2 is None and config.limits.max_power_w is None


def test_check_drives_asks_the_configured_driver_before_the_config_limits():
    config = load_config("sim")
    wide = config.model_copy(
        update={"limits": Limits(max_voltage_v=200, max_current_a=1.0, default_compliance_a=0.1)}
    )
    # the 2400 sources > 105 mA only up to 21 V: within the config's limits, not the 2400's
    drive = Drive(Requested("current", 0.5, "drive_levels"), Requested("voltage", 50.0, "comp"))
    with pytest.raises(SafetyLimitError) as info:
        check_drives(wide, [drive])
    assert str(info.value) == (
        "drive_levels: Keithley 2400: source current 0.5 A is above 105 mA, allowed only up "
        "to ±21 V, but compliance is 50 V"
    )
    # the config's limits still apply to what the 2400 could do
    with pytest.raises(
        SafetyLimitError, match=r"^comp=15 V exceeds limits.max_voltage_v \(12 V\)$"
    ):
        check_drives(
            config, [Drive(Requested("current", 0.01), Requested("voltage", 15.0, "comp"))]
        )


class _Toy(LabrigProcedure):
    """A procedure that only declares its drive: the default validate checks it."""

    NAME = "toy"
    REQUIRED_ROLES: ClassVar[tuple[str, ...]] = ("smu",)
    bias = FloatParameter("Bias", units="V", default=1.0)
    compliance_current = FloatParameter("Compliance", units="A", default=0.01)

    def drives(self, config):
        return [
            Drive(
                Requested("voltage", self.bias, "bias"),
                Requested("current", self.compliance_current, "compliance_current"),
            )
        ]


def test_default_validate_checks_the_declared_drives():
    config = load_config("sim")
    _Toy(bias=12.0).validate(config)
    with pytest.raises(SafetyLimitError, match=r"^bias=12.5 V exceeds limits.max_voltage_v"):
        _Toy(bias=12.5).validate(config)
    with pytest.raises(SafetyLimitError, match="compliance 0 A is outside the allowed"):
        _Toy(compliance_current=0.0).validate(config)  # the 2400's own range, from its driver
