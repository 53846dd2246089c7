"""Switching a substrate's pixels onto the bench without ever switching a live source.

One rule, in one place: a relay is only moved with the SMU's output off (and so at zero),
every channel is opened before the next one closes (break before make), the relay has
settled before the switch answers, and the closed channel is confirmed by asking the
switch itself before a source may be enabled.  A switch that does not confirm, or that
reports two channels closed at once (a welded relay), stops everything: every relay
opened, every output off, ``SwitchError`` raised.

The channel names of each switch driver live here too, so the config can refuse a pixel
on a channel the switch does not have before anything is opened.
"""

from __future__ import annotations

import logging

from labrig.errors import InstrumentError
from labrig.interfaces import SourceMeter, Switch

log = logging.getLogger(__name__)

#: channels of the simulated / default switch when the config does not say
DEFAULT_CHANNELS = {"keithley7001": 10, "relay_board": 8}
#: a 7001's card slots (a 7002 has ten); channels are named ``slot!channel``
KEITHLEY7001_SLOTS = 2


def switch_channels(driver: str, count: int | None) -> tuple[str, ...]:
    """The channel names ``driver`` offers with ``count`` channels per card (7001: card 1
    then card 2, ``"1!1"``...; relay board: ``"1"``...)."""
    n = count or DEFAULT_CHANNELS.get(driver, 8)
    if driver == "keithley7001":
        slots = range(1, KEITHLEY7001_SLOTS + 1)
        return tuple(f"{slot}!{ch}" for slot in slots for ch in range(1, n + 1))
    return tuple(str(ch) for ch in range(1, n + 1))


class SwitchError(InstrumentError):
    """The switch did not do what it was told (no confirmation, two channels closed);
    raised after every relay was opened and every output turned off."""


def _everything_off(smu: SourceMeter | None, switch: Switch) -> list[str]:
    """Output off and every relay open, each tried on its own; what failed, as text."""
    problems = []
    if smu is not None:
        try:
            smu.shutdown(ramp=False)
        except Exception as exc:  # noqa: BLE001 - the relays must still open
            problems.append(f"smu: {exc}")
    try:
        switch.open_all()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"switch: {exc}")
    return problems


def stop_switching(smu: SourceMeter | None, switch: Switch, reason: str) -> SwitchError:
    """Turn everything off and return the ``SwitchError`` to raise for ``reason``."""
    problems = _everything_off(smu, switch)
    log.error("switching stopped: %s", reason)
    tail = f" (and while turning off: {'; '.join(problems)})" if problems else ""
    return SwitchError(f"switch: {reason}; every output is off and every relay told to open{tail}")


def select_channel(smu: SourceMeter | None, switch: Switch, channel: str) -> None:
    """Connect ``channel`` alone: output off, open all, confirm nothing is closed, close,
    confirm exactly ``channel`` is closed.  Raises ``SwitchError`` (everything off) when
    the switch does not confirm; a channel the switch lacks is refused before anything
    moves."""
    if channel not in switch.channels:
        raise SwitchError(
            f"switch: no channel {channel!r}; this switch has {', '.join(switch.channels)}"
        )
    if smu is not None:
        smu.shutdown(ramp=True)  # never switch with the source on or away from zero
        if smu.output_enabled:
            raise stop_switching(smu, switch, "the SMU output did not turn off before switching")
    try:
        switch.open_all()
        left = switch.closed()
        if left:
            raise stop_switching(
                smu, switch, f"channel(s) {', '.join(left)} still closed after opening all"
            )
        switch.close(channel)
        now = switch.closed()
    except SwitchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure mid-switch: everything off
        raise stop_switching(smu, switch, f"failed selecting channel {channel}: {exc}") from exc
    except BaseException:  # Ctrl-C mid-switch: everything off, then the stop goes on
        _everything_off(smu, switch)
        raise
    if now != (channel,):
        shown = ", ".join(now) if now else "none"
        raise stop_switching(
            smu, switch, f"asked for channel {channel} alone, the switch reports closed: {shown}"
        )
