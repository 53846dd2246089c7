"""Is a working diode on the contacts?  The one rule that calls a pixel shorted or open,
from the first points of a voltage sweep.

* **Shorted**: at a bias far below any LED's turn-on (``|V| <= LOW_BIAS_V``, where a
  diode passes next to nothing: a red CsPbI3 device draws ~1e-19 A/cm² at 0.5 V through
  its diode and ~1e-6 A/cm² through a 1 MΩ·cm² shunt) the pixel conducts ohmically,
  at least ``SHORT_ABOVE_A_CM2`` (that is, a resistance-area product of at most
  ``LOW_BIAS_V / SHORT_ABOVE_A_CM2`` = 100 Ω·cm²; a pixel in compliance there counts too).
* **Open**: at a forward bias where every LED this bench measures conducts (``CONDUCTING_V``; a
  blue 470 nm emitter has turned on by 3 V and draws mA/cm²), the current stays below
  ``OPEN_BELOW_A``, ten times the SMU's noise on its lowest ranges: nothing is there.

A sweep that never reaches ``CONDUCTING_V`` cannot tell an open pixel: it is not judged.
Once a point has shown the pixel conducting as a diode (at ``CONDUCTING_V`` or above,
over ``OPEN_BELOW_A``), its contacts are proven: what happens later in the sweep (a
device failing open at high drive) is the device's breakdown, not a contact defect
(``ContactCheck``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LOW_BIAS_V = 1.0
SHORT_ABOVE_A_CM2 = 1e-2
CONDUCTING_V = 3.0
OPEN_BELOW_A = 1e-9


@dataclass(frozen=True)
class ContactDefect:
    """What is wrong, and the line that says why (``"shorted: ..."`` / ``"open: ..."``)."""

    kind: Literal["short", "open"]
    note: str


def contact_defect(
    volts: float, amps: float, area_cm2: float, in_compliance: bool = False
) -> ContactDefect | None:
    """The defect one sweep point (measured ``volts``, ``amps``) shows, or None."""
    j = abs(amps) / area_cm2
    if 0 < abs(volts) <= LOW_BIAS_V and (j >= SHORT_ABOVE_A_CM2 or in_compliance):
        limit = " (in compliance)" if in_compliance else ""
        return ContactDefect(
            "short",
            f"shorted: {j * 1e3:.4g} mA/cm² at {volts:.3g} V{limit}, ohmic far below turn-on "
            f"(over {SHORT_ABOVE_A_CM2 * 1e3:g} mA/cm² at up to {LOW_BIAS_V:g} V)",
        )
    if volts >= CONDUCTING_V and abs(amps) < OPEN_BELOW_A:
        return ContactDefect(
            "open",
            f"open: {abs(amps):.3g} A at {volts:.3g} V, where a diode conducts "
            f"(under {OPEN_BELOW_A:g} A from {CONDUCTING_V:g} V): nothing on the contacts",
        )
    return None


class ContactCheck:
    """The rule applied along one sweep: each point judged (``contact_defect``) until one
    shows the pixel conducting as a diode; from then on nothing is."""

    def __init__(self, area_cm2: float) -> None:
        self.area_cm2 = area_cm2
        self.proven = False

    def point(self, volts: float, amps: float, in_compliance: bool = False) -> ContactDefect | None:
        if self.proven:
            return None
        defect = contact_defect(volts, amps, self.area_cm2, in_compliance)
        if defect is None and volts >= CONDUCTING_V:
            self.proven = True
        return defect
