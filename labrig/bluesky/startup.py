"""The RE Worker's namespace for one labrig bench: bluesky-queueserver imports this
module (``--startup-module labrig.bluesky.startup``) each time its environment opens.

The bench config is the file ``labrig queue serve --config FILE`` put in
``LABRIG_QUEUE_CONFIG``.  Every role of it becomes a connected device named as in
``labrig.bluesky.devices.DEVICE_NAMES`` (``smu``, ``photodiode``, ``spectrometer``,
``lifetime_N``); the plans are bluesky's count, scan and rel_scan and one per registered
measurement (``labrig.bluesky.plans``: ``jvl``, ``lifetime``, ...), writing their run
files into ``LABRIG_QUEUE_OUTPUT_DIR``; every document goes to the 0MQ proxy at
``LABRIG_QUEUE_DOCUMENTS`` if set (``bluesky-0MQ-proxy``: ``RemoteDispatcher``s
subscribe at its other end); ``output_state`` asks each source instrument
whether its output is on.  The link closes (outputs ramped off and confirmed) when the
environment's process ends; if it is killed, the link's guard turns them off.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
from collections.abc import Callable
from typing import Any

import bluesky.plans
from bluesky import RunEngine
from bluesky.callbacks.zmq import Publisher
from bluesky.run_engine import call_in_bluesky_event_loop

from labrig.bluesky import plans
from labrig.bluesky.devices import BenchLink, SourceDevice, bench_devices
from labrig.bluesky.queue import (
    BLUESKY_PLANS,
    CONFIG_ENV,
    DOCUMENTS_ENV,
    OUTPUT_ENV,
    flat,
    unknown_device,
)


def _checked(plan: Callable) -> Callable:
    """``plan`` refusing, before it starts, a device name the queue server passed on as
    text because no device has it (these plans take no text arguments)."""

    @functools.wraps(plan)  # the same signature and docstring for the queue server
    def checked(*args: Any, **kwargs: Any) -> Any:
        for value in flat([*args, *kwargs.values()]):
            if isinstance(value, str):
                raise unknown_device(plan.__name__, value, devices)
        return (yield from plan(*args, **kwargs))

    return checked


RE = RunEngine()
if os.environ.get(DOCUMENTS_ENV):
    RE.subscribe(Publisher(os.environ[DOCUMENTS_ENV]))
link = BenchLink(os.environ[CONFIG_ENV])
devices = bench_devices(link)
plans.install(RE, link, os.environ.get(OUTPUT_ENV, "runs"))
#: the plans the queue offers, by name (``queue.plan_names(config)`` is its allowed list)
PLANS = {
    **{name: _checked(getattr(bluesky.plans, name)) for name in BLUESKY_PLANS},
    **{name: plans.plans()[name] for name in plans.measurement_plans(link.config)},
}


async def _connect() -> None:
    await asyncio.gather(*(d.connect() for d in devices.values()))


call_in_bluesky_event_loop(_connect())
atexit.register(link.close)
globals().update(devices)
globals().update(PLANS)


def output_state() -> dict[str, bool]:
    """Each source's output as its instrument reports it now (``:OUTP?``, the rig's
    channel status), by device name."""
    state = {}
    for name, device in devices.items():
        if isinstance(device, SourceDevice):
            state[name] = link.call_now(device.output_is_on)
    return state
