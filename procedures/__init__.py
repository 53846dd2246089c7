"""Registry of the procedures ``labrig run`` knows, by command-line name.

Entries are import paths so that listing procedures does not import pymeasure, scipy or
any driver.  A procedure module that is not present yet is simply not offered.
"""

from __future__ import annotations

import importlib
import importlib.util

PROCEDURES: dict[str, str] = {
    "jvl": "labrig.procedures.jvl:JVLProcedure",
    "spectrum": "labrig.procedures.spectrum:SpectrumProcedure",
    "pulsed-el": "labrig.procedures.pulsed_el:PulsedELProcedure",
    "lifetime": "labrig.procedures.lifetime:LifetimeProcedure",
    "solar-jv": "labrig.procedures.solar_jv:SolarJVProcedure",
    "sclc": "labrig.procedures.sclc:SCLCProcedure",
}


def available() -> list[str]:
    """Names whose module is installed (without importing them)."""
    names = []
    for name, target in PROCEDURES.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def resolve(name: str) -> str:
    """The registered name for ``name`` typed at the command line (case-insensitive);
    an unknown name raises ``UserInputError`` with a did-you-mean and the allowed names."""
    from labrig.errors import UserInputError, did_you_mean

    names = available()
    for known in names:
        if known.lower() == name.strip().lower():
            return known
    raise UserInputError(
        f"unknown procedure {name!r}{did_you_mean(name, names)}; allowed: {', '.join(names)}"
    )


def load(name: str) -> type:
    """Import and return the procedure class registered as ``name``."""
    module_name, class_name = PROCEDURES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


#: the shipped simulated bench each procedure runs on with ``--simulate``
SIMULATED_CONFIGS: dict[str, str] = {
    "solar-jv": "solar_sim",
    "sclc": "sclc_sim",
}


def simulated_config(name: str | None) -> str:
    """Name of the shipped simulated config for procedure ``name`` (default ``sim``)."""
    return SIMULATED_CONFIGS.get(name or "", "sim")
