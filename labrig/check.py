"""``labrig check``: connect each configured instrument on its own and say, in one line
per role, who answered or what to do about it.

Each role is opened in its own ``Bench`` (with the roles its driver is built from: the
``smu_photometer`` lifetime backend needs the SMU and the photometer), so one instrument
that is off or mis-addressed does not hide the state of the others.  Nothing is enabled:
opening a bench only connects and asks for the identity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from labrig import registry
from labrig.config import BenchConfig
from labrig.errors import LabrigError, advice, first_line


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
    return "no resource" if registry.driver(inst.driver).needs_resource else "the first one found"


def check_roles(config: BenchConfig) -> Iterator[RoleCheck]:
    """One ``RoleCheck`` per configured role, in the registry's order, each opened on
    its own (with the roles its driver is built from)."""
    from labrig.bench import Bench

    for role in sorted(config.instruments, key=registry.roles().index):
        resource = _resource(config, role)
        try:
            with Bench(config, [role]) as bench:
                ident, found_at, _ = bench.identities()[role]
        except (LabrigError, OSError, ValueError) as exc:  # pyvisa/serial errors included
            yield RoleCheck(
                role,
                False,
                f"{role:12s} FAILED {resource}: {first_line(exc)}; {advice(exc)}",
            )
            continue
        yield RoleCheck(
            role,
            True,
            f"{role:12s} ok     {found_at or resource}: {ident.manufacturer} {ident.model}, "
            f"s/n {ident.serial}, firmware {ident.firmware}",
        )
