"""Shared fixtures: the shipped configs, and a writable output directory per test."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest


@pytest.fixture
def sim_config():
    from labrig.config import load_config

    return load_config("sim")


# ---------------------------------------------------------------- a substrate on a switch
#: channel of pixel k (1-based) on each switch driver
CHANNEL = {"keithley7001": "1!{k}", "relay_board": "{k}"}


def switch_config_data(
    driver: str = "keithley7001",
    pixels: int = 4,
    *,
    spread: dict[str, Any] | None = None,
    defects: dict[str, str] | None = None,
    faults: list[dict[str, Any]] | None = None,
    channels: int = 8,
    seed: int = 3,
) -> dict[str, Any]:
    """The shipped sim bench's SMU and photometer plus a switch and a substrate."""
    from labrig.config import load_config

    base = load_config("sim").model_dump(mode="json", exclude_none=True)
    base["instruments"] = {
        "smu": base["instruments"]["smu"],
        "photometer": base["instruments"]["photometer"],
        "switch": {"driver": driver, "simulated": True, "channels": channels},
    }
    base["substrate"] = {
        "pixels": {
            chr(64 + k): {"channel": CHANNEL[driver].format(k=k), "area_cm2": 0.04}
            for k in range(1, pixels + 1)
        }
    }
    sim = base.setdefault("simulation", {})
    sim["seed"] = seed
    sim["spread"] = spread or {}
    sim["defects"] = defects or {}
    sim["faults"] = {"switch": faults} if faults else {}
    return base


def switch_config(driver: str = "keithley7001", pixels: int = 4, **kw: Any) -> Any:
    from labrig.config import parse_config

    return parse_config(switch_config_data(driver, pixels, **kw))


@pytest.fixture(scope="session")
def switch_configs():
    """Simulated benches with a substrate on a switch (``switch_config(driver, ...)``)."""
    from labrig.config import parse_config

    return SimpleNamespace(
        switch_config=switch_config,
        switch_config_data=switch_config_data,
        parse_config=parse_config,
    )


# ------------------------------------------------------- the core without an optional extra
#: a fresh interpreter: ``packages`` made unimportable (if ``refuse``), the ``imports``
#: imported, ``then`` run, each ``labrig`` command line run with its exit code printed,
#: and last the modules of ``packages`` that were imported anyway
_CORE_SESSION = """
import importlib, importlib.abc, sys

PACKAGES = {packages!r}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PACKAGES:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

if {refuse!r}:
    sys.meta_path.insert(0, Refuse())
for module in {imports!r}:
    importlib.import_module(module)
{then}
import labrig.cli
for argv in {argvs!r}:
    sys.argv = ["labrig", *argv]
    try:
        labrig.cli.main()
    except SystemExit as exit:
        print("exit", exit.code)
print(sorted(m for m in sys.modules if m.split(".")[0] in PACKAGES))
"""


def run_core_session(
    packages: tuple[str, ...],
    imports: tuple[str, ...],
    argvs: list[list[str]],
    *,
    refuse: bool = True,
    then: str = "",
    cwd: Any = None,
) -> SimpleNamespace:
    """Run labrig's core in a fresh interpreter where ``packages`` (an optional extra's
    top-level names) cannot be imported, so an import of them fails loudly instead of
    quietly succeeding in the test venv that has every extra.  Returns ``returncode``,
    ``stdout``, ``stderr``, ``exits`` (``"exit N"``, one per command line) and ``imported`` (the
    modules of ``packages`` loaded anyway; with ``refuse=False`` they may load)."""
    import subprocess
    import sys

    script = _CORE_SESSION.format(
        packages=tuple(packages), refuse=refuse, imports=tuple(imports), then=then, argvs=argvs
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    lines = done.stdout.splitlines()
    return SimpleNamespace(
        returncode=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        exits=[line for line in lines if line.startswith("exit ")],
        imported=lines[-1] if lines else None,  # printed as a sorted list
    )


@pytest.fixture
def core_session():
    """``run_core_session``, for tests that prove an optional extra stays optional."""
    return run_core_session
