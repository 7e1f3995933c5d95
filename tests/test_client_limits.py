"""Chapter 06 on: the limits Redis puts on clients, over real sockets.

maxclients (refused with Redis's error, also when it comes from a low
open-files limit, without the loop spinning) and client-query-buffer-limit
(a client whose unexecuted input passes it is disconnected).
"""

from __future__ import annotations

import os
import shlex
import socket
import time

import pytest

from common.resp import encode_command
from tests.support import RawClient, ServerProcess

MAX_CLIENTS_ERROR = b"-ERR max number of clients reached\r\n"

pytestmark = [
    pytest.mark.readme("Limits: what one client can hold"),
    pytest.mark.since(6),
    pytest.mark.server_args("--maxclients", "3", "--client-query-buffer-limit", "1mb"),
]


def admitted(server) -> RawClient:
    """A connected client that the server answers. Connections that earlier
    tests closed count until the server notices, so a refusal is retried."""
    deadline = time.monotonic() + 10
    while True:
        client = server.connect()
        reply = client.command("PING")
        if reply == b"+PONG\r\n":
            return client
        client.close()
        assert reply == MAX_CLIENTS_ERROR and time.monotonic() < deadline, reply
        time.sleep(0.05)


def refusal(server) -> bytes:
    """What a new client receives: the refusal, then the closed connection."""
    with server.connect(timeout=5) as client:
        return client.read_until_closed()


def test_clients_past_maxclients_are_refused_with_redis_error(server):
    first, second, third = (admitted(server) for _ in range(3))
    try:
        assert refusal(server) == MAX_CLIENTS_ERROR
        assert first.command("PING") == b"+PONG\r\n"  # the connected ones are served as before
        third.close()
        with admitted(server) as fourth:  # in the place of the third
            assert fourth.command("ECHO", "4") == b"$1\r\n4\r\n"
    finally:
        for client in (first, second, third):
            client.close()


def test_a_client_past_the_query_buffer_limit_is_disconnected(server):
    """A request declaring a 10 MB argument, sent in full, passes a 1 MB limit."""
    with admitted(server) as client:
        client.send(b"*2\r\n$4\r\nECHO\r\n$10000000\r\n")
        try:
            for _ in range(10):
                client.send(b"x" * 1_000_000)
        except OSError:
            pass  # closed by the server while we were still sending
        assert client.is_closed_by_server()
    with admitted(server):  # the others are served
        pass


def test_arguments_of_a_request_still_arriving_count_toward_the_limit(server):
    """Many small arguments, none of which stays in the input buffer long."""
    with admitted(server) as client:
        client.send(b"*1000000\r\n$4\r\nECHO\r\n")
        try:
            for _ in range(300):
                client.send(b"$10000\r\n%s\r\n" % (b"y" * 10_000))
        except OSError:
            pass
        assert client.is_closed_by_server()


def test_out_of_file_descriptors_clients_are_refused_and_the_loop_sleeps(server):
    """Under `ulimit -n 64`, maxclients becomes 64 - 32 reserved = 32."""
    if isinstance(server.command, str):
        command = "sh -c " + shlex.quote("ulimit -n 64 && exec " + server.command)
    else:
        command = ["sh", "-c", 'ulimit -n 64 && exec "$@"', "sh", *server.command]
    limited = ServerProcess(command, own_server=not isinstance(server.command, str), chapter=server.chapter)
    clients = []
    try:
        replies = []
        for _ in range(40):  # one at a time: the start-up probe's close is seen first
            sock = socket.create_connection(("127.0.0.1", limited.port), timeout=5)
            clients.append(sock)
            sock.sendall(encode_command("PING"))
            replies.append(sock.recv(100))
        assert replies.count(b"+PONG\r\n") == 32
        assert replies.count(MAX_CLIENTS_ERROR) == 8
        cpu_before = cpu_seconds(limited.process.pid)
        time.sleep(1)
        # An idle server spends next to nothing; a loop woken for ever by
        # connections it cannot accept would spend the whole second.
        assert cpu_seconds(limited.process.pid) - cpu_before < 0.5
        assert refusal(limited) == MAX_CLIENTS_ERROR
    finally:
        for sock in clients:
            sock.close()
        limited.stop()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
