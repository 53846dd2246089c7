"""Keithley 7001/7002 switch system: one pixel at a time onto the SMU.

SCPI per the Model 7001 manual: ``:ROUTe:CLOSe (@1!1)`` closes card 1 channel 1,
``:ROUTe:OPEN:ALL`` opens everything (also the ``*RST`` state), ``:ROUTe:CLOSe? (@list)``
answers ``1``/``0`` per channel and ``:ROUTe:CLOSe:STATe?`` lists the closed channels.
A close is followed by ``*OPC?``, which the mainframe answers once the relay has
settled, and by a read of the error queue (``:SYST:ERR?``): a refused channel is an
error, not a silent no-op.  Channels are ``slot!channel``; the config says how many
channels a card has (``instruments.switch.channels``).
"""

from __future__ import annotations

import logging

from pymeasure.instruments import Instrument as PymeasureInstrument
from pymeasure.instruments import SCPIMixin

from labrig.drivers.visa import VisaTransport, connect_instrument, parse_identity
from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentSettingError,
)
from labrig.interfaces import InstrumentIdentity, Switch
from labrig.switching import switch_channels

log = logging.getLogger(__name__)

MODELS = ("7001", "7002")


def _channel_list(reply: str | list[str]) -> tuple[str, ...]:
    """``(@1!1,1!3)`` (as pymeasure split it at its commas) -> ``("1!1", "1!3")``."""
    text = ",".join(reply) if isinstance(reply, list) else str(reply)
    text = text.strip().replace(" ", "")
    if not (text.startswith("(@") and text.endswith(")")):
        raise GarbledReplyError(f"Keithley 7001: {text!r} is not a channel list")
    return tuple(filter(None, text[2:-1].split(",")))


class Keithley7001(VisaTransport, SCPIMixin, PymeasureInstrument, Switch):
    """The switch mainframe; ``channels`` as configured (cards of ``per_card`` channels)."""

    closed_channels = PymeasureInstrument.measurement(
        ":ROUT:CLOS:STAT?",
        """Get the channels the mainframe reports closed (tuple of ``slot!channel``).""",
        cast=str,
        get_process=_channel_list,
        get_process_list=_channel_list,
    )
    operation_complete = PymeasureInstrument.measurement(
        "*OPC?",
        """Get 1 once every pending operation (a relay settling) is done.""",
        cast=int,
    )

    _identity: InstrumentIdentity | None = None
    _channels: tuple[str, ...] = switch_channels("keithley7001", None)

    def __init__(
        self, adapter: object, name: str = "Keithley 7001 Switch System", **kwargs: object
    ) -> None:
        super().__init__(adapter, name, **kwargs)

    def identity(self) -> InstrumentIdentity:
        if self._identity is None:
            self._identity = parse_identity(self.query("*IDN?"), self.resource)
        return self._identity

    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    def _check_errors(self, action: str) -> None:
        errors = self.check_errors()
        if errors:
            shown = "; ".join(f"{code} {text}" for code, text in errors)
            raise InstrumentSettingError(f"Keithley 7001 {self.resource}: {action}: {shown}")

    def close(self, channel: str | None = None) -> None:  # type: ignore[override]
        if channel is None:
            VisaTransport.close(self)
            return
        if channel not in self._channels:
            raise InstrumentSettingError(
                f"Keithley 7001: no channel {channel!r}; allowed {self._channels[0]} .. "
                f"{self._channels[-1]}"
            )
        self.write(f":ROUT:CLOS (@{channel})")
        if self.operation_complete != 1:
            raise InstrumentError(f"Keithley 7001 {self.resource}: *OPC? did not answer 1")
        self._check_errors(f"closing {channel}")

    def is_closed(self, channel: str) -> bool:
        """``:ROUT:CLOS? (@channel)``: the mainframe's own word on one channel."""
        reply = self.query(f":ROUT:CLOS? (@{channel})").strip()
        if reply not in ("0", "1"):
            raise GarbledReplyError(f"Keithley 7001: :ROUT:CLOS? answered {reply!r}")
        return reply == "1"

    def open_all(self) -> None:
        self.write(":ROUT:OPEN:ALL")
        if self.operation_complete != 1:
            raise InstrumentError(f"Keithley 7001 {self.resource}: *OPC? did not answer 1")

    def closed(self) -> tuple[str, ...]:
        return tuple(self.closed_channels)

    def shutdown(self) -> None:
        """Every relay open (pymeasure's ``Instrument.shutdown`` would only log), over a
        fresh link if the old one dropped."""
        try:
            self.open_all()
        except InstrumentDisconnectedError:
            if not self.reopen():
                raise
            self.open_all()


def connect(resource: str, *, timeout_s: float = 5.0, channels: int | None = None) -> Keithley7001:
    """Open the 7001/7002 at ``resource`` with ``channels`` per card; a wrong ``*IDN?``
    model is refused first."""
    instrument, identity = connect_instrument(
        Keithley7001, resource, timeout_s=timeout_s, models=MODELS
    )
    instrument._identity = identity
    instrument._channels = switch_channels("keithley7001", channels)
    return instrument
