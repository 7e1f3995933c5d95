"""Chapter 21 on: requirepass, AUTH, HELLO's AUTH and protected mode, against real Redis.

Protected mode is tested from a second loopback address (127.0.0.2),
which Linux routes to the same host and which Redis, like this server,
does not count as local: never from an outside address.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest
import redis

from tests.support import RawClient, launch, real_redis_on, require_tool

pytestmark = [pytest.mark.since(21), pytest.mark.readme("AUTH and protected mode")]

TRANSCRIPT = [
    ("GET", "a"), ("AUTH", "wrong"), ("AUTH", "default", "wrong"), ("AUTH", "nobody", "secret"), ("AUTH", "x", "y", "z"),
    ("HELLO", "3"), ("HELLO", "3", "AUTH", "default", "wrong"), ("NOPE",), ("GET",), ("PING",), ("CLIENT", "ID"),
    ("AUTH", "secret"), ("GET", "a"), ("RESET",), ("GET", "a"), ("AUTH", "default", "secret"), ("SET", "a", "1"),
    ("RESET",), ("HELLO", "2", "AUTH", "default", "secret", "SETNAME", "named"), ("CLIENT", "GETNAME"),
    ("CONFIG", "GET", "requirepass"),
]  # fmt: skip


def transcript(process) -> list[bytes]:
    """The replies; HELLO's map only by its shape (versions and ids differ by nature)."""
    with process.connect() as client:
        replies = [client.command(*command) for command in TRANSCRIPT]
    return [reply[:5] if reply.startswith((b"*14\r\n", b"%7\r\n")) else reply for reply in replies]


def test_requirepass_and_auth_reply_as_redis(server, tmp_path):
    (tmp_path / "ours").mkdir(), (tmp_path / "theirs").mkdir()
    ours = launch(server, tmp_path / "ours", "--requirepass", "secret")
    theirs = real_redis_on(tmp_path / "theirs", "--requirepass", "secret")
    try:
        assert transcript(ours) == transcript(theirs)
    finally:
        ours.stop(), theirs.stop()


def test_without_a_password_auth_is_refused_as_redis(pair):
    for client in pair:
        client.command("CONFIG", "SET", "requirepass", "")
    ours, theirs = pair
    for command in [("AUTH", "anything"), ("AUTH", "default", "anything"), ("AUTH", "nobody", "x"), ("GET", "a")]:
        assert ours.command(*command) == theirs.command(*command), command


def test_a_password_set_at_runtime_binds_new_clients_only(server):
    with server.connect() as admin:
        assert admin.command("CONFIG", "SET", "requirepass", "runtime") == b"+OK\r\n"
        try:
            assert admin.command("GET", "x") == b"$-1\r\n"  # connected before: still authenticated
            with server.connect() as newcomer:
                assert newcomer.command("GET", "x") == b"-NOAUTH Authentication required.\r\n"
                assert newcomer.command("AUTH", "runtime") == b"+OK\r\n"
                assert newcomer.command("GET", "x") == b"$-1\r\n"
        finally:
            admin.command("CONFIG", "SET", "requirepass", "")
        with server.connect() as later:
            assert later.command("GET", "x") == b"$-1\r\n"


def test_redis_cli_and_redis_py_authenticate(server, tmp_path):
    ours = launch(server, tmp_path, "--requirepass", "s3cret")
    try:
        cli = require_tool("redis-cli")
        run = [cli, "-p", str(ours.port), "--no-auth-warning"]
        assert subprocess.run([*run, "-a", "s3cret", "PING"], capture_output=True, text=True).stdout == "PONG\n"
        assert subprocess.run([*run, "--user", "default", "--pass", "s3cret", "SET", "k", "v"],
                              capture_output=True, text=True).stdout == "OK\n"  # fmt: skip
        assert "NOAUTH" in subprocess.run([*run, "GET", "k"], capture_output=True, text=True).stdout
        for options in ({"password": "s3cret"}, {"username": "default", "password": "s3cret"}, {"protocol": 3, "username": "default", "password": "s3cret"}):
            with ours.redis(**options) as client:
                assert client.get("k") == b"v"
        with ours.redis(password="wrong") as client, pytest.raises(redis.AuthenticationError):
            client.ping()
    finally:
        ours.stop()


def from_second_loopback(port: int, request: bytes = b"") -> bytes:
    """What a client connecting from 127.0.0.2 receives before the server closes (or 2 s pass)."""
    sock = socket.socket()
    sock.bind(("127.0.0.2", 0))
    sock.connect(("127.0.0.1", port))
    sock.settimeout(2)
    if request:
        sock.sendall(request)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        received += b"<still open>"
    except ConnectionResetError:
        received += b"<reset>"
    finally:
        sock.close()
    return received


def test_protected_mode_refuses_other_addresses_as_redis(server, tmp_path):
    (tmp_path / "ours").mkdir(), (tmp_path / "theirs").mkdir()
    ours = launch(server, tmp_path / "ours", "--host", "0.0.0.0")
    theirs = real_redis_on(tmp_path / "theirs", "--bind", "0.0.0.0")
    try:
        denied = from_second_loopback(ours.port)
        assert denied == from_second_loopback(theirs.port)
        assert denied.startswith(b"-DENIED Redis is running in protected mode") and denied.endswith(b"\r\n")
        with ours.connect() as local:  # 127.0.0.1 is local: served
            assert local.command("PING") == b"+PONG\r\n"
            assert local.command("CONFIG", "SET", "protected-mode", "no") == b"+OK\r\n"
        assert from_second_loopback(ours.port, b"PING\r\n") == b"+PONG\r\n<still open>"
        with ours.connect() as local:
            local.command("CONFIG", "SET", "protected-mode", "yes")
            local.command("CONFIG", "SET", "requirepass", "pw")  # a password: anyone may connect, and must AUTH
        assert from_second_loopback(ours.port, b"PING\r\n") == b"-NOAUTH Authentication required.\r\n<still open>"
    finally:
        ours.stop(), theirs.stop()


def test_protected_mode_off_from_the_command_line(server, tmp_path):
    ours = launch(server, tmp_path, "--host", "0.0.0.0", "--protected-mode", "no")
    try:
        assert from_second_loopback(ours.port, b"PING\r\n") == b"+PONG\r\n<still open>"
    finally:
        ours.stop()


def test_guessing_passwords_from_many_connections_slows_nobody_and_grows_nothing(server, tmp_path):
    """Ten connections try 2,000 wrong passwords each while another client
    PINGs: the PINGs stay fast, the memory flat, the right password works."""
    ours = launch(server, tmp_path, "--requirepass", "the-right-one")
    try:
        with ours.connect() as probe:
            assert probe.command("AUTH", "the-right-one") == b"+OK\r\n"
            before = ours.memory()
            stop = threading.Event()

            def guess() -> None:
                with ours.connect() as guesser:
                    batch = b"".join(b"AUTH guess-%d\r\n" % number for number in range(200))
                    for _ in range(10):
                        guesser.send(batch)
                        replies = guesser.read_replies(200)
                        assert set(replies) == {b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"}
                stop.set()

            guessers = [threading.Thread(target=guess) for _ in range(10)]
            for thread in guessers:
                thread.start()
            slowest = 0.0
            while any(thread.is_alive() for thread in guessers):
                started = time.monotonic()
                assert probe.command("PING") == b"+PONG\r\n"
                slowest = max(slowest, time.monotonic() - started)
            for thread in guessers:
                thread.join()
            assert slowest < 0.5, slowest
            assert ours.memory() - before < 8 * 2**20
            with ours.connect() as rightful:
                assert rightful.command("AUTH", "the-right-one") == b"+OK\r\n"
    finally:
        ours.stop()
