"""The contact rule: a shorted pixel conducts ohmically far below turn-on, an open one
shows nothing where a diode conducts; every shipped LED device, as simulated, is neither
(down to 1 V and from 3 V), and a device failing later in a sweep is not a contact
defect."""

from __future__ import annotations

import numpy as np
import pytest

from labrig.analysis.contact import (
    CONDUCTING_V,
    LOW_BIAS_V,
    ContactCheck,
    contact_defect,
)
from labrig.config import load_preset
from labrig.devices import LEDModel
from labrig.simulators.led import LEDDevice
from labrig.simulators.physics import OPEN_OHM, SHORT_OHM


def test_a_short_in_compliance_at_low_bias():
    defect = contact_defect(0.025, 0.05, 0.04, in_compliance=True)
    assert defect is not None and defect.kind == "short"
    assert defect.note == (
        "shorted: 1250 mA/cm² at 0.025 V (in compliance), ohmic far below turn-on "
        "(over 10 mA/cm² at up to 1 V)"
    )


def test_an_ohmic_short_below_compliance():
    volts = 0.5
    defect = contact_defect(volts, volts / SHORT_OHM * 1e-3, 0.04)  # a 500 Ω pixel
    assert defect is not None and defect.kind == "short"
    assert defect.note.startswith("shorted: 25 mA/cm² at 0.5 V, ohmic")


def test_an_open_pixel_where_a_diode_conducts():
    defect = contact_defect(3.0, 3.0 / OPEN_OHM, 0.04)
    assert defect is not None and defect.kind == "open"
    assert defect.note == (
        "open: 3e-12 A at 3 V, where a diode conducts (under 1e-09 A from 3 V): nothing on "
        "the contacts"
    )


def test_reverse_bias_and_zero_are_never_judged_open_or_short():
    assert contact_defect(-5.0, -1e-12, 0.04) is None  # a diode blocks in reverse
    assert contact_defect(0.0, 0.0, 0.04) is None


@pytest.mark.parametrize("preset", ["red_cspbi3", "green_cspbbr3", "blue_cspbbr3"])
def test_every_shipped_led_is_neither_shorted_nor_open(preset):
    model = LEDModel.model_validate(load_preset(preset)["model"])
    device = LEDDevice(model, 0.04)
    check = ContactCheck(0.04)
    for volts in np.arange(0.1, LOW_BIAS_V + 1e-9, 0.1):
        assert check.point(volts, device.current_at(volts)) is None
    at_conducting = device.current_at(CONDUCTING_V)
    assert at_conducting > 100 * 1e-9  # two decades above the open threshold
    assert check.point(CONDUCTING_V, at_conducting) is None and check.proven


def test_after_the_pixel_conducted_a_later_failure_is_not_a_contact_defect():
    check = ContactCheck(0.04)
    assert check.point(3.0, 1e-4) is None and check.proven
    assert check.point(4.0, 4.0 / OPEN_OHM) is None  # failed open at high drive: breakdown
    fresh = ContactCheck(0.04)
    assert fresh.point(4.0, 4.0 / OPEN_OHM).kind == "open"
