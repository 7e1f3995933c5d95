"""Chapter 23 on: the fast path keeps every effect of the full one.

A request for GET, SET or PING from a plain client skips the hooks the
chapters before put around every command; what each hook would have done
is done inline, once per batch, or known to be nothing (chapter 23's
SKIPPED). Every other test runs on chapter 23 too, one request at a time,
so they go through the fast path whenever it applies (WATCH, MULTI,
MONITOR, the AOF, replication, ACL users: each turns it off). These tests
add what only pipelines show, compared with real Redis: replies and
statistics of a pipeline that mixes fast requests with requests that
change the client's state between them; a monitor and the slow log
seeing fast requests; CLIENT LIST's cmd= after them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.resp import encode_command
from tests.support import ROOT, RawClient, ReplyMismatch
from tests.test_client_commands import info_fields

pytestmark = [pytest.mark.since(23), pytest.mark.readme("The fast path")]

END = (b"ECHO", b"end-of-pipeline")


def run_pipeline(client: RawClient, commands: list[tuple[bytes | str, ...]]) -> list[bytes]:
    """Send `commands` in one write, then an ECHO; the replies that came
    before the ECHO's (a muted client gets fewer than it sent)."""
    client.send(b"".join(encode_command(*command) for command in [*commands, END]))
    replies = []
    while (reply := client.read_reply()) != b"$15\r\nend-of-pipeline\r\n":
        replies.append(reply)
    return replies


def stats(client: RawClient) -> dict[str, str]:
    """INFO's commandstats (without times, nor CLIENT and CONFIG), errorstats and keyspace hits and misses."""
    found = {}
    for section in ("commandstats", "errorstats", "stats"):
        for fields in info_fields(client, section).values():
            for name, value in fields.items():
                if name.startswith(("cmdstat_client", "cmdstat_config")):
                    continue  # counted per subcommand in Redis (cmdstat_client|reply), per command here
                if name.startswith("cmdstat_"):
                    counts = dict(item.split("=") for item in value.split(","))
                    found[name] = ",".join(f"{count}={counts[count]}" for count in ("calls", "rejected_calls", "failed_calls"))
                elif name.startswith("errorstat_") or name in ("keyspace_hits", "keyspace_misses", "total_error_replies"):
                    found[name] = value
    return found


# Fast requests between requests that change what the client may skip:
# errors, a transaction, a muted reply, options, another protocol's nulls.
MIXED = [
    ("SET", "a", "1"), ("GET", "a"), ("get", "a"), ("GET", "missing"), ("PING",), ("ZADD", "z", "1", "m"),
    ("GET", "z"), ("SET", "a"), ("GET",), ("PING", "with", "two"), ("NOSUCH", "x"),
    ("SET", "b", "2", "NX"), ("GET", "b"), ("SET", "b", "3", "XX"), ("INCR", "a"), ("GET", "a"),
    ("MULTI",), ("SET", "c", "3"), ("GET", "c"), ("PING",), ("GET", "z"), ("EXEC",), ("GET", "c"),
    ("MULTI",), ("GET", "c"), ("NOSUCH",), ("EXEC",), ("SET", "d", "4"),
    ("CLIENT", "REPLY", "SKIP"), ("GET", "a"), ("SET", "e", "5"), ("GET", "e"),
    ("CLIENT", "REPLY", "OFF"), ("SET", "f", "6"), ("GET", "f"), ("CLIENT", "REPLY", "ON"), ("GET", "f"),
    ("SET", "g", "x" * 70_000), ("GET", "g"), ("SET", "h", "with\r\nnewlines"), ("GET", "h"), ("DEL", "g"),
    ("PING",), ("SET", "t", "1", "PX", "100000"), ("GET", "t"),
]  # fmt: skip


def test_a_pipeline_mixing_fast_and_full_requests_matches_redis(empty_pair):
    ours, theirs = empty_pair
    for client in empty_pair:
        assert client.command("CONFIG", "RESETSTAT") == b"+OK\r\n"
    expected, received = run_pipeline(theirs, MIXED), run_pipeline(ours, MIXED)
    for command, want, got in zip(MIXED, expected, received):
        if want != got:
            raise ReplyMismatch(command, want, got, "real Redis")
    assert len(received) == len(expected)
    assert stats(ours) == stats(theirs)


def test_fast_writes_count_toward_the_save_rules_in_order(empty_pair):
    """The fast path counts its writes per batch: those before a SAVE in
    the same pipeline are saved by it, those after it are not."""
    commands = [("SET", "a", "1"), ("SET", "b", "2"), ("SAVE",), ("SET", "c", "3"), ("GET", "c"), ("SET", "d", "4")]
    changes = []
    for client in empty_pair:
        assert run_pipeline(client, commands)[2] == b"+OK\r\n"
        changes.append(info_fields(client, "persistence")["Persistence"]["rdb_changes_since_last_save"])
    assert changes[0] == changes[1] == "2"


def test_a_subscriber_and_refused_writes_match_redis(empty_pair):
    """What turns the fast path off between two requests of one pipeline:
    a RESP2 subscribed context (GET refused, PING answered as a push),
    even without the pub/sub class's output limit, and min-replicas-to-write
    without replicas (SET refused)."""
    commands = [
        ("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"),
        ("CONFIG", "SET", "min-replicas-to-write", "1"), ("SET", "x", "1"), ("GET", "x"),
        ("CONFIG", "SET", "min-replicas-to-write", "0"), ("SET", "x", "2"),
        ("SUBSCRIBE", "channel"), ("GET", "x"), ("PING",), ("SET", "x", "3"), ("UNSUBSCRIBE",), ("GET", "x"),
        ("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60"),
    ]  # fmt: skip
    ours, theirs = empty_pair
    expected, received = run_pipeline(theirs, commands), run_pipeline(ours, commands)
    assert received == expected


def test_a_batch_stopped_by_a_full_output_resumes_in_order(server):
    """Thirty GETs of 100 KB in one write pass the 1 MB of output after
    which a client's requests wait (chapter 06's MAX_OUTPUT): the batch is
    handed back to the parser midway and resumes as the replies drain."""
    value = b"v" * 100_000
    with server.connect() as client:
        assert client.command("SET", "big", value) == b"+OK\r\n"
        commands = [("GET", "big"), ("SET", "after", "x"), ("GET", "after")] * 30 + [("PING",)]
        replies = run_pipeline(client, commands)
    assert replies == [b"$100000\r\n" + value + b"\r\n", b"+OK\r\n", b"$1\r\nx\r\n"] * 30 + [b"+PONG\r\n"]


def test_a_monitor_sees_fast_requests(server):
    with server.connect() as watcher, server.connect() as client:
        assert watcher.command("MONITOR") == b"+OK\r\n"
        assert run_pipeline(client, [("SET", "seen", "1"), ("GET", "seen")]) == [b"+OK\r\n", b"$1\r\n1\r\n"]
        lines = [watcher.read_reply() for _ in range(3)]
        assert [line.split(b"] ", 1)[1] for line in lines] == [b'"SET" "seen" "1"\r\n', b'"GET" "seen"\r\n',
                                                               b'"ECHO" "end-of-pipeline"\r\n']  # fmt: skip


def test_the_slow_log_sees_fast_requests(server):
    with server.connect() as client:
        assert client.command("CONFIG", "SET", "slowlog-log-slower-than", "0") == b"+OK\r\n"
        client.command("SLOWLOG", "RESET")
        run_pipeline(client, [("SET", "slow", "1"), ("GET", "slow")])
        client.command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        logged = client.command("SLOWLOG", "GET", "4")
        assert b"$3\r\nGET\r\n$4\r\nslow\r\n" in logged and b"$3\r\nSET\r\n$4\r\nslow\r\n$1\r\n1\r\n" in logged


def test_client_list_shows_the_last_fast_command(server, real_redis):
    for target in (server, real_redis):
        with target.connect() as client, target.connect() as observer:
            client.command("CLIENT", "SETNAME", "piped")
            run_pipeline(client, [("SET", "k", "v"), ("GET", "k")])
            client.send(encode_command("GET", "k"))
            assert client.read_reply() == b"$1\r\nv\r\n"
            line = next(line for line in observer.command("CLIENT", "LIST").split(b"\n") if b"name=piped" in line)
            assert b" cmd=get " in line, (target, line)


def run_on_a_fresh_chapter23(body: str) -> str:
    """Run `body` in a new Python process where chapter 23's server is
    loaded with its commands added (as `chapter23`, and its `chapter14`),
    and nothing else has touched it; what it printed."""
    preamble = (
        "import sys\nsys.path.insert(0, sys.argv[1])\nfrom common.chapters import load_chapter\n"
        "chapter23 = load_chapter(23)\nchapter23.add_commands()\nchapter14 = chapter23.chapter14\n"
    )
    result = subprocess.run([sys.executable, "-c", preamble + body, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_hook_around_a_command_is_accounted_for():
    """A hook added to chapters 14-22 must say why the fast path may skip it (chapter 23's SKIPPED)."""
    output = run_on_a_fresh_chapter23("""
commands = chapter23.COMMANDS
registered = {name: getattr(commands, name) for name in chapter23.SKIPPED if hasattr(commands, name)}
registered["command_processed_tasks"] = chapter14.command_processed_tasks
registered["keyspace_listeners"] = chapter14.keyspace_listeners
for kind, hooks in registered.items():
    names = {f"{hook.__module__}.{hook.__qualname__}" for hook in hooks}
    if names != set(chapter23.SKIPPED[kind]):
        print(kind, "registered:", sorted(names - set(chapter23.SKIPPED[kind])), "gone:", sorted(set(chapter23.SKIPPED[kind]) - names))
""")
    assert output == "", "hooks the fast path does not account for:\n" + output


def test_plain_get_and_set_run_inline():
    """A plain GET or SET is answered by process_input itself, on the
    table (value_of, store), not by chapter 14's command functions: with
    those made to fail, a pipeline of them is still answered."""
    output = run_on_a_fresh_chapter23("""
import select, socket
from common.resp import encode_command
def not_inline(args, out):
    raise AssertionError("a command function ran")
for name in (b"get", b"set"):
    chapter14.COMMANDS.commands[name].function = not_inline
listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname())
conn = chapter14.add_client(listener.accept()[0], select.poll(), {})
conn.parser.feed(b"".join(encode_command(*request) for request in [("SET", "k", "v"), ("get", "k"), ("GET", "none")] * 8))
chapter23.process_input(conn)
print(bytes(conn.outgoing) == b"+OK\\r\\n$1\\r\\nv\\r\\n$-1\\r\\n" * 8)
""")
    assert output == "True\n"


def test_the_keyspace_keeps_no_object_per_key():
    """Chapter 23's keyspace (compact_keyspace.py): ten thousand keys set
    through chapter 14's own SET leave no object for the garbage collector
    to track (chapter 08's table keeps an Entry per key)."""
    output = run_on_a_fresh_chapter23("""
import gc
from common.resp3 import ReplyBuffer
gc.collect()
before = len(gc.get_objects())
for number in range(10_000):
    chapter14.set_([b"key:%d" % number, b"x"], ReplyBuffer())
gc.collect()
print(len(chapter14.keyspace), len(gc.get_objects()) - before)
""")
    keys, tracked = map(int, output.split())
    assert keys == 10_000 and tracked < 100, f"{tracked} more tracked objects for {keys} keys"
