"""``labrig queue serve``: bluesky-queueserver's RE Manager for one labrig bench.

The manager's worker imports ``labrig.bluesky.startup`` with the bench config (and the
run files' directory) in its environment.  The user-group permissions are generated here
from what the startup offers (``plan_names(config)``: bluesky's count/scan/rel_scan and
one plan per registered measurement this bench can run; the bench's devices; ``output_state``), so a queue
allows exactly labrig's plans and this bench's devices; the list of existing plans and
devices is written by the manager itself when the environment opens.

Submission: the manager (``LabrigManager``) refuses an item labrig would refuse at its
start -- an unknown plan or device name, a parameter out of range or over the config's
limits, a device the measurement does not measure -- with labrig's one line, before the
queue server's own checks (types, its min/max).  Redis is the manager's own requirement
(``--redis-addr``, default localhost).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from bluesky_queueserver.manager import start_manager as qs_start
from bluesky_queueserver.manager.manager import RunEngineManager

from labrig.bluesky.plans import check_request, measurement_plans
from labrig.config import BenchConfig, load_config
from labrig.errors import UserInputError, did_you_mean

STARTUP_MODULE = "labrig.bluesky.startup"
#: the environment variables that hand the bench config and the run files' directory to
#: the startup module (and the config to the manager's submission check)
CONFIG_ENV = "LABRIG_QUEUE_CONFIG"
OUTPUT_ENV = "LABRIG_QUEUE_OUTPUT_DIR"
#: where the worker publishes its documents (a bluesky 0MQ proxy's input), if anywhere
DOCUMENTS_ENV = "LABRIG_QUEUE_DOCUMENTS"
#: bluesky's own plans the startup offers besides labrig's measurements
BLUESKY_PLANS = ("count", "scan", "rel_scan")
FUNCTION_NAMES = ("output_state",)


def plan_names(config: BenchConfig) -> tuple[str, ...]:
    """The plans a queue on ``config``'s bench allows: bluesky's, then one per registered
    measurement the bench can run."""
    return (*BLUESKY_PLANS, *measurement_plans(config))


def device_names(config: BenchConfig) -> list[str]:
    """The names of the bench's devices (``smu``, ``photodiode``, ``lifetime_1``, ...)."""
    from labrig.bluesky.devices import BenchLink, bench_devices

    return sorted(bench_devices(BenchLink(config, guard=False)))


def unknown_device(plan: str, value: str, devices: Iterable[str]) -> UserInputError:
    """labrig's refusal of a device name no device of the bench has."""
    devices = sorted(devices)
    return UserInputError(
        f"{plan}: unknown device {value!r}{did_you_mean(value, devices)}; "
        f"allowed: {', '.join(devices)}"
    )


def flat(values: Iterable[Any]) -> list[Any]:
    """Nested lists (a plan's detectors) as one list."""
    return [v for value in values for v in (flat(value) if isinstance(value, list) else [value])]


def check_item(item: Mapping[str, Any], config: BenchConfig, devices: Sequence[str]) -> None:
    """Refuse a queue item labrig would refuse when it starts (``UserInputError``, one
    line): an unknown plan; for a measurement, its parameters and the bench's limits as
    ``labrig run`` checks them; for bluesky's plans, a name no device has (``smu.level``
    is a signal of ``smu``)."""
    name = item.get("name", "")
    args, kwargs = list(item.get("args", [])), dict(item.get("kwargs", {}))
    names = plan_names(config)
    other = measurement_plans().get(name)
    if name not in names and other is not None:  # not for this bench: say why
        check_request(other, config, {}, "")
    if name not in names:
        raise UserInputError(
            f"unknown plan {name!r}{did_you_mean(name, names)}; allowed: {', '.join(names)}"
        )
    measurement = measurement_plans(config).get(name)
    if measurement is None:
        # detectors and motors (``smu.level`` is a signal of ``smu``); other text is the
        # queue server's to refuse by type
        for value in flat([*args, kwargs.get("detectors", []), kwargs.get("motor", [])]):
            if isinstance(value, str) and value.split(".")[0] not in devices:
                raise unknown_device(name, value, devices)
        return
    sample = kwargs.pop("sample", args[0] if args else "")
    kwargs.pop("md", None)
    if len(args) > 1 or not isinstance(sample, str):
        raise UserInputError(
            f"{name}: give the sample as text and every other parameter by name "
            f"({name}('dev1', stop_voltage=6.0))"
        )
    check_request(measurement, config, kwargs, sample)


class LabrigManager(RunEngineManager):
    """The RE Manager with labrig's submission check (``check_item``) in front of the
    queue server's own, for every way an item gets in (add, batch, update, execute)."""

    def _prepare_item(self, *, item: dict, item_type: str, **kwargs: Any) -> Any:
        if item_type == "plan":
            config = _bench()
            try:
                check_item(item, config, _devices())
            except UserInputError as exc:
                raise RuntimeError(str(exc)) from None
        return super()._prepare_item(item=item, item_type=item_type, **kwargs)


@functools.cache
def _bench() -> BenchConfig:
    return load_config(os.environ[CONFIG_ENV])


@functools.cache
def _devices() -> tuple[str, ...]:
    return tuple(device_names(_bench()))


def permissions(config: BenchConfig) -> dict:
    """The queue's user-group permissions: labrig's plans and functions, and the bench's
    devices with their signals (``smu.level``), for every user."""
    devices = device_names(config)
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
                "allowed_plans": exact(plan_names(config)),
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


def serve(
    config: BenchConfig,
    state_dir: Path,
    output_dir: Path,
    extra: Sequence[str],
    documents: str | None = None,
) -> None:
    """Run the RE Manager for ``config`` in this process until it is stopped; runs write
    their files into ``output_dir``, the worker publishes its documents to the 0MQ
    proxy at ``documents`` (``host:port``) if given."""
    os.environ[CONFIG_ENV] = str(Path(config.source_path).resolve())
    os.environ[OUTPUT_ENV] = str(Path(output_dir).resolve())
    if documents:
        os.environ[DOCUMENTS_ENV] = documents
    sys.argv = manager_argv(config, state_dir, extra)
    # the manager and worker processes are forked from this one: they inherit the
    # environment and the manager class below (start_manager builds its watchdog with
    # the queue server's class unless told otherwise)
    multiprocessing.set_start_method("fork", force=True)
    qs_start.WatchdogProcess = functools.partial(  # type: ignore[misc]
        qs_start.WatchdogProcess, cls_run_engine_manager=LabrigManager
    )
    qs_start.start_manager()
