"""What the tests share: finding the chapters, running a server under test,
and a raw RESP client that returns replies as the exact bytes received.

Tests drive every server over real sockets. A raw client, rather than a
client library, is what lets them split requests byte by byte, pipeline a
thousand requests in one write, send malformed input, and compare reply
bytes with real Redis.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from common.resp import encode_command

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS_DIR = ROOT / "chapters"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
REPLY_TIMEOUT = 15.0


def discover_chapters() -> dict[int, Path]:
    """Chapter number -> its server.py, from folders named NN_name."""
    chapters = {}
    for folder in sorted(CHAPTERS_DIR.iterdir()):
        number, _, _ = folder.name.partition("_")
        if number.isdigit() and (folder / "server.py").exists():
            chapters[int(number)] = folder / "server.py"
    return chapters


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


# Every server started, so that one a failing test left running is stopped
# after it (tests/conftest.py's no_server_left_behind).
STARTED: list[ServerProcess] = []


class ServerProcess:
    """A server started as a subprocess on a free port of 127.0.0.1.

    `command` is an argv list or, in grader mode, a shell-like string with a
    ``{port}`` placeholder. `stop()` fails if the server died before being
    asked to stop, did not exit cleanly, or printed a traceback.
    """

    def __init__(
        self,
        command: list[str] | str,
        extra_args: tuple[str, ...] = (),
        own_server: bool = True,
        chapter: int | None = None,
        port: int | None = None,
        tracebacks_allowed: bool = False,
    ) -> None:
        self.chapter = chapter
        self.tracebacks_allowed = tracebacks_allowed  # a peer measured by tools/bench.py is not ours to judge
        self.command = command  # as given, before the port is filled in
        self.port = port or free_port()  # a given port: a server restarted where it was
        if isinstance(command, str):
            argv = [os.path.expanduser(word) for word in shlex.split(command.format(port=self.port))]
            if argv and argv[0] in ("python", "python3"):  # the learner's server runs on this Python
                argv[0] = sys.executable
        else:
            argv = [*command, "--port", str(self.port)]
        self.argv = [*argv, *extra_args]
        self.own_server = own_server  # ours must exit with status 0; a graded one need not
        self._stderr = tempfile.TemporaryFile()
        # Our servers run in a directory of their own, deleted afterwards:
        # from chapter 16 on they write their files (dump.rdb) into the
        # current one. A learner's command line may name files relative to
        # the repository, so it runs there.
        self.workdir = tempfile.TemporaryDirectory(prefix="server-") if isinstance(command, list) else None
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
            cwd=self.workdir.name if self.workdir else ROOT,
        )  # fmt: skip
        STARTED.append(self)
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"it exited at start-up: {shlex.join(self.argv)}\n{self.output().rstrip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        self.process.kill()
        raise RuntimeError(f"it did not accept connections within {START_TIMEOUT} s: {shlex.join(self.argv)}")

    def output(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def memory(self, field: str = "VmRSS") -> int:
        """The server's memory in bytes, from /proc: VmRSS (resident now) or VmHWM (its peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} in /proc/{self.process.pid}/status")

    def cpu_seconds(self) -> float:
        """The server's user + system CPU time so far (fields 14 and 15 of /proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def assert_alive(self) -> None:
        code = self.process.poll()
        assert code is None, f"server died (exit status {code}):\n{self.output()}"

    def stop(self) -> None:
        self.assert_alive()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"server ignored SIGTERM for {STOP_TIMEOUT}s:\n{self.output()}")
        output = self.output()
        self._stderr.close()
        if self.workdir is not None:
            self.workdir.cleanup()
        assert self.tracebacks_allowed or "Traceback" not in output, f"server printed a traceback:\n{output}"
        if self.own_server:
            assert code == 0, f"server exited with status {code}:\n{output}"

    def crash(self) -> None:
        """kill -9: no chance to flush, save or clean up (what a power cut does to a process)."""
        self.process.kill()
        self.process.wait(STOP_TIMEOUT)
        self._stderr.close()
        if self.workdir is not None:
            self.workdir.cleanup()

    # --- clients ----------------------------------------------------------------

    def connect(self, timeout: float = REPLY_TIMEOUT) -> RawClient:
        return RawClient(socket.create_connection(("127.0.0.1", self.port), timeout=timeout))

    @contextmanager
    def redis(self, **options: object) -> Iterator[redis.Redis]:
        """A redis-py client; closed afterwards (chapter 04 serves one client at a time)."""
        client = redis.Redis(port=self.port, socket_timeout=REPLY_TIMEOUT, **options)
        try:
            yield client
        finally:
            client.close()


class AcknowledgedWriter(threading.Thread):
    """SETs key:0, key:1, ... (to "0", "1", ...) one at a time until the
    connection breaks (a crash test kills the server); `acknowledged`
    counts the SETs the server replied OK to: key:0 to key:<acknowledged - 1>."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.acknowledged = 0

    def run(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=REPLY_TIMEOUT)
        try:
            while True:
                client.set(b"key:%d" % self.acknowledged, b"%d" % self.acknowledged)
                self.acknowledged += 1
        except redis.ConnectionError:
            pass
        finally:
            client.close()

    def lost(self, port: int) -> int:
        """How many acknowledged SETs the server on `port` does not hold."""
        with redis.Redis(port=port, socket_timeout=REPLY_TIMEOUT) as client:
            return sum(1 for i in range(self.acknowledged) if client.get(b"key:%d" % i) != b"%d" % i)


class ConnectionClosed(Exception):
    pass


class NoReply(TimeoutError):
    """The server did not answer in time; says what the client was waiting for."""


@dataclass
class Exchange:
    """One thing a test sent: a command's arguments, or raw bytes (framing tests), and the reply read back."""

    sent: tuple[bytes | str | int, ...] | bytes
    reply: bytes | None = None


# Every RawClient a test opens, so that grader mode can say what was sent
# when a check fails (tests/grader.py clears it before each test).
OPEN_CLIENTS: list[RawClient] = []


class RawClient:
    """A RESP client over a plain socket that hands back raw reply bytes.

    It keeps its last few exchanges (`transcript`): grader mode reports the
    command behind a reply that differs from the expected one.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self.transcript: deque[Exchange] = deque(maxlen=16)
        self._unanswered: deque[Exchange] = deque()  # sent, reply not read yet (pipelines)
        OPEN_CLIENTS.append(self)

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes, _as: tuple[bytes | str | int, ...] | None = None) -> None:
        exchange = Exchange(_as if _as is not None else data)
        self.transcript.append(exchange)
        self._unanswered.append(exchange)
        self.sock.sendall(data)

    def command(self, *args: bytes | str | int) -> bytes:
        """Send one command and return its raw reply."""
        self.send(encode_command(*args), _as=args)
        return self.read_reply()

    def read_reply(self) -> bytes:
        """The exact bytes of the next complete reply (RESP2 or RESP3)."""
        end = self._reply_end(0)
        reply = bytes(self._buffer[:end])
        del self._buffer[:end]
        if self._unanswered:
            self._unanswered.popleft().reply = reply
        return reply

    def waiting_for(self) -> Exchange | None:
        """The oldest request sent and not yet answered."""
        return self._unanswered[0] if self._unanswered else None

    def read_replies(self, count: int) -> list[bytes]:
        return [self.read_reply() for _ in range(count)]

    def read_until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        while self._fill():
            pass
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def is_closed_by_server(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (with nothing more to read)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(1024 * 1024)
        except TimeoutError:
            raise NoReply(f"no reply within {self.sock.gettimeout()} s") from None
        self._buffer += chunk
        return bool(chunk)

    def _line_end(self, start: int) -> int:
        while (end := self._buffer.find(b"\r\n", start)) < 0:
            if not self._fill():
                raise ConnectionClosed(f"closed mid-reply after {bytes(self._buffer)[:200]!r}")
        return end

    def _reply_end(self, start: int) -> int:
        """Index just past the reply starting at `start`, reading more as needed."""
        while len(self._buffer) <= start:
            if not self._fill():
                raise ConnectionClosed("closed before a reply")
        line_end = self._line_end(start)
        kind = self._buffer[start : start + 1]
        if kind in (b"$", b"=", b"!"):  # bulk string, verbatim string, bulk error
            length = int(self._buffer[start + 1 : line_end])
            if length < 0:
                return line_end + 2
            end = line_end + 2 + length + 2
            while len(self._buffer) < end:
                if not self._fill():
                    raise ConnectionClosed("closed mid-bulk")
            return end
        if kind in (b"*", b"~", b">", b"%"):  # array, set, push, map
            count = int(self._buffer[start + 1 : line_end])
            if kind == b"%":
                count *= 2  # a map holds key-value pairs
            position = line_end + 2
            for _ in range(max(count, 0)):
                position = self._reply_end(position)
            return position
        return line_end + 2  # + - : _ , # ( one-line replies


def server_command(chapter_server: Path) -> list[str]:
    return [sys.executable, str(chapter_server)]


class ReplyMismatch(AssertionError):
    """A reply that differs from the one expected (from real Redis, in differential tests)."""

    def __init__(self, sent: tuple[bytes | str | int, ...], expected: bytes, received: bytes, source: str) -> None:
        super().__init__(f"{sent!r}: {source} replied {expected!r}, got {received!r}")
        self.sent, self.expected, self.received, self.source = sent, expected, received, source


# --- chapter 16 on: servers on a data directory ----------------------------------

NO_SAVE_RULES = ("--save", "")




def launch(server: ServerProcess, directory: Path, *args: str) -> ServerProcess:
    """Another server of the chapter under test, on `directory`, with `args`."""
    return ServerProcess(server.command, ("--dir", str(directory), *args), own_server=server.own_server,
                         chapter=server.chapter)  # fmt: skip


def real_redis_on(directory: Path, *args: str) -> ServerProcess:
    """A real redis-server on `directory`, without save rules."""
    return ServerProcess([require_tool("redis-server"), "--dir", str(directory), *NO_SAVE_RULES, *args], own_server=False)


def saved_by(server: ServerProcess, directory: Path, fill: Any) -> dict[bytes, tuple]:
    """Another server of the chapter under test on `directory`: `fill(client)`,
    SAVE, stop. Returns the state it saved."""
    ours = launch(server, directory, *NO_SAVE_RULES)
    with ours.redis() as client:
        fill(client)
        saved = state(client)
        assert client.save()
    ours.stop()
    return saved


def assert_real_redis_loads(directory: Path, expected: dict[bytes, tuple]) -> None:
    """redis-check-rdb accepts `directory`'s dump.rdb, and a real Redis
    started on it holds exactly `expected` (a state())."""
    check = subprocess.run([require_tool("redis-check-rdb"), str(directory / "dump.rdb")], capture_output=True, text=True)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout + check.stderr
    theirs = real_redis_on(directory)
    with theirs.redis() as client:
        assert state(client) == expected
    theirs.stop()


def assert_loads(server: ServerProcess, directory: Path, expected: dict[bytes, tuple], *args: str) -> None:
    """Another server of the chapter under test, started on `directory`
    (with `args`), holds exactly `expected` (a state())."""
    ours = launch(server, directory, *NO_SAVE_RULES, *args)
    with ours.redis() as client:
        assert state(client) == expected
    ours.stop()


def state(client: redis.Redis) -> dict[bytes, tuple]:
    """Every key: its type, value (a list's elements in order, a hash's
    fields and a set's members sorted, a sorted set's members with scores)
    and absolute expiry. Pipelined, a thousand keys at a time."""
    reads = {b"string": lambda pipe, key: pipe.get(key), b"list": lambda pipe, key: pipe.lrange(key, 0, -1),
             b"hash": lambda pipe, key: pipe.hgetall(key), b"set": lambda pipe, key: pipe.smembers(key),
             b"zset": lambda pipe, key: pipe.zrange(key, 0, -1, withscores=True)}  # fmt: skip
    shapes = {b"hash": lambda value: tuple(sorted(value.items())), b"set": lambda value: tuple(sorted(value)),
              b"list": tuple, b"zset": tuple}  # fmt: skip
    result = {}
    names = client.keys(b"*")
    for start in range(0, len(names), 1000):
        batch = names[start : start + 1000]
        pipe = client.pipeline(transaction=False)
        for name in batch:
            pipe.type(name)
        kinds = pipe.execute()
        for name, kind in zip(batch, kinds):
            reads.get(kind, lambda pipe, key: pipe.exists(key))(pipe, name)
            pipe.pexpiretime(name)
        replies = pipe.execute()
        for name, kind, value, expiry in zip(batch, kinds, replies[0::2], replies[1::2]):
            result[name] = (kind, shapes.get(kind, lambda value: value)(value) if kind in reads else (), expiry)
    return result


def assert_same_sequence(pair: tuple[RawClient, RawClient], keys: tuple[str, ...],
                         sequence: list[tuple[bytes | str | int, ...]]) -> None:  # fmt: skip
    """A random command sequence (hypothesis) on both servers, from `keys` deleted."""
    for client in pair:
        client.command("DEL", *keys)
    assert_same_replies(*pair, *sequence)


def assert_same_replies(ours: RawClient, theirs: RawClient, *commands: tuple[bytes | str | int, ...]) -> None:
    """Send each command to both servers; the reply bytes must be identical."""
    for command in commands:
        expected = theirs.command(*command)
        received = ours.command(*command)
        if received != expected:
            raise ReplyMismatch(command, expected, received, "real Redis")


def apply_zset_operations(zset: Any, operations: list[tuple[str, bytes, float]]) -> None:
    """("set", member, score) adds or rescores a member, ("delete", member, _)
    removes it: the unit tests' sequences for chapter 11's ZSet and chapter
    17's flat one."""
    for action, member, score in operations:
        node = zset.lookup(member)
        if action == "set":
            if node is None:
                zset.add(member, score)
            else:
                zset.update(node, score)
        elif node is not None:
            zset.delete(node)


def require_tool(name: str) -> str:
    """The path of an installed program; skipped if missing, but failed in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install redis-server redis-tools redis-sentinel netcat-openbsd strace)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def parse_reply(data: bytes) -> Any:
    """One RESP2 or RESP3 reply, as Python values (an error as the
    exception object, a map as a list of pairs, a verbatim string as its
    text): what a test compares when
    the order of a reply's elements is the server's own (SMEMBERS)."""
    value, end = _parse_at(data, 0)
    assert end == len(data), f"trailing bytes after a reply: {data[end:]!r}"
    return value


def _parse_at(data: bytes, position: int) -> tuple[Any, int]:
    line_end = data.index(b"\r\n", position)
    kind, line, position = data[position : position + 1], data[position + 1 : line_end], line_end + 2
    if kind in (b"+", b","):
        return line, position
    if kind == b"-":
        return ReplyError(line.decode()), position
    if kind == b":":
        return int(line), position
    if kind == b"#":
        return line == b"t", position
    if kind == b"_" or (kind in (b"$", b"*") and line == b"-1"):
        return None, position
    if kind in (b"$", b"="):  # a verbatim string (RESP3's INFO) as its text, without its "txt:" format
        length = int(line)
        text = data[position : position + length]
        return text[4:] if kind == b"=" else text, position + length + 2
    items = []
    for _ in range(int(line) * (2 if kind == b"%" else 1)):
        item, position = _parse_at(data, position)
        items.append(item)
    if kind == b"%":
        return list(zip(items[0::2], items[1::2])), position
    return items, position


class ReplyError(Exception):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplyError) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))
