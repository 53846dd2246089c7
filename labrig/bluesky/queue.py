"""``labrig queue serve``: bluesky-queueserver's RE Manager for one labrig bench.

The manager's worker imports ``labrig.bluesky.startup`` with the bench config in its
environment.  The user-group permissions are generated here from what the startup
offers (its plans, the bench's devices and ``output_state``), so a queue allows exactly
labrig's plans and this bench's devices; the list of existing plans and devices is
written by the manager itself when the environment opens.  Redis is the manager's own
requirement (``--redis-addr``, default localhost).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from bluesky_queueserver.manager.start_manager import start_manager

from labrig.config import BenchConfig

STARTUP_MODULE = "labrig.bluesky.startup"
#: the environment variable that hands the bench config to the startup module
CONFIG_ENV = "LABRIG_QUEUE_CONFIG"
#: the plans and functions ``labrig.bluesky.startup`` offers (kept equal by a test)
PLAN_NAMES = ("count", "scan", "rel_scan")
FUNCTION_NAMES = ("output_state",)


def permissions(config: BenchConfig) -> dict:
    """The queue's user-group permissions: labrig's plans and functions, and the bench's
    devices with their signals (``smu.level``), for every user."""
    from labrig.bluesky.devices import BenchLink, bench_devices

    devices = sorted(bench_devices(BenchLink(config, guard=False)))
    exact = lambda names: [f":^{n}$" for n in names]  # noqa: E731 - queue server patterns
    return {
        "user_groups": {
            "root": {
                "allowed_plans": [None],
                "forbidden_plans": [":^_"],
                "allowed_devices": [None],
                "forbidden_devices": [":^_:?.*"],
                "allowed_functions": [None],
                "forbidden_functions": [":^_"],
            },
            "primary": {
                "allowed_plans": exact(PLAN_NAMES),
                "forbidden_plans": [None],
                "allowed_devices": [f":^{d}$:?.*:depth=2" for d in devices],
                "forbidden_devices": [None],
                "allowed_functions": exact(FUNCTION_NAMES),
                "forbidden_functions": [None],
            },
        }
    }


def manager_argv(config: BenchConfig, state_dir: Path, extra: Sequence[str]) -> list[str]:
    """``start-re-manager``'s arguments for this bench, with the files it needs written
    into ``state_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    allowed = state_dir / "user_group_permissions.yaml"
    allowed.write_text(yaml.safe_dump(permissions(config), sort_keys=False))
    return [
        "start-re-manager",
        "--startup-module",
        STARTUP_MODULE,
        "--existing-plans-devices",
        str(state_dir / "existing_plans_and_devices.yaml"),
        "--update-existing-plans-devices",
        "ENVIRONMENT_OPEN",
        "--user-group-permissions",
        str(allowed),
        *extra,
    ]


def serve(config: BenchConfig, state_dir: Path, extra: Sequence[str]) -> None:
    """Run the RE Manager for ``config`` in this process until it is stopped."""
    os.environ[CONFIG_ENV] = str(Path(config.source_path).resolve())
    sys.argv = manager_argv(config, state_dir, extra)
    start_manager()
