"""Chapter 05 on: several clients at once; chapter 06 on: the event loop's
limits: a thousand connections, and clients that do not read their replies."""

import socket
import struct
import time
from pathlib import Path

import pytest

from common.resp import encode_command


@pytest.mark.since(5)
@pytest.mark.readme("Threads against an event loop")
def test_a_slow_client_does_not_block_the_others(server):
    """A client that sent half a request must not hold up everyone else
    (chapter 04's server would wait for it)."""
    with server.connect() as slow, server.connect() as other:
        slow.send(b"*2\r\n$4\r\nECHO\r\n$4\r\nha")
        assert other.command("PING") == b"+PONG\r\n"
        slow.send(b"lf\r\n")
        assert slow.read_reply() == b"$4\r\nhalf\r\n"


@pytest.mark.since(5)
@pytest.mark.readme("Threads against an event loop")
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
@pytest.mark.readme("The loop")
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


@pytest.mark.since(7)
@pytest.mark.readme("Pipelining and backpressure", chapter=6)
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
        before = server.memory()
        client.send(encode_command("GET", key()) * count)
        peak = before
        for _ in range(20):  # give an uncapped server time to show itself
            client.sock.settimeout(0.05)
            try:
                client.sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                pass
            peak = max(peak, server.memory())
        client.sock.settimeout(60)
        expected = b"$%d\r\n%s\r\n" % (len(value), value)
        for _ in range(count):
            assert client.read_reply() == expected
    assert peak - before < 200 * 1024 * 1024, f"server grew by {(peak - before) >> 20} MB"


@pytest.mark.since(6)
@pytest.mark.readme("State kept per connection")
def test_client_gone_with_replies_pending(server):
    """A client that hangs up with a megabyte of replies unsent costs nobody else."""
    big = "x" * 100_000
    with server.connect() as client:
        client.send(encode_command("ECHO", big) * 10)
    with server.connect() as other:
        assert other.command("PING") == b"+PONG\r\n"


@pytest.mark.since(7)
@pytest.mark.readme("Limits: what one client can hold", chapter=6)
def test_requests_sent_before_a_half_close_are_all_executed_and_answered(server, key):
    """The client sends, shuts down its sending side, then reads: the
    requests held back by the output cap still run, and every reply comes."""
    big = b"b" * 200_000
    with server.connect() as client:
        assert client.command("SET", key("big"), big) == b"+OK\r\n"
        client.send(encode_command("GET", key("big")) * 100)  # 20 MB of replies: more than kernel buffers hold
        client.send(b"".join(encode_command("SET", key(str(i)), i) for i in range(50)))
        client.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)  # the end of input arrives while requests are held back
        replies = client.read_until_closed()
    assert replies == b"$200000\r\n%s\r\n" % big * 100 + b"+OK\r\n" * 50
    with server.connect() as other:
        for i in range(50):
            assert other.command("GET", key(str(i))) == b"$%d\r\n%d\r\n" % (len(str(i)), i)


@pytest.mark.since(7)
@pytest.mark.readme("Limits: what one client can hold", chapter=6)
def test_requests_held_back_still_run_when_the_client_resets(server, key):
    """A client that hangs up without reading its replies: what it sent is
    executed all the same, as Redis executes requests on arrival."""
    big = b"b" * 200_000
    with server.connect() as client:
        assert client.command("SET", key("big"), big) == b"+OK\r\n"
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(encode_command("GET", key("big")) * 100 + encode_command("SET", key("after"), "1"))
    time.sleep(0.2)  # let the server read them (and hold back the SET behind the GETs)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # with unread data: a reset
    with server.connect() as other:
        deadline = time.monotonic() + 10
        while other.command("GET", key("after")) != b"$1\r\n1\r\n":
            assert time.monotonic() < deadline, "the held-back SET never ran"
            time.sleep(0.05)


@pytest.mark.since(6)
@pytest.mark.readme("Pipelining and backpressure")
def test_a_client_that_does_not_read_is_not_read_from_either(server):
    """Pipelined requests from a client that never reads: past the output
    cap the server stops reading, so TCP stops the sender; without that,
    the server would buffer whatever it is sent."""
    request = encode_command("ECHO", "e" * 10_000)
    sent = 0
    with server.connect() as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sock.settimeout(2)
        try:
            while sent < 256 * 1024 * 1024:
                sent += client.sock.send(request * 100)
        except TimeoutError:
            pass
    # Kernel buffers on both sides and the server's 1 MB cap hold a few MB.
    assert sent < 64 * 1024 * 1024, f"the server accepted {sent >> 20} MB from a client that reads nothing"
