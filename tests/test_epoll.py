"""Chapter 15 on: thousands of open connections, and an active client still served.

The test opens as many connections as this machine's open-files limit
allows, up to 10,000 and at least 5,000 (fewer fail in CI, and skip
elsewhere), each with
one PING answered so that the server has accepted it, then checks that a
client among them is served in full: pipelined requests, a large value, and
the server's own count of clients. (No timing assertions: CI machines are
shared; chapters/15_epoll/c10k_bench.py measures.)
"""

from __future__ import annotations

import socket

import pytest

from common.net import raise_open_files_limit
from tests.support import in_ci

MOST = 10_000  # Redis's default maxclients
LEAST = 5_000
SPARE_FDS = 64  # this process's own needs besides the connections

pytestmark = [
    pytest.mark.since(15),
    pytest.mark.heavy,
    pytest.mark.readme("Ten thousand clients"),
    pytest.mark.server_args("--maxclients", str(MOST + 100)),
]


def open_files() -> int:
    """Raise this process's open-files limit as far as MOST connections
    need; returns how many it allows. Fewer than LEAST: skip (fail in CI)."""
    allowed = raise_open_files_limit(MOST + SPARE_FDS) - SPARE_FDS
    if allowed < LEAST:
        message = f"the open-files limit allows {allowed} connections, fewer than {LEAST}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return allowed


def test_an_active_client_is_served_among_thousands_of_idle_ones(server, key):
    connections = open_files()
    idle: list[socket.socket] = []
    try:
        for _ in range(connections):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"PING\r\n")
            idle.append(sock)
        for sock in idle:  # every one accepted and answered
            assert sock.recv(7) == b"+PONG\r\n"
        with server.connect() as active:
            assert b"\r\nconnected_clients:%d\r\n" % (connections + 1) in active.command("INFO", "clients")
            value = b"v" * 200_000
            active.send(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(key(str(i))), key(str(i)).encode(), len(value), value) for i in range(100)))  # fmt: skip
            assert active.read_replies(100) == [b"+OK\r\n"] * 100
            assert active.command("GET", key("99")) == b"$%d\r\n%s\r\n" % (len(value), value)
            assert active.command("DEL", *[key(str(i)) for i in range(100)]) == b":100\r\n"
    finally:
        for sock in idle:
            sock.close()


def test_idle_clients_leaving_all_at_once_are_all_closed(server):
    """Thousands of hang-ups at once: each must be unregistered and closed."""
    connections = open_files()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(connections)]
    for sock in idle:
        sock.sendall(b"PING\r\n")
    for sock in idle:
        assert sock.recv(7) == b"+PONG\r\n"
        sock.close()
    with server.connect() as client:
        for _ in range(connections):  # the server closes them as it sees each EOF
            if b"\r\nconnected_clients:1\r\n" in client.command("INFO", "clients"):
                break
            client.command("PING")
        assert b"\r\nconnected_clients:1\r\n" in client.command("INFO", "clients")


def test_info_names_the_api_the_loop_waits_in(server):
    with server.redis() as client:
        assert client.info("server")["multiplexing_api"] == "epoll"
