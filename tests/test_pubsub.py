"""Chapter 19 on: SUBSCRIBE, PSUBSCRIBE, PUBLISH, PUBSUB, keyspace notifications.

Replies and deliveries are compared byte for byte with real Redis's, in
RESP2 and RESP3: confirmations with their counts, messages and pmessages,
RESP2's subscribed context, PING and RESET there, PUBSUB's introspection,
the settings; then the keyspace events of a scripted sequence of writes,
expiries included, event for event. Then what only the chapter's own
server shows: many subscribers in order, a subscriber that never reads
(client-output-buffer-limit), and the bounds on what one client may hold.
"""

from __future__ import annotations

import hashlib
import resource
import socket
import threading
import time
from pathlib import Path

import pytest

from common.chapters import load_chapter_module
from common.resp import encode_command
from tests.support import RawClient, ReplyMismatch, assert_same_replies, launch

pytestmark = [pytest.mark.since(19), pytest.mark.readme("SUBSCRIBE, PUBLISH")]


def assert_same_exchanges(ours: RawClient, theirs: RawClient, *steps: tuple[tuple[str, ...], int]) -> None:
    """Each step is (command, how many replies it gets: one per channel a
    (un)subscription names); every reply must be Redis's, byte for byte."""
    for command, count in steps:
        ours.send(encode_command(*command), _as=command)
        theirs.send(encode_command(*command), _as=command)
        expected, received = theirs.read_replies(count), ours.read_replies(count)
        if received != expected:
            raise ReplyMismatch(command, b"".join(expected), b"".join(received), "real Redis")


def test_subscriptions_match_redis(empty_pair):
    assert_same_exchanges(
        *empty_pair,
        (("UNSUBSCRIBE",), 1), (("PUNSUBSCRIBE",), 1), (("SUNSUBSCRIBE",), 1), (("UNSUBSCRIBE", "never", "was"), 2),
        (("SUBSCRIBE", "a", "b", "a"), 3), (("PSUBSCRIBE", "p*", "p*", "q?"), 3),
        (("UNSUBSCRIBE", "a", "zz"), 2), (("PUNSUBSCRIBE", "p*"), 1), (("SSUBSCRIBE", "s"), 1), (("SUBSCRIBE", "c"), 1),
        (("SUNSUBSCRIBE",), 1), (("UNSUBSCRIBE", "b", "c"), 2), (("PUNSUBSCRIBE",), 1), (("PING",), 1),
        (("SUBSCRIBE",), 1), (("PSUBSCRIBE",), 1), (("SSUBSCRIBE",), 1),
    )  # fmt: skip


@pytest.mark.readme("RESP2's subscribed context, and RESP3's push")
def test_the_subscribed_context_matches_redis(empty_pair):
    """RESP2: only (un)subscribing, PING, QUIT and RESET; RESP3: anything."""
    assert_same_exchanges(
        *empty_pair,
        (("SUBSCRIBE", "a"), 1), (("PING",), 1), (("PING", "hi"), 1), (("PING", "a", "b"), 1), (("GET", "k"), 1),
        (("CONFIG", "GET", "nothing"), 1), (("MULTI",), 1), (("PUBLISH", "a", "x"), 1), (("PUBSUB", "NUMPAT"), 1),
        (("UNSUBSCRIBE",), 1), (("GET", "k"), 1), (("SUBSCRIBE", "r"), 1), (("RESET",), 1), (("GET", "k"), 1),
        (("PUBSUB", "NUMSUB", "r"), 1),
    )  # fmt: skip


PUBLISHED = [("news", "hello"), ("nothing", ""), ("x", "y"), ("other", "\x00\r\nbinary"), ("nobody", "z")]


def test_messages_match_redis(empty_pair, server, real_redis):
    """What a subscriber to channels and patterns receives, and what PUBLISH
    answers: message first, then the matching pattern's pmessage. (Between
    patterns that match one channel, Redis's order is its dict's, a hash
    order: no channel here matches two.)"""
    transcripts = []
    for client, connect in zip(empty_pair, (server.connect, real_redis.connect)):
        with connect() as publisher:
            client.send(encode_command("SUBSCRIBE", "news", "other"))
            client.send(encode_command("PSUBSCRIBE", "n*", "*er", "x"))
            confirmations = client.read_replies(5)
            counts = [publisher.command("PUBLISH", *message) for message in PUBLISHED]
            counts.append(publisher.command("SPUBLISH", "news", "not to channel subscribers"))
            client.send(encode_command("PING", "end"))
            transcripts.append((confirmations, counts, client.read_replies(8)))
    ours, theirs = transcripts
    assert ours == theirs


@pytest.mark.readme("RESP2's subscribed context, and RESP3's push")
def test_a_resp3_subscriber_runs_any_command_and_hears_itself(pair):
    ours, theirs = pair
    assert_same_replies(ours, theirs, ("SUBSCRIBE", "self"), ("GET", "k"), ("RESET",))
    for client in pair:
        assert client.command("HELLO", "3")[:4] == b"%7\r\n"
    assert_same_replies(ours, theirs, ("SUBSCRIBE", "self"), ("SET", "k", "v"), ("GET", "k"), ("PING",))
    # Its own PUBLISH: the push comes first, then the reply, as Redis writes them.
    for client in pair:
        client.send(encode_command("PUBLISH", "self", "echo"))
    assert ours.read_replies(2) == theirs.read_replies(2)
    assert_same_replies(ours, theirs, ("RESET",), ("DEL", "k"))


def test_pubsub_introspection_matches_redis(empty_pair, server, real_redis):
    ours, theirs = empty_pair
    with server.connect() as ours2, real_redis.connect() as theirs2:
        for client in (ours2, theirs2):
            client.send(encode_command("SUBSCRIBE", "chan.1"))
            client.send(encode_command("PSUBSCRIBE", "foo*", "bar*"))
            client.read_replies(3)
        assert_same_replies(
            ours, theirs,
            ("PUBSUB", "NUMSUB"), ("PUBSUB", "NUMSUB", "chan.1", "chan.2", "chan.1"), ("PUBSUB", "NUMPAT"),
            ("PUBSUB", "CHANNELS"), ("PUBSUB", "CHANNELS", "chan.[0-9]"), ("PUBSUB", "CHANNELS", "x*"),
            ("PUBSUB", "SHARDCHANNELS"), ("PUBSUB", "SHARDNUMSUB", "chan.1"), ("PUBSUB", "HELP"),
            ("PUBSUB", "NUMPAT", "x"), ("PUBSUB", "CHANNELS", "a", "b"), ("PUBSUB", "NOSUCH"), ("PUBSUB",),
            ("PUBLISH", "chan.1"), ("PUBLISH", "chan.1", "m"), ("PUBLISH", "foo.bar", "m"),
        )  # fmt: skip
    # The subscribers are gone with their connections.
    time.sleep(0.1)
    assert_same_replies(ours, theirs, ("PUBSUB", "NUMSUB", "chan.1"), ("PUBSUB", "NUMPAT"), ("PUBSUB", "CHANNELS"))


@pytest.mark.readme("A subscriber that does not read")
def test_settings_match_redis(empty_pair):
    try:
        assert_same_replies(
            *empty_pair,
            ("CONFIG", "GET", "notify-keyspace-events"), ("CONFIG", "SET", "notify-keyspace-events", "KEA"),
            ("CONFIG", "GET", "notify-keyspace-events"), ("CONFIG", "SET", "notify-keyspace-events", "$lshzxeKE"),
            ("CONFIG", "GET", "notify-keyspace-events"), ("CONFIG", "SET", "notify-keyspace-events", "An"),
            ("CONFIG", "GET", "notify-keyspace-events"), ("CONFIG", "SET", "notify-keyspace-events", "gXK"),
            ("CONFIG", "GET", "notify-keyspace-events"), ("CONFIG", "SET", "notify-keyspace-events", ""),
            ("CONFIG", "GET", "client-output-buffer-limit"),
            ("CONFIG", "SET", "client-output-buffer-limit", "replica 1mb 2k 3 pubsub 64mb 8mb 60"),
            ("CONFIG", "GET", "client-output-buffer-limit"),
            ("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 2mb"),
            ("CONFIG", "SET", "client-output-buffer-limit", "master 1 1 1"),
            ("CONFIG", "SET", "client-output-buffer-limit", "pubsub x 1 1"),
            ("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 1 -1"),
            ("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60"),
            ("CONFIG", "GET", "client-output-buffer-limit"),
        )  # fmt: skip
    finally:
        for client in empty_pair:
            client.command("CONFIG", "SET", "notify-keyspace-events", "")


# --- keyspace notifications ---------------------------------------------------------------------

# Every write command the chapter has, in the cases where its events differ.
SCRIPT = [
    ("SET", "s", "1"), ("SET", "s", "2", "EX", "100"), ("SET", "s", "2", "NX"), ("SET", "s", "3", "XX", "GET"),
    ("SETNX", "s", "x"), ("SETNX", "n", "x"), ("SETEX", "e", "100", "v"), ("PSETEX", "p", "100000", "v"),
    ("GETSET", "s", "3"), ("GETDEL", "n"), ("GETDEL", "n"), ("GETEX", "s", "PERSIST"), ("GETEX", "e", "PERSIST"),
    ("GETEX", "e", "EX", "50"), ("GETEX", "e", "PXAT", "1"), ("APPEND", "a", "x"), ("APPEND", "a", "y"),
    ("SETRANGE", "a", "5", "z"), ("SETRANGE", "a", "1", ""), ("SETRANGE", "none", "1", ""), ("INCR", "i"),
    ("DECRBY", "i", "5"), ("INCR", "s2"), ("INCRBYFLOAT", "f", "1.5"), ("MSET", "m1", "a", "m2", "b"),
    ("MSETNX", "m1", "x", "m3", "y"), ("MSETNX", "m4", "x", "m5", "y"), ("EXPIRE", "m1", "100"),
    ("EXPIRE", "m1", "100", "NX"), ("PEXPIREAT", "m2", "1"), ("PERSIST", "m1"), ("PERSIST", "m1"),
    ("DEL", "m1", "nothing", "m3"), ("UNLINK", "m4"), ("RENAME", "m5", "r"), ("RENAME", "r", "r"), ("SET", "r2", "x"),
    ("RENAME", "r", "r2"), ("RENAMENX", "r2", "s"), ("COPY", "s", "c"), ("COPY", "s", "c", "REPLACE"),
    ("ZADD", "z", "1", "a", "2", "b"), ("ZADD", "z", "1", "a"), ("ZADD", "z", "5", "a"), ("ZADD", "z", "XX", "1", "new"),
    ("ZADD", "zz", "XX", "1", "new"), ("ZADD", "z", "INCR", "1", "a"), ("ZINCRBY", "z", "0", "a"),
    ("ZINCRBY", "z", "1", "c"), ("ZREM", "z", "nope"), ("ZREM", "z", "c"), ("ZPOPMIN", "z"), ("ZPOPMIN", "z", "0"),
    ("ZADD", "z2", "1", "x", "2", "y", "3", "w"), ("ZPOPMAX", "z2", "5"), ("ZADD", "z3", "1", "x", "2", "y", "3", "w"),
    ("ZREMRANGEBYRANK", "z3", "0", "0"), ("ZREMRANGEBYSCORE", "z3", "5", "9"), ("ZREMRANGEBYSCORE", "z3", "0", "9"),
    ("ZADD", "z4", "1", "a", "2", "b"), ("ZREMRANGEBYLEX", "z4", "-", "+"), ("ZADD", "u1", "1", "a"),
    ("ZUNIONSTORE", "u", "1", "u1"), ("ZUNIONSTORE", "u", "1", "u1"), ("ZINTERSTORE", "u", "2", "u1", "nothing"),
    ("ZINTERSTORE", "u", "2", "u1", "nothing"), ("ZDIFFSTORE", "d", "1", "u1"), ("ZRANGESTORE", "rs", "u1", "0", "-1"),
    ("ZRANGESTORE", "rs", "u1", "5", "9"), ("ZMPOP", "1", "u1", "MIN"), ("ZADD", "b", "1", "q"), ("BZPOPMIN", "b", "0"),
    ("MULTI",), ("SET", "t", "1"), ("ZADD", "t2", "1", "a"), ("EXEC",), ("SET", "soon", "1", "PX", "30"), ("FLUSHALL",),
]  # fmt: skip


def keyspace_events(server_process, script: list[tuple[str, ...]] | None = None) -> list[bytes]:
    """The events a subscriber to every channel hears while `script` (SCRIPT) runs,
    then while one key expires in the background and another on access."""
    with server_process.connect() as client, server_process.connect() as subscriber:
        client.command("FLUSHALL")
        assert client.command("CONFIG", "SET", "notify-keyspace-events", "KEAn") == b"+OK\r\n"
        try:
            subscriber.command("PSUBSCRIBE", "*")
            for command in script or SCRIPT:
                client.command(*command)
            time.sleep(0.3)  # "soon" expires: the active expiry deletes it
            client.command("SET", "lazy", "1", "PX", "1")
            time.sleep(0.01)
            client.command("GET", "lazy")  # expired: deleted on access
            client.command("SET", "end", "1")
            events = []
            while not events or not events[-1].endswith(b"__keyevent@0__:set\r\n$3\r\nend\r\n"):
                events.append(subscriber.read_reply())
            return events
        finally:
            client.command("CONFIG", "SET", "notify-keyspace-events", "")


@pytest.mark.readme("Keyspace notifications")
def test_keyspace_events_match_redis_event_for_event(server, real_redis):
    ours, theirs = keyspace_events(server), keyspace_events(real_redis)
    assert len(ours) > 150
    assert ours == theirs


@pytest.mark.readme("Keyspace notifications")
def test_masked_classes_publish_nothing(server):
    with server.connect() as client, server.connect() as subscriber:
        subscriber.command("PSUBSCRIBE", "__key*")
        try:
            client.command("CONFIG", "SET", "notify-keyspace-events", "Kz")  # sorted sets, keyspace channel only
            client.command("SET", "masked", "1")
            client.command("ZADD", "shown", "1", "a")
            assert subscriber.read_reply() == encode_pmessage(b"__key*", b"__keyspace@0__:shown", b"zadd")
            client.command("CONFIG", "SET", "notify-keyspace-events", "")
            client.command("ZADD", "shown", "2", "b")
            subscriber.send(encode_command("PING", "done"))
            assert subscriber.read_reply() == b"*2\r\n$4\r\npong\r\n$4\r\ndone\r\n"
        finally:
            client.command("CONFIG", "SET", "notify-keyspace-events", "")


def encode_pmessage(pattern: bytes, channel: bytes, message: bytes) -> bytes:
    return b"*4\r\n$8\r\npmessage\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in (pattern, channel, message))


# --- many subscribers, and one that does not read ---------------------------------------------


def subscribe_raw(port: int, command: tuple[str, ...], receive_buffer: int | None = None) -> socket.socket:
    """A subscriber on a plain socket, its confirmations read."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(30)
    client = RawClient(sock)
    client.send(encode_command(*command))
    client.read_replies(len(command) - 1)
    return sock


def test_every_subscriber_gets_every_message_in_order(server):
    """1 publisher, 1,000 subscribers (100 of them by pattern), 1,000
    messages: the fan-out bench's own run, which checks every subscriber's
    stream byte for byte (and raises on any difference)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    fanout_bench = load_chapter_module(19, "fanout_bench")
    assert fanout_bench.fan_out(server.port, subscribers=1000, messages=1000) > 0


class Reader(threading.Thread):
    """Reads everything a subscriber receives, hashing it as it goes."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock, self.digest, self.received = sock, hashlib.sha256(), 0

    def run(self) -> None:
        while chunk := self.sock.recv(1 << 20):
            self.digest.update(chunk)
            self.received += len(chunk)


@pytest.mark.heavy
@pytest.mark.readme("A subscriber that does not read")
def test_a_subscriber_that_never_reads_is_disconnected_at_the_limit(server, tmp_path: Path):
    """300 MB published to a channel one subscriber never reads: the hard
    limit (32mb) disconnects it, the server stays under 100 MB, and the two
    subscribers that read get every byte, in order."""
    process = launch(server, tmp_path)
    message = bytes(range(256)) * 4096  # 1 MiB
    total = 300
    stalled = subscribe_raw(process.port, ("SUBSCRIBE", "firehose"), receive_buffer=4096)
    readers = [Reader(subscribe_raw(process.port, command)) for command in
               (("SUBSCRIBE", "firehose"), ("PSUBSCRIBE", "fire*"))]  # fmt: skip
    for reader in readers:
        reader.start()
    with process.connect() as publisher:
        receivers = [int(publisher.command("PUBLISH", "firehose", message)[1:-2]) for _ in range(total)]
        assert receivers[0] == 3 and receivers[-1] == 2, "the non-reader was not disconnected"
        peak = process.memory("VmHWM")
        info = publisher.command("INFO", "stats").decode()
        assert "client_output_buffer_limit_disconnections:1" in info
    stalled.settimeout(10)
    drained = 0
    try:
        while chunk := stalled.recv(1 << 20):  # what the kernel held before the server gave up on it
            drained += len(chunk)
    except ConnectionResetError:
        pass
    assert drained < 64 * 1024 * 1024
    plain = hashlib.sha256()
    pattern = hashlib.sha256()
    for _ in range(total):
        plain.update(b"*3\r\n$7\r\nmessage\r\n$8\r\nfirehose\r\n$%d\r\n%s\r\n" % (len(message), message))
        pattern.update(encode_pmessage(b"fire*", b"firehose", message))
    deadline = time.monotonic() + 60
    while any(reader.received < total * len(message) for reader in readers) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)  # the last bytes
    assert [reader.digest.hexdigest() for reader in readers] == [plain.hexdigest(), pattern.hexdigest()]
    assert peak < 100 * 1024 * 1024, f"the server's peak RSS was {peak >> 20} MB"
    process.stop()


@pytest.mark.readme("A subscriber that does not read")
def test_the_soft_limit_disconnects_only_after_its_seconds(server, tmp_path: Path):
    process = launch(server, tmp_path, "--client-output-buffer-limit", "pubsub 0 1mb 1")
    with process.connect() as publisher:
        stalled = subscribe_raw(process.port, ("SUBSCRIBE", "slow"), receive_buffer=4096)
        block = b"x" * (1 << 20)
        for _ in range(16):  # well past what the kernel's buffers hold: the server's buffer is past 1mb
            assert publisher.command("PUBLISH", "slow", block) == b":1\r\n"
        assert publisher.command("PUBLISH", "slow", "still under its second") == b":1\r\n"
        time.sleep(2.2)
        publisher.command("PUBLISH", "slow", "past its second")  # the check comes with output, as in Redis
        assert publisher.command("PUBSUB", "NUMSUB", "slow") == b"*2\r\n$4\r\nslow\r\n:0\r\n"
    stalled.close()
    process.stop()


@pytest.mark.readme("A subscriber that does not read")
def test_a_normal_client_limit_closes_a_client_that_does_not_read(server, tmp_path: Path):
    """Chapter 14 already stops executing a client's requests past 1 MB of
    unsent replies; a lower limit for normal clients closes it instead, as Redis."""
    process = launch(server, tmp_path, "--client-output-buffer-limit", "normal 512kb 0 0")
    with process.connect() as client:
        client.command("SET", "big", b"v" * 100_000)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", process.port))
    sock.sendall(encode_command("GET", "big") * 1000)  # 100 MB of replies it will not read
    time.sleep(1)
    with process.connect() as client:
        assert b"client_output_buffer_limit_disconnections:1" in client.command("INFO", "stats")
        assert client.command("PING") == b"+PONG\r\n"
    sock.close()
    process.stop()


@pytest.mark.readme("What one client may hold")
def test_subscriptions_count_against_the_client_budget(server, tmp_path: Path):
    process = launch(server, tmp_path, "--client-query-buffer-limit", "1mb")
    with process.connect() as client:
        names = [b"channel-%06d" % n for n in range(1000)]
        refused = None
        for start in range(0, 10_000, 1000):
            client.send(encode_command("SUBSCRIBE", *[b"%d-%s" % (start, name) for name in names]))
            for _ in names:
                reply = client.read_reply()
                if reply.startswith(b"-"):
                    refused = reply
                    break
            if refused:
                break
        assert refused == b"-ERR too many subscriptions for this client: past client-query-buffer-limit\r\n"
    process.stop()


@pytest.mark.readme("Patterns")
def test_a_pathological_pattern_costs_pattern_times_channel(server):
    """Chapter 09's matcher: a pattern of many stars against a long channel
    that almost matches answers at once (a backtracking matcher would not)."""
    with server.connect() as subscriber, server.connect() as publisher:
        subscriber.command("PSUBSCRIBE", "a*" * 500 + "b")
        assert publisher.command("PUBLISH", "a" * 100_000, "m") == b":0\r\n"
        assert publisher.command("PUBLISH", "a" * 1000 + "b", "m") == b":1\r\n"


def test_the_idle_timeout_spares_a_subscriber(server):
    """timeout 1: a subscriber silent for 2.5 s is not idle (as Redis): the message reaches it."""
    with server.connect() as admin, server.connect() as subscriber:
        previous = admin.command("CONFIG", "GET", "timeout").split(b"\r\n")[-2]
        try:
            assert admin.command("CONFIG", "SET", "timeout", "1") == b"+OK\r\n"
            subscriber.command("SUBSCRIBE", "idle:channel")
            time.sleep(2.5)
            with server.connect() as publisher:
                assert publisher.command("PUBLISH", "idle:channel", "still here") == b":1\r\n"
            assert subscriber.read_reply() == b"*3\r\n$7\r\nmessage\r\n$12\r\nidle:channel\r\n$10\r\nstill here\r\n"
        finally:
            with server.connect() as restore:
                restore.command("CONFIG", "SET", "timeout", previous)
