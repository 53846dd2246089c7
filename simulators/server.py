"""Serve a simulated line-protocol instrument on a loopback TCP port.

One server for every simulator that speaks lines: the SCPI instruments (``SCPIServer``:
the drivers reach them exactly as an instrument behind a LAN adapter,
``TCPIP::127.0.0.1::PORT::SOCKET`` through pyvisa-py with '\\n' terminations,
``READ_TERMINATION`` / ``WRITE_TERMINATION``: a client must set them, pyvisa's socket
sessions have no default) and the lifetime rig (``simulators.lifetime_rig.RigServer``,
opened by pyserial as ``socket://127.0.0.1:PORT``).  The served device answers each
line (``LineDevice``); the server owns the sockets, the one-client rule and the clock's
view of the link.  One client at a time (as a GPIB-LAN bridge or a serial port): a
second client is refused at once, with a warning in the server's log, and its connection
closed; when the first goes, the next may connect.

Any client gets sub-millisecond write-then-query round trips: the accepted socket has
``TCP_NODELAY`` (replies are not held back by Nagle's algorithm) and, where the platform
has it, ``TCP_QUICKACK`` re-armed after every receive (Linux drops it again on its own),
so a write is acknowledged at once and a client that leaves Nagle on (pyvisa-py does)
does not wait ~40 ms for the delayed ACK before it may send its query.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
from typing import Any, Protocol

from labrig.simulators.faults import ConnectionDropped

log = logging.getLogger(__name__)

_ACCEPT_POLL_S = 0.1
READ_TERMINATION = "\n"
WRITE_TERMINATION = "\n"


def tune_socket(sock: socket.socket) -> None:
    """Low-latency options on an accepted socket (see the module docstring)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _quickack(sock)


def _quickack(sock: socket.socket) -> None:
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


class LinkActivity:
    """One served connection as the simulated clock sees it (``labrig.clock.CommandLink``).

    A command is in flight from the moment its bytes reach the server's socket until the
    instrument has acted on it: finished it, or begun spending its own (clock) time on
    it.  The server marks itself busy *before* it takes bytes out of the socket, so there
    is no moment at which a sent command is neither readable nor being handled.
    """

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.listener: socket.socket | None = None
        self.client: socket.socket | None = None
        self._busy = False

    def accept(self, listener: socket.socket, timeout_s: float) -> socket.socket | None:
        """The next client from ``listener``, or None after ``timeout_s`` without one;
        busy from the moment a connection is waiting (it may already have sent)."""
        self.thread, self.listener = threading.current_thread(), listener
        readable, _, _ = select.select([listener], [], [], timeout_s)
        if not readable:
            return None
        self.begin()
        try:
            client, _ = listener.accept()
        except BaseException:
            self.idle()
            raise
        self.client = client
        return client

    def begin(self) -> None:
        """A command is about to be handled (busy until ``idle``)."""
        self._busy = True

    def idle(self) -> None:
        """Everything received so far has been acted on."""
        self._busy = False

    def close(self) -> None:
        self._busy = False
        self.client = None

    def in_flight(self, thread: threading.Thread) -> bool:
        if thread is self.thread:
            # the instrument spends time on its own command: it has begun acting on it
            self._busy = False
            return False
        if self._busy:
            return True
        # no client yet: one whose connection waits to be accepted may have sent already
        sock = self.client if self.client is not None else self.listener
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):  # closed meanwhile
            return False
        return bool(readable)


def watch_link(clock: Any, activity: LinkActivity) -> None:
    """Let ``clock`` hold time while ``activity`` has a command in flight (a clock that
    runs by itself has nothing to hold)."""
    watch = getattr(clock, "watch", None)
    if watch is not None:
        watch(activity)


def unwatch_link(clock: Any, activity: LinkActivity) -> None:
    unwatch = getattr(clock, "unwatch", None)
    if unwatch is not None:
        unwatch(activity)


class LineDevice(Protocol):
    """What a served simulator does with the lines it receives."""

    def process(self, line: str) -> bytes | None:
        """The terminated reply to one line, or None for none; raises
        ``ConnectionDropped`` to drop the connection (a link fault)."""

    def poll(self) -> None:
        """The firmware's idle loop, run whenever the link is quiet (~10 times a second)."""

    def link_up(self) -> bool:
        """False while the device's link is down: a connection is closed at once."""


class LineServer:
    """Threaded line-protocol server for one ``LineDevice``, one client at a time."""

    def __init__(
        self, instrument: LineDevice, host: str = "127.0.0.1", port: int = 0, clock: Any = None
    ) -> None:
        self.instrument = instrument
        self.clock = clock  # a simulated clock holds time while a command is in flight
        self.activity = LinkActivity()
        self.host = host
        self._requested_port = port
        self._sock: socket.socket | None = None
        self._client: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._client_lock = threading.Lock()
        self.port = 0

    @property
    def resource(self) -> str:
        """The address a client opens."""
        raise NotImplementedError

    def start(self) -> LineServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(4)
        sock.settimeout(_ACCEPT_POLL_S)
        self._sock = sock
        self.activity.listener = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        watch_link(self.clock, self.activity)
        self._thread = threading.Thread(
            target=self._serve, name=f"{type(self).__name__}-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every socket and join the thread; idempotent."""
        self._stop.set()
        if self._thread is not None:
            # the thread first runs what the client already sent (its last ``:OUTP OFF``)
            self._thread.join(timeout=5)
            self._thread = None
        unwatch_link(self.clock, self.activity)
        self._close_client()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> LineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- internals
    def _close_client(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                client.close()

    def _reset_client(self, client: socket.socket) -> None:
        with self._client_lock:
            self._client = None
        self._abort(client)

    @staticmethod
    def _abort(client: socket.socket) -> None:
        """Close with a reset (RST): the client's next read or write fails at once with
        a connection error (pyvisa-py waits out its time-out on an orderly close)."""
        with contextlib.suppress(OSError):
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                client = self.activity.accept(self._sock, _ACCEPT_POLL_S)
            except (OSError, ValueError):
                break
            if client is None:
                self.instrument.poll()
                continue
            if not self.instrument.link_up():
                # the link is down: the client sees its connection closed at once
                self.activity.close()
                with contextlib.suppress(OSError):
                    client.close()
                continue
            client.settimeout(_ACCEPT_POLL_S)
            tune_socket(client)
            with self._client_lock:
                self._client = client
            try:
                self._talk(client)
            finally:
                self.activity.close()
                self._close_client()

    def _refuse(self, busy_with: socket.socket) -> None:
        """A second client while one is served: say why in the log and close it at once
        (its first read or write fails with a connection error, not a silent hang)."""
        try:
            other, address = self._sock.accept()  # type: ignore[union-attr]
        except OSError:
            return
        with contextlib.suppress(OSError):
            peer = busy_with.getpeername()
            log.warning(
                "%s: refused a second client from %s:%s; serving %s:%s (one client at a time)",
                self.resource,
                *address[:2],
                *peer[:2],
            )
        self._abort(other)

    def _talk(self, client: socket.socket) -> None:
        buffer = b""
        while True:
            stopping = self._stop.is_set()
            try:
                ready, _, _ = select.select([client, self._sock], [], [], _ACCEPT_POLL_S)
            except (OSError, ValueError):
                return
            if client not in ready:
                self.activity.idle()  # nothing unread: everything sent has been acted on
                self.instrument.poll()
                if self._sock in ready:
                    # the client has nothing unread (no data, no close): it is still there
                    self._refuse(client)
                elif stopping:
                    return  # nothing left unread: stop
                continue
            self.activity.begin()  # before the bytes leave the socket
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return  # the client closed
            _quickack(client)
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                line = raw.rstrip(b"\r").decode("ascii", errors="replace")
                self.activity.begin()
                try:
                    reply = self.instrument.process(line)
                except ConnectionDropped:
                    # reset (RST), as a dropped link looks to the client: a connection
                    # error on its next read, not a silent time-out
                    self._reset_client(client)
                    return
                if reply:
                    try:
                        client.sendall(reply)
                    except OSError:
                        return
            self.activity.idle()


class SCPIServer(LineServer):
    """Serves one ``SCPIInstrument`` as a LAN-attached instrument (a VISA SOCKET resource)."""

    @property
    def resource(self) -> str:
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    @property
    def terminations(self) -> str:
        """What a client must set, in pyvisa's keywords (printed by ``labrig sim serve``)."""
        return f"read_termination={READ_TERMINATION!r}, write_termination={WRITE_TERMINATION!r}"


class SerialLineServer(LineServer):
    """Serves one line-protocol device as a pyserial ``socket://`` URL (a serial port
    behind a serial-to-Ethernet adapter, as the driver sees it)."""

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    @property
    def resource(self) -> str:
        return self.url
