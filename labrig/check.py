"""``labrig check``: connect each configured instrument on its own and say, in one line
per role, who answered or what to do about it.

Each role is opened in its own ``Bench`` (with the roles it is built on: the
``smu_photometer`` lifetime backend needs the SMU and the photometer), so one instrument
that is off or mis-addressed does not hide the state of the others.  Nothing is enabled:
opening a bench only connects and asks for the identity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from labrig.config import ROLES, BenchConfig, roles_to_open
from labrig.errors import (
    ConfigError,
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentNotFoundError,
    InstrumentTimeoutError,
    LabrigError,
    WrongInstrumentError,
)

#: what to do, by what went wrong (the message says what happened)
ADVICE: tuple[tuple[type[Exception], str], ...] = (
    (InstrumentNotFoundError, "check that it is switched on and connected, and its resource"),
    (InstrumentTimeoutError, "check that it is on, the cable, the address and the baud rate"),
    (WrongInstrumentError, "another instrument answers there: check the resource or driver"),
    (InstrumentDisconnectedError, "check the cable, and that no other program holds the port"),
    (GarbledReplyError, "check the baud rate and the line terminator set on the instrument"),
    (ConfigError, "fix the config"),
)


@dataclass(frozen=True)
class RoleCheck:
    role: str
    ok: bool
    line: str


def _resource(config: BenchConfig, role: str) -> str:
    inst = config.instruments[role]
    if inst.resource:
        return inst.resource
    if inst.simulated:
        return "simulated"
    return "the first one found" if inst.driver == "usb2000plus" else "no resource"


def _advice(exc: Exception) -> str:
    for kind, advice in ADVICE:
        if isinstance(exc, kind):
            return advice
    return "check the instrument, its connection and the config's resource"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "no answer"


def check_roles(config: BenchConfig) -> Iterator[RoleCheck]:
    """One ``RoleCheck`` per configured role, in ROLES order, each opened on its own."""
    from labrig.bench import Bench

    for role in sorted(config.instruments, key=ROLES.index):
        resource = _resource(config, role)
        try:
            with Bench(config, roles_to_open(config, role)) as bench:
                ident, found_at, _ = bench.identities()[role]
        except (LabrigError, OSError, ValueError) as exc:  # pyvisa/serial errors included
            yield RoleCheck(
                role,
                False,
                f"{role:12s} FAILED {resource}: {_first_line(exc)}; {_advice(exc)}",
            )
            continue
        yield RoleCheck(
            role,
            True,
            f"{role:12s} ok     {found_at or resource}: {ident.manufacturer} {ident.model}, "
            f"s/n {ident.serial}, firmware {ident.firmware}",
        )
