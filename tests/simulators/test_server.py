"""SCPIServer: loopback TCP line protocol, pyvisa-py compatible, clean start/stop."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import pyvisa

from labrig.clock import SimulatedClock
from labrig.simulators.scpi import SCPIInstrument, nr3, one_param, parse_number
from labrig.simulators.server import SCPIServer


class Echo(SCPIInstrument):
    """A stand-in instrument: the server must not care which instrument it serves."""

    def __init__(self) -> None:
        super().__init__()
        self.level = 0.0

    def idn(self) -> str:
        return "ACME,ECHO,0,1"

    def _build_tree(self) -> None:
        def set_level(args: list[str]) -> None:
            self.level = parse_number(one_param(args), low=-10, high=10)

        self.tree.add(":LEVel", set=set_level, query=lambda _: nr3(self.level))


def raw_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    return sock


def recv_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_resource_names_an_ephemeral_loopback_port() -> None:
    server = SCPIServer(Echo()).start()
    try:
        assert server.port > 0
        assert server.resource == f"TCPIP::127.0.0.1::{server.port}::SOCKET"
    finally:
        server.stop()


def test_pyvisa_py_talks_to_it() -> None:
    with SCPIServer(Echo()) as server:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(
            server.resource, read_termination="\n", write_termination="\n", timeout=2000
        )
        assert inst.query("*IDN?") == "ACME,ECHO,0,1"
        inst.write(":LEV 2.5")
        assert inst.query(":LEV?") == "+2.500000E+00"
        assert inst.query(":SYST:ERR?") == '0,"No error"'
        inst.close()
        rm.close()


def test_crlf_and_several_lines_in_one_packet() -> None:
    inst = Echo()
    with SCPIServer(inst) as server:
        sock = raw_client(server.port)
        sock.sendall(b":LEV 1\r\n:LEV?\r\n*IDN?\n")
        lines = sock.makefile("rb")
        assert lines.readline() == b"+1.000000E+00\n"
        assert lines.readline() == b"ACME,ECHO,0,1\n"
        sock.close()


def test_a_line_split_across_packets() -> None:
    with SCPIServer(Echo()) as server:
        sock = raw_client(server.port)
        sock.sendall(b"*ID")
        sock.sendall(b"N?\n")
        assert recv_line(sock) == b"ACME,ECHO,0,1\n"
        sock.close()


def test_reconnect_after_the_client_leaves() -> None:
    inst = Echo()
    with SCPIServer(inst) as server:
        for level in (1, 2, 3):
            sock = raw_client(server.port)
            sock.sendall(f":LEV {level};:LEV?\n".encode())
            assert recv_line(sock) == f"+{level}.000000E+00\n".encode()
            sock.close()


def test_last_commands_before_close_are_run_on_stop() -> None:
    inst = Echo()
    server = SCPIServer(inst).start()
    sock = raw_client(server.port)
    sock.sendall(b":LEV 7\n")
    sock.close()
    server.stop()
    assert inst.level == 7


def test_stop_is_idempotent_joins_threads_and_frees_the_port() -> None:
    before = {t.name for t in threading.enumerate()}
    server = SCPIServer(Echo()).start()
    port = server.port
    sock = raw_client(port)
    server.stop()
    server.stop()
    assert {t.name for t in threading.enumerate()} <= before
    assert recv_line(sock) == b""  # the server closed our connection
    sock.close()
    with pytest.raises(OSError):
        raw_client(port)


def test_restart_serves_again() -> None:
    inst = Echo()
    server = SCPIServer(inst)
    server.start()
    server.stop()
    server.start()
    try:
        sock = raw_client(server.port)
        sock.sendall(b"*IDN?\n")
        assert recv_line(sock) == b"ACME,ECHO,0,1\n"
        sock.close()
    finally:
        server.stop()


def test_accepted_socket_has_nodelay() -> None:
    """(TCP_QUICKACK cannot be pinned here: the kernel leaves quick-ACK mode on its own,
    which is why the server re-arms it; ``benchmarks/scpi_roundtrip.py`` measures the effect.)"""
    with SCPIServer(Echo()) as server:
        sock = raw_client(server.port)
        sock.sendall(b"*IDN?\n")
        assert recv_line(sock) == b"ACME,ECHO,0,1\n"
        accepted = server._client
        assert accepted is not None
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        sock.close()


def test_terminations_a_client_must_set() -> None:
    assert SCPIServer(Echo()).terminations == "read_termination='\\n', write_termination='\\n'"


def test_a_second_client_is_refused_at_once_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with SCPIServer(Echo()) as server:
        first = raw_client(server.port)
        first.sendall(b":LEV 1\n")
        rm = pyvisa.ResourceManager("@py")
        second = rm.open_resource(
            server.resource, read_termination="\n", write_termination="\n", timeout=5000
        )
        with caplog.at_level("WARNING", logger="labrig.simulators.server"):
            with pytest.raises((ConnectionError, pyvisa.errors.VisaIOError)) as refused:
                for _ in range(50):  # until the server has turned it away
                    second.query("*IDN?")
        assert not isinstance(refused.value, pyvisa.errors.VisaIOError)  # not a time-out
        assert any(
            "refused a second client" in r.getMessage() and "one client at a time" in r.getMessage()
            for r in caplog.records
        )
        first.sendall(b":LEV?\n")  # the first client is served on
        assert recv_line(first) == b"+1.000000E+00\n"
        first.close()
        with contextlib.suppress(Exception):
            second.close()
        rm.close()


class SlowParser(Echo):
    """An instrument whose server thread takes real time to get to each command (a busy
    machine), recording the simulated time at which it acts on it."""

    def __init__(self, clock) -> None:
        super().__init__()
        self.clock = clock
        self.acted_at: list[float] = []

    def process(self, line: str) -> bytes | None:
        time.sleep(0.05)
        self.acted_at.append(self.clock.time())
        return super().process(line)


def test_simulated_time_waits_for_a_command_in_flight() -> None:
    """A level written and then slept on is applied before any simulated time passes,
    however late the server thread gets to it."""
    clock = SimulatedClock(start=0.0)
    instrument = SlowParser(clock)
    with SCPIServer(instrument, clock=clock) as server:
        sock = raw_client(server.port)
        try:
            sock.sendall(b":LEV 2.5\n")
            clock.sleep(10.0)  # the client's dwell, started right after the write
            sock.sendall(b":LEV 3.5\n:LEV 4.5\n")
            clock.sleep(5.0)
            sock.sendall(b":LEV?\n")
            assert recv_line(sock) == b"+4.500000E+00\n"
        finally:
            sock.close()
    assert instrument.acted_at == [0.0, 10.0, 10.0, 15.0]
    assert clock.time() == 15.0


def test_an_instrument_spending_its_own_time_does_not_hold_the_clock() -> None:
    """The served instrument's own sleeps (a measurement cycle) are not "in flight": its
    thread and another's both let time pass, no dead-lock."""
    clock = SimulatedClock(start=0.0)

    class Measuring(Echo):
        def _build_tree(self) -> None:
            super()._build_tree()
            self.tree.add(":READ", query=lambda _: (clock.sleep(2.0), nr3(clock.time()))[1])

    with SCPIServer(Measuring(), clock=clock) as server:
        sock = raw_client(server.port)
        try:
            sock.sendall(b":READ?\n")
            assert recv_line(sock) == b"+2.000000E+00\n"
        finally:
            sock.close()
    started = time.monotonic()
    clock.sleep(1.0)
    assert time.monotonic() - started < 1.0  # no link left in flight: no settle wait
    assert clock.time() == 3.0
