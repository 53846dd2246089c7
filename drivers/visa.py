"""The VISA layer the Keithley drivers share: open, identify, translate failures.

Everything that can go wrong between a driver and an instrument (nobody listening, no
reply, a dropped connection, bytes that are not a reply, the wrong model at the
address) leaves this module as one specific ``labrig.errors.InstrumentError`` with a
line a person can act on; pyvisa's and the socket layer's own exceptions never reach a
procedure.

pyvisa-py's ``TCPIP::...::SOCKET`` sessions hide a peer that closed the connection
behind a read time-out (``recv`` returns nothing until the time-out expires), and they
spin forever in ``clear()`` on a closed socket.  ``connection_state`` therefore peeks at
the socket itself, so a time-out on a dead link is reported as a disconnect and a
device clear is never attempted on one; and such a session's socket is a ``PeerSocket``,
whose ``recv`` raises at the end of the stream, so pyvisa-py's own read reports a peer
that goes away when it goes, not after the whole time-out (which a long sweep stretches
to tens of seconds).
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal, TypeVar

import pyvisa
from pymeasure.adapters import VISAAdapter
from pymeasure.instruments.common_base import DynamicProperty
from pyvisa.constants import StatusCode

from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentError,
    InstrumentNotFoundError,
    InstrumentTimeoutError,
    RunAborted,
    WrongInstrumentError,
)
from labrig.interfaces import InstrumentIdentity

log = logging.getLogger(__name__)

TERMINATION = "\n"
VISA_LIBRARY = "@py"

ConnectionState = Literal["open", "closed", "unknown"]

#: VISA status codes that mean the link itself is gone, not that the instrument is slow
_LOST_LINK_CODES = {
    StatusCode.error_connection_lost,
    StatusCode.error_io,
    StatusCode.error_invalid_object,
    StatusCode.error_resource_not_found,
}


def open_adapter(resource: str, *, timeout_s: float) -> VISAAdapter:
    """Open ``resource`` through pyvisa-py with '\\n' terminations and a time-out.

    Raises InstrumentNotFoundError if the resource cannot be opened at all.
    """
    try:
        adapter = VISAAdapter(
            resource,
            visa_library=VISA_LIBRARY,
            read_termination=TERMINATION,
            write_termination=TERMINATION,
            timeout=max(1, round(timeout_s * 1000)),
        )
    except Exception as exc:  # pyvisa and pyvisa-py raise several unrelated types here
        raise InstrumentNotFoundError(f"no instrument at {resource!r}: {exc}") from exc
    _prepare_socket(adapter)
    return adapter


class PeerSocket(socket.socket):
    """The socket of a pyvisa-py TCPIP SOCKET session, whose ``recv`` raises
    ``ConnectionAbortedError`` at the end of the stream instead of returning ``b""``.

    pyvisa-py's read takes an empty ``recv`` for "nothing yet" and waits out the whole
    time-out; with this socket the same read fails the moment the instrument closes the
    connection.  So the read still waits inside pyvisa-py, as a plain pyvisa loop's does:
    the pymeasure and pyvisa layers of a read run while the instrument measures, not
    after its reply has arrived (a wait above them would put them on every reading's
    critical path, ~30 µs a read)."""

    __slots__ = ()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if not data and bufsize > 0:
            raise ConnectionAbortedError(
                errno.ECONNABORTED, "the connection was closed by the instrument"
            )
        return data


def _prepare_socket(adapter: Any) -> None:
    """On a TCPIP SOCKET link: the session's socket becomes a ``PeerSocket`` (the same
    connection), and Nagle's algorithm is off (VISA's VI_ATTR_TCPIP_NODELAY default,
    which pyvisa-py does not implement; with it on, a command followed by a query, a
    level then ``:READ?``, waits for the delayed ACK of the command: ~40 ms a point)."""
    session = _session_of(adapter)
    sock = getattr(session, "interface", None)
    if not isinstance(sock, socket.socket):
        return
    if not isinstance(sock, PeerSocket):
        timeout = sock.gettimeout()
        sock = PeerSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        sock.settimeout(timeout)
        session.interface = sock
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:  # a link that is already gone says so on first use
        log.debug("TCP_NODELAY not set: %s", exc)


def parse_identity(reply: str, resource: str = "") -> InstrumentIdentity:
    """Split an IEEE-488.2 ``*IDN?`` reply; Keithley's ``MODEL 2400`` becomes ``2400``."""
    fields = [f.strip() for f in reply.strip().split(",")]
    if len(fields) < 4 or not fields[0] or not fields[1]:
        raise GarbledReplyError(
            f"{resource or 'instrument'}: *IDN? reply {reply.strip()!r} is not "
            "'manufacturer,model,serial,firmware'"
        )
    model = fields[1]
    if model.upper().startswith("MODEL "):
        model = model[6:].strip()
    return InstrumentIdentity(
        manufacturer=fields[0],
        model=model,
        serial=fields[2],
        firmware=",".join(fields[3:]),
        raw=reply.strip(),
    )


def require_model(identity: InstrumentIdentity, models: tuple[str, ...], resource: str) -> None:
    """Refuse an instrument whose ``*IDN?`` model is not one the driver speaks to."""
    if identity.model.upper() not in {m.upper() for m in models}:
        raise WrongInstrumentError(
            f"{resource}: expected a Keithley model {' or '.join(models)}, but the instrument "
            f"identifies as {identity.manufacturer} model {identity.model}"
        )


def _session_of(adapter: Any) -> Any:
    """The pyvisa-py session object under ``adapter`` (None: closed, or not pyvisa-py)."""
    conn = getattr(adapter, "connection", None)
    if not isinstance(conn, pyvisa.resources.Resource):
        return None
    try:
        return conn.visalib.sessions[conn.session]
    except Exception:  # noqa: BLE001 - closed or foreign session: state unknown
        return None


def _socket_of(adapter: Any) -> socket.socket | None:
    """The live socket under a pyvisa-py TCPIP SOCKET session, if that is what it is."""
    sock = getattr(_session_of(adapter), "interface", None)
    return sock if isinstance(sock, socket.socket) else None


def connection_state(adapter: Any) -> ConnectionState:
    """Whether the peer is still there: 'closed' when a socket has hit EOF or a reset,
    'open' when it is alive, 'unknown' for links that cannot be probed (GPIB, serial)."""
    sock = _socket_of(adapter)
    if sock is None:
        conn = getattr(adapter, "connection", None)
        if isinstance(conn, pyvisa.resources.Resource):
            try:
                _ = conn.session
            except pyvisa.errors.InvalidSession:
                return "closed"
        return "unknown"
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return "open"
    except OSError:
        return "closed"
    return "open" if data else "closed"


def translate(exc: BaseException, resource: str, adapter: Any, action: str) -> InstrumentError:
    """Map a pyvisa / socket / decoding failure to the labrig exception that names it."""
    where = f"{resource}: {action}"
    if isinstance(exc, InstrumentError):
        return exc
    if isinstance(exc, pyvisa.errors.VisaIOError):
        if exc.error_code == StatusCode.error_timeout:
            if connection_state(adapter) == "closed":
                return InstrumentDisconnectedError(f"{where}: the connection was closed")
            timeout = getattr(getattr(adapter, "connection", None), "timeout", None)
            limit = f" within {timeout / 1000:g} s" if isinstance(timeout, (int, float)) else ""
            return InstrumentTimeoutError(f"{where}: no reply{limit}")
        if exc.error_code in _LOST_LINK_CODES:
            return InstrumentDisconnectedError(f"{where}: connection lost ({exc.abbreviation})")
        return InstrumentDisconnectedError(f"{where}: VISA error {exc.abbreviation}")
    if isinstance(exc, pyvisa.errors.InvalidSession):
        return InstrumentDisconnectedError(f"{where}: the connection is closed")
    if isinstance(exc, UnicodeDecodeError):
        return GarbledReplyError(f"{where}: reply is not text ({exc.reason})")
    if isinstance(exc, (OSError, EOFError)):
        return InstrumentDisconnectedError(f"{where}: connection lost ({exc})")
    return InstrumentError(f"{where}: {type(exc).__name__}: {exc}")


_T = TypeVar("_T")
#: what a VISA write or read can raise that ``translate`` names (an InstrumentError is
#: none of these: it passes through as it is)
_VISA_FAILURES = (pyvisa.errors.Error, OSError, EOFError, UnicodeDecodeError)
_KEEP_TIMEOUT = nullcontext()


def parse_floats(reply: str, resource: str, command: str) -> list[float]:
    """Comma-separated numbers, or GarbledReplyError naming the offending reply."""
    try:
        return list(map(float, reply.strip().split(",")))
    except ValueError:
        shown = reply.strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise GarbledReplyError(f"{resource}: {command} reply {shown!r} is not numbers") from None


class VisaTransport:
    """Mixin for pymeasure ``Instrument`` subclasses: every write and read goes through
    the error translation, and a transaction cut short (Ctrl-C in the middle of a long
    ``:READ?``, a time-out) makes the next write first get back in step
    (``resynchronise``), so a late reply is never taken for the answer to a new query.

    Put it first in the bases so its ``write``/``read`` wrap pymeasure's.

    It also takes back plain attribute access: pymeasure's ``CommonBase`` runs a
    Python-level ``__getattribute__`` (and ``__setattr__``), each with a ``hasattr``, on
    every attribute of a driver (~235 times a J-V-L point) only to guard the names behind
    *dynamic* properties.  A driver built on this mixin declares none (refused when the
    class is defined), so ``object``'s own access is the same behaviour at C speed.
    """

    __getattribute__ = object.__getattribute__
    __setattr__ = object.__setattr__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dynamic = [
            name for name, attr in _class_attributes(cls) if isinstance(attr, DynamicProperty)
        ]
        if dynamic:
            raise TypeError(
                f"{cls.__name__}: dynamic properties ({', '.join(dynamic)}) need pymeasure's "
                "guarded attribute access, which VisaTransport replaces"
            )

    resource: str = ""
    _timeout_s: float = 5.0
    _interrupted: bool = False
    _stale_budget_s: float = 0.0
    _last_command: str = ""
    _closed: bool = False
    #: a query was sent whose reply has not been read (its reply may be on the link)
    _unanswered: bool = False

    # ------------------------------------------------------------------ transport
    def write(self, command: str, **kwargs: Any) -> None:  # type: ignore[override]
        if self._interrupted:
            self.resynchronise()
        self._last_command = command
        if "?" in command:
            self._unanswered = True
        # plain try/except, the message built only on failure: this runs three times a
        # J-V-L point (a generator context manager and an f-string each cost as much as
        # the rest of the wrapper)
        try:
            super().write(command, **kwargs)  # type: ignore[misc]
        except _VISA_FAILURES as exc:
            raise self._translate(exc, f"sending {command[:40]!r}") from exc

    def read(self, **kwargs: Any) -> str:  # type: ignore[override]
        try:
            reply = super().read(**kwargs)  # type: ignore[misc]
        except BaseException as exc:
            # whatever broke the read, a late reply may still be on its way, for as long
            # as the read was prepared to wait for it
            self._interrupted = True
            self._stale_budget_s = max(self._stale_budget_s, self._current_timeout_s())
            if isinstance(exc, _VISA_FAILURES):
                raise self._translate(exc, self._reading()) from exc
            raise
        self._unanswered = False
        return reply

    def _reading(self) -> str:
        return f"reading the reply to {self._last_command[:40]!r}"

    def query(self, command: str) -> str:
        """``command`` and its reply, without pymeasure's silent string fall-back."""
        self.write(command)
        return self.read()

    def query_floats(self, command: str) -> list[float]:
        return parse_floats(self.query(command), self.resource, command)

    def _translate(self, exc: BaseException, action: str) -> InstrumentError:
        return translate(exc, self.resource, self.adapter, action)  # type: ignore[attr-defined]

    def connection_state(self) -> ConnectionState:
        return connection_state(self.adapter)  # type: ignore[attr-defined]

    def clear_transport(self) -> None:
        """Discard whatever reply is buffered (device clear on the link).  A no-op on a
        closed link; never raises."""
        conn = self._message_resource()
        if conn is None or connection_state(self.adapter) == "closed":  # type: ignore[attr-defined]
            return
        try:
            conn.clear()
        except RunAborted:
            raise  # a stop request, not a failure of the clear
        except Exception as exc:  # noqa: BLE001 - best effort by design
            log.warning("%s: device clear failed: %s", self.resource, exc)

    def clear_if_unanswered(self, stale: bool) -> None:
        """Device clear only when a reply may be on the link: ``stale`` (a read was cut
        short) or a query not read yet.  pyvisa-py's clear of a TCPIP SOCKET waits for
        0.1 s of silence, which a link in step would pay at every shutdown."""
        if stale or self._unanswered:
            self.clear_transport()
            self._unanswered = False

    def resynchronise(self, limit_s: float | None = None) -> bool:
        """Get back in step after an interrupted transaction.

        The interrupted query's reply may still be on its way (a sweep keeps running on
        the instrument), so clearing the link once is not enough: ask ``*IDN?`` and
        discard replies until the identity comes back.  Waits at most ``limit_s``
        (default: as long as the interrupted read would have).  True when in step;
        never raises (False leaves the link marked, so the next transaction retries)."""
        self._interrupted = False
        conn = self._message_resource()
        if conn is None or connection_state(self.adapter) == "closed":  # type: ignore[attr-defined]
            return True  # nothing can arrive late (or the next call reports the dead link)
        self.clear_transport()
        budget = max(self._stale_budget_s, self._timeout_s) if limit_s is None else limit_s
        deadline = time.monotonic() + budget
        identity = getattr(self, "_identity", None)
        marker = getattr(identity, "manufacturer", "") or ","
        discarded = 0
        try:
            conn.write("*IDN?")
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no *IDN? reply within {budget:g} s")
                with self.temporary_timeout(remaining):
                    reply = conn.read()
                if reply.startswith(marker) and "," in reply:
                    break
                discarded += 1
        except Exception as exc:  # noqa: BLE001 - reported, and retried next time
            log.warning("%s: could not get back in step: %s", self.resource, exc)
            self._interrupted = True
            return False
        if discarded:
            log.info("%s: discarded %d stale repl(y/ies)", self.resource, discarded)
        self._stale_budget_s = 0.0
        return True

    def _message_resource(self) -> pyvisa.resources.MessageBasedResource | None:
        conn = getattr(self.adapter, "connection", None)  # type: ignore[attr-defined]
        return conn if isinstance(conn, pyvisa.resources.MessageBasedResource) else None

    def _current_timeout_s(self) -> float:
        conn = self._message_resource()
        try:
            return float(conn.timeout) / 1000 if conn is not None else self._timeout_s
        except Exception:  # noqa: BLE001 - a dead session
            return self._timeout_s

    def extended_timeout(self, seconds: float) -> AbstractContextManager[None]:
        """Lengthen the VISA time-out for one long operation (a sweep, a burst).  A budget
        within 1.5x the normal time-out keeps it (the operation then takes at most a
        quarter of it): changing the time-out costs two VISA calls, on every reading (and
        a generator context manager for nothing, hence a shared no-op one)."""
        if seconds <= 1.5 * self._timeout_s:
            return _KEEP_TIMEOUT
        return self.temporary_timeout(seconds)

    @contextmanager
    def temporary_timeout(self, seconds: float) -> Iterator[None]:
        """Use ``seconds`` as the VISA time-out inside the block, then restore it."""
        conn = getattr(self.adapter, "connection", None)  # type: ignore[attr-defined]
        if not isinstance(conn, pyvisa.resources.Resource):
            yield
            return
        try:
            old = conn.timeout
            conn.timeout = max(1, round(seconds * 1000))
        except Exception:  # noqa: BLE001 - a dead session: the operation will say so
            yield
            return
        try:
            yield
        finally:
            try:
                conn.timeout = old
            except Exception:  # noqa: BLE001 - a dead session keeps whatever it had
                pass

    def reopen(self) -> bool:
        """Open a fresh connection to the same resource (after the old one dropped);
        True if that worked.  Used by shutdown to still reach the output switch."""
        if not self.resource or self._closed:
            return False
        try:
            old = self.adapter  # type: ignore[attr-defined]
            new = open_adapter(self.resource, timeout_s=min(self._timeout_s, 2.0))
        except InstrumentError as exc:
            log.warning("%s: could not reconnect: %s", self.resource, exc)
            return False
        try:
            old.close()
        except Exception:  # noqa: BLE001 - the old link is already broken
            pass
        self.adapter = new  # type: ignore[attr-defined]
        self._interrupted = False
        return True

    def close(self) -> None:
        """Release the connection; idempotent, never raises."""
        self._closed = True
        try:
            self.adapter.close()  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - closing twice or a dead link is fine
            log.debug("%s: close: %s", self.resource, exc)


def _class_attributes(cls: type) -> Iterator[tuple[str, Any]]:
    """Every class attribute of ``cls`` and its bases, nearest definition first."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, attr in vars(klass).items():
            if name not in seen:
                seen.add(name)
                yield name, attr


_I = TypeVar("_I", bound=VisaTransport)


def connect_instrument(
    factory: Callable[[VISAAdapter], _I],
    resource: str,
    *,
    timeout_s: float,
    models: tuple[str, ...],
) -> tuple[_I, InstrumentIdentity]:
    """Open ``resource``, ask ``*IDN?`` and refuse a wrong model before anything else is
    sent; then build the driver with ``factory(adapter)``."""
    adapter = open_adapter(resource, timeout_s=timeout_s)
    try:
        try:
            adapter.write("*IDN?")
            reply = adapter.read()
        except (ConnectionRefusedError, ConnectionAbortedError) as exc:
            raise InstrumentNotFoundError(f"no instrument answers at {resource!r}: {exc}") from exc
        except (pyvisa.errors.Error, OSError, EOFError, UnicodeDecodeError) as exc:
            raise translate(exc, resource, adapter, "asking *IDN?") from exc
        identity = parse_identity(reply, resource)
        require_model(identity, models, resource)
        instrument = factory(adapter)
    except BaseException:
        try:
            adapter.close()
        except Exception:  # noqa: BLE001
            pass
        raise
    instrument.resource = resource
    instrument._timeout_s = timeout_s
    return instrument, identity
