"""The procedure registry as a whole: rules that hold across every registered procedure."""

from __future__ import annotations

from collections import defaultdict

from labrig import registry
from labrig.parameters import parameter_objects


def test_parameters_of_the_same_name_share_one_unit():
    """One ``--set name=value`` must drive every procedure the same way (a spectrum
    ``compliance_current`` in mA once drove the 2400 1000× apart from jvl's in A)."""
    units: dict[str, dict[str, str]] = defaultdict(dict)
    for entry in registry.measurements():
        name = entry.name
        for param_name, param in parameter_objects(entry.procedure_class()).items():
            units[param_name][name] = getattr(param, "units", None) or ""
    assert len(units["compliance_current"]) >= 4  # jvl, spectrum, solar-jv, sclc at least
    mixed = {p: by_proc for p, by_proc in units.items() if len(set(by_proc.values())) > 1}
    assert mixed == {}
    assert set(units["compliance_current"].values()) == {"A"}
