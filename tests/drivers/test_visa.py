"""The shared VISA layer over real loopback sockets and real pyvisa-py: each way a link
can fail becomes its own labrig exception, and a wrong model is refused at connect.

The peer here is a few-line scripted TCP server, so each failure is produced exactly
(the full simulators are exercised in test_keithley_on_simulator.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import pyvisa
from pyvisa.constants import StatusCode

from labrig.drivers import keithley2400, keithley6485
from labrig.drivers.visa import (
    PeerSocket,
    _socket_of,
    connection_state,
    parse_identity,
    translate,
)
from labrig.errors import (
    GarbledReplyError,
    InstrumentDisconnectedError,
    InstrumentNotFoundError,
    InstrumentTimeoutError,
    WrongInstrumentError,
)

IDN_6485 = b"KEITHLEY INSTRUMENTS INC.,MODEL 6485,1234567,B03   Sep 25 2002 10:53:29/A02  /E\n"
IDN_2400 = b"KEITHLEY INSTRUMENTS INC.,MODEL 2400,4105123,C30   Mar 17 2006 09:29:29/A02  /K/J\n"
CLOSE = object()

Handler = Callable[[str], object]  # command -> bytes to send, None (silence) or CLOSE


class ScriptedPeer:
    """One-connection line server that answers each command through ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.received: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def resource(self) -> str:
        return f"TCPIP::127.0.0.1::{self.port}::SOCKET"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.2)
                buffer = b""
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    buffer += chunk
                    closed = False
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        command = line.decode().strip()
                        self.received.append(command)
                        reply = self.handler(command)
                        if reply is CLOSE:
                            closed = True
                            break
                        if reply:
                            conn.sendall(reply)  # type: ignore[arg-type]
                    if closed:
                        break

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


@pytest.fixture
def peer() -> Iterator[Callable[[Handler], ScriptedPeer]]:
    peers: list[ScriptedPeer] = []

    def start(handler: Handler) -> ScriptedPeer:
        p = ScriptedPeer(handler)
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.close()


def picoammeter(after_idn: Handler) -> Handler:
    """A 6485 that identifies itself, then behaves as ``after_idn`` says for queries."""

    def handler(command: str) -> object:
        if command == "*IDN?":
            return IDN_6485
        if not command.endswith("?"):
            return None
        return after_idn(command)

    return handler


def test_parse_identity_of_both_keithleys():
    ident = parse_identity(IDN_2400.decode())
    assert (ident.manufacturer, ident.model, ident.serial) == (
        "KEITHLEY INSTRUMENTS INC.",
        "2400",
        "4105123",
    )
    assert parse_identity(IDN_6485.decode()).model == "6485"
    with pytest.raises(GarbledReplyError, match="IDN"):
        parse_identity("hello")


def test_nothing_listening_is_instrument_not_found():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(InstrumentNotFoundError, match=str(port)):
        keithley2400.connect(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout_s=1)


def test_unparsable_resource_name_is_instrument_not_found():
    with pytest.raises(InstrumentNotFoundError):
        keithley6485.connect("NOT-A-RESOURCE", timeout_s=1)


def test_wrong_model_is_refused_after_idn_only(peer):
    p = peer(lambda c: IDN_6485 if c == "*IDN?" else None)
    with pytest.raises(WrongInstrumentError, match="expected a Keithley model 2400.*6485"):
        keithley2400.connect(p.resource, timeout_s=1)
    time.sleep(0.05)
    assert p.received == ["*IDN?"]


def test_silent_instrument_at_connect_is_a_timeout(peer):
    p = peer(lambda c: None)
    t0 = time.monotonic()
    with pytest.raises(InstrumentTimeoutError, match="no reply within 0.3 s"):
        keithley6485.connect(p.resource, timeout_s=0.3)
    assert time.monotonic() - t0 < 2.0


def test_connect_then_read(peer):
    p = peer(picoammeter(lambda c: b"+1.500000E-09,+3.000000E+00\n"))
    pico = keithley6485.connect(p.resource, timeout_s=1)
    try:
        assert pico.identity().model == "6485"
        assert pico.read().current == pytest.approx(1.5e-9)
        assert connection_state(pico.adapter) == "open"
    finally:
        pico.close()
        pico.close()  # idempotent
    assert p.received[:2] == ["*IDN?", ":FORM:ELEM READ,TIME"]


def test_no_reply_to_a_query_is_a_timeout(peer):
    p = peer(picoammeter(lambda c: None))
    pico = keithley6485.connect(p.resource, timeout_s=0.3)
    try:
        with pytest.raises(InstrumentTimeoutError, match="READ"):
            pico.read()
    finally:
        pico.close()


def test_dropped_connection_is_a_disconnect_not_a_timeout(peer):
    p = peer(picoammeter(lambda c: CLOSE))
    pico = keithley6485.connect(p.resource, timeout_s=0.3)
    try:
        with pytest.raises(InstrumentDisconnectedError, match="closed"):
            pico.read()
        with pytest.raises(InstrumentDisconnectedError):  # later writes fail the same way
            for _ in range(3):
                pico.write(":TRIG:COUN 1")
                time.sleep(0.02)
        pico.shutdown()  # never raises on a dead link
    finally:
        pico.close()


def test_a_peer_socket_raises_at_the_end_of_the_stream_and_passes_data():
    """What makes pyvisa-py's own read notice a closed link: data and an empty peek at a
    live link pass as they are; the end of the stream is an OSError, which
    ``connection_state`` and the error translation name a closed connection."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sock = PeerSocket(ours.family, ours.type, ours.proto, fileno=ours.detach())
        with sock:
            with pytest.raises(BlockingIOError):
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            theirs.sendall(b"+1.0E-09\n")
            assert sock.recv(64) == b"+1.0E-09\n"
            theirs.close()
            with pytest.raises(ConnectionAbortedError, match="closed by the instrument"):
                sock.recv(64)
            with pytest.raises(ConnectionAbortedError):
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            assert sock.recv(0) == b""  # nothing asked, nothing refused


def test_what_arrives_beyond_one_reply_is_read_next_in_order(peer):
    """Bytes beyond the first reply stay in pyvisa-py's own buffer: they are the next
    read's, even when the peer sends nothing more."""
    replies = iter([b"+1.0E-09,+1.0E+00\n+2.0E-09,+2.0E+00\n"])
    p = peer(picoammeter(lambda c: next(replies, None)))
    pico = keithley6485.connect(p.resource, timeout_s=0.5)
    try:
        pico._trigger_count = 1
        assert pico.read().current == pytest.approx(1e-9)
        assert pico.read().current == pytest.approx(2e-9)
        with pytest.raises(InstrumentTimeoutError):  # and then nothing is left
            pico.read()
    finally:
        pico.close()


def test_a_reopened_link_is_the_one_waited_on(peer):
    """After ``reopen`` (the old link dropped) the new socket is the one read, and a peer
    dropping the new connection is still a disconnect at once: every connection's socket
    is a ``PeerSocket``."""
    replies = iter([b"+1.0E-09,+1.0E+00\n", b"+2.0E-09,+2.0E+00\n", CLOSE])
    p = peer(picoammeter(lambda c: next(replies, None)))
    pico = keithley6485.connect(p.resource, timeout_s=2)
    try:
        assert pico.read().current == pytest.approx(1e-9)
        old = _socket_of(pico.adapter)
        assert pico.reopen()
        assert _socket_of(pico.adapter) is not old
        assert isinstance(_socket_of(pico.adapter), PeerSocket)
        assert pico.read().current == pytest.approx(2e-9)
        started = time.monotonic()
        with pytest.raises(InstrumentDisconnectedError, match="closed"):
            pico.read()
        assert time.monotonic() - started < 1.0  # not the 2 s time-out
    finally:
        pico.close()


@pytest.mark.parametrize("reply", [b"\xff\xfe\xfa\n", b"NO,DATA,HERE\n"])
def test_unparsable_reply_is_garbled(peer, reply):
    p = peer(picoammeter(lambda c: reply))
    pico = keithley6485.connect(p.resource, timeout_s=0.5)
    try:
        with pytest.raises(GarbledReplyError):
            pico.read()
    finally:
        pico.close()


def test_a_stale_reply_after_an_interrupted_query_is_cleared(peer):
    """A Ctrl-C inside a read leaves the reply in flight; the next transaction must not
    take it for its own answer."""
    replies = iter([b"+1.0E-09,+1.0E+00\n", b"+2.0E-09,+2.0E+00\n"])
    p = peer(picoammeter(lambda c: next(replies)))
    pico = keithley6485.connect(p.resource, timeout_s=1)
    try:
        pico.write(":TRIG:COUN 1")
        pico._trigger_count = 1
        pico.write("READ?")  # the reply to this one is never read...
        time.sleep(0.1)
        pico._interrupted = True  # ...as when KeyboardInterrupt hit the read
        assert pico.read().current == pytest.approx(2e-9)
    finally:
        pico.close()


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (pyvisa.errors.VisaIOError(StatusCode.error_connection_lost), InstrumentDisconnectedError),
        (pyvisa.errors.VisaIOError(StatusCode.error_io), InstrumentDisconnectedError),
        (pyvisa.errors.VisaIOError(StatusCode.error_timeout), InstrumentTimeoutError),
        (BrokenPipeError(32, "Broken pipe"), InstrumentDisconnectedError),
        (ConnectionResetError(104, "reset"), InstrumentDisconnectedError),
        (UnicodeDecodeError("ascii", b"\xff", 0, 1, "bad"), GarbledReplyError),
    ],
)
def test_translation_of_transport_failures(exc, expected):
    err = translate(exc, "GPIB0::24::INSTR", adapter=None, action="reading")
    assert type(err) is expected
    assert str(err).startswith("GPIB0::24::INSTR: reading")


def test_drivers_read_attributes_without_pymeasures_guard():
    """Plain attribute access (no Python-level hop per read) is only sound without
    dynamic properties: the shipped drivers have none, and one that adds one is refused."""
    from pymeasure.instruments import Instrument

    from labrig.drivers.keithley2400 import Keithley2400
    from labrig.drivers.keithley6485 import Keithley6485
    from labrig.drivers.visa import VisaTransport

    for driver in (Keithley2400, Keithley6485):
        assert driver.__getattribute__ is object.__getattribute__
        assert driver.__setattr__ is object.__setattr__
    with pytest.raises(TypeError, match=r"dynamic properties \(level\)"):

        class Dynamic(VisaTransport, Instrument):
            level = Instrument.control("LEV?", "LEV %g", "a level", dynamic=True)
