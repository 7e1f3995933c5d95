"""Chapter 05 on: several clients at once; chapter 06 on: the event loop's
limits: a thousand connections, and clients that do not read their replies."""

import socket
from pathlib import Path

import pytest

from common.resp import encode_command


@pytest.mark.since(5)
def test_a_slow_client_does_not_block_the_others(server):
    """A client that sent half a request must not hold up everyone else
    (chapter 04's server would wait for it)."""
    with server.connect() as slow, server.connect() as other:
        slow.send(b"*2\r\n$4\r\nECHO\r\n$4\r\nha")
        assert other.command("PING") == b"+PONG\r\n"
        slow.send(b"lf\r\n")
        assert slow.read_reply() == b"$4\r\nhalf\r\n"


@pytest.mark.since(5)
def test_interleaved_clients(server):
    clients = [server.connect() for _ in range(10)]
    try:
        for round_number in range(5):
            for i, client in enumerate(clients):
                client.send(encode_command("ECHO", f"{i}-{round_number}"))
            for i, client in enumerate(clients):
                message = f"{i}-{round_number}".encode()
                assert client.read_reply() == b"$%d\r\n%s\r\n" % (len(message), message)
    finally:
        for client in clients:
            client.close()


@pytest.mark.since(6)
def test_thousand_concurrent_connections(server):
    sockets = []
    try:
        for _ in range(1000):
            sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=15))
        for sock in sockets:
            sock.sendall(encode_command("PING"))
        for sock in sockets:
            assert sock.recv(64) == b"+PONG\r\n"
    finally:
        for sock in sockets:
            sock.close()


def resident_memory(pid: int) -> int:
    """The process's resident set size in bytes, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.since(7)
def test_output_to_a_client_that_does_not_read_is_capped(server, key):
    """A thousand GETs of a 1 MB value would be 1 GB of replies. The server
    must not build them all in memory for a client that is not reading, and
    must still deliver every one of them, in order, once the client reads."""
    if not Path(f"/proc/{server.process.pid}/status").exists():
        pytest.skip("needs Linux's /proc to read the server's memory")
    value = b"v" * (1024 * 1024)
    count = 1000
    with server.connect() as client:
        assert client.command("SET", key(), value) == b"+OK\r\n"
        before = resident_memory(server.process.pid)
        client.send(encode_command("GET", key()) * count)
        peak = before
        for _ in range(20):  # give an uncapped server time to show itself
            client.sock.settimeout(0.05)
            try:
                client.sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                pass
            peak = max(peak, resident_memory(server.process.pid))
        client.sock.settimeout(60)
        expected = b"$%d\r\n%s\r\n" % (len(value), value)
        for _ in range(count):
            assert client.read_reply() == expected
    assert peak - before < 200 * 1024 * 1024, f"server grew by {(peak - before) >> 20} MB"


@pytest.mark.since(6)
def test_client_gone_with_replies_pending(server):
    """A client that hangs up with a megabyte of replies unsent costs nobody else."""
    big = "x" * 100_000
    with server.connect() as client:
        client.send(encode_command("ECHO", big) * 10)
    with server.connect() as other:
        assert other.command("PING") == b"+PONG\r\n"
