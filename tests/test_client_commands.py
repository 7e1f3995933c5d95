"""Chapter 21 on: CLIENT, MONITOR, SLOWLOG and COMMAND GETKEYS against real Redis.

CLIENT LIST is compared field by field with real Redis's for the same
client in the same state; fields that differ by nature (ids, ports, ages,
buffer sizes) are left out by name. Errors and the replies that do not
depend on the server are compared byte for byte.
"""

from __future__ import annotations

import re
import socket
import struct
import time

import pytest

from common.resp import encode_command
from tests.support import RawClient, assert_same_replies, parse_reply

pytestmark = pytest.mark.since(21)

# Fields that differ by nature between two servers: who and when, and how each allocates its buffers.
BY_NATURE = {"id", "addr", "laddr", "fd", "age", "idle", "qbuf", "qbuf-free", "rbs", "rbp", "tot-mem", "argv-mem"}


def fields_of(line: bytes) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.decode().split(" "))


def line_named(client: RawClient, name: str) -> dict[str, str]:
    """The CLIENT LIST line of the client named `name`, as fields."""
    text = parse_reply(client.command("CLIENT", "LIST"))
    lines = [fields_of(line) for line in text.split(b"\n") if line]
    named = [fields for fields in lines if fields.get("name") == name]
    assert named, f"no client named {name!r} in CLIENT LIST (after CLIENT SETNAME {name}):\n{text.decode()}"
    return named[0]


def comparable(fields: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in fields.items() if name not in BY_NATURE}


@pytest.mark.readme("CLIENT LIST")
def test_client_list_has_redis_fields_in_redis_order_with_redis_values(server, real_redis):
    """The same clients in the same states on both servers: an idle named
    one, a subscriber, one inside MULTI with two commands queued and its
    watched key touched, one blocked in BLPOP, one speaking RESP3."""
    seen = []
    for process in (server, real_redis):
        with process.connect() as observer, process.connect() as idle, process.connect() as subscriber, \
                process.connect() as queueing, process.connect() as blocked, process.connect() as resp3:  # fmt: skip
            observer.command("DEL", "watched", "nothing")
            for client, name in ((idle, "idle"), (subscriber, "subscriber"), (queueing, "queueing"),
                                 (blocked, "blocked"), (resp3, "resp3")):  # fmt: skip
                assert client.command("CLIENT", "SETNAME", name) == b"+OK\r\n"
            subscriber.command("SUBSCRIBE", "a", "b")
            subscriber.read_reply()
            subscriber.command("PSUBSCRIBE", "p*")
            queueing.command("WATCH", "watched")
            queueing.command("MULTI")
            queueing.command("SET", "x", "1")
            queueing.command("GET", "x")
            observer.command("SET", "watched", "changed")
            blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$7\r\nnothing\r\n$1\r\n0\r\n")
            resp3.command("HELLO", "3")
            time.sleep(0.1)
            states = {name: comparable(line_named(observer, name))
                      for name in ("idle", "subscriber", "queueing", "blocked", "resp3")}  # fmt: skip
            order = list(line_named(observer, "idle"))
            seen.append((states, order))
    (ours, our_order), (theirs, their_order) = seen
    assert our_order == their_order
    assert ours == theirs


@pytest.mark.readme("CLIENT LIST")
def test_client_commands_edge_cases(pair):
    assert_same_replies(
        *pair,
        ("CLIENT", "SETNAME", "edge"), ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", "a b"), ("CLIENT", "SETNAME"), ("CLIENT", "ID", "x"), ("CLIENT", "NOPE"),
        ("CLIENT", "LIST", "TYPE", "foo"), ("CLIENT", "LIST", "ID", "x"), ("CLIENT", "LIST", "bogus"),
        ("CLIENT", "LIST", "ID", "999999"), ("CLIENT", "LIST", "TYPE", "pubsub"),
        ("CLIENT", "KILL", "1.2.3.4:5"), ("CLIENT", "KILL", "ID", "0"), ("CLIENT", "KILL", "ID", "999999"),
        ("CLIENT", "KILL", "TYPE", "foo"), ("CLIENT", "KILL", "USER", "nobody"), ("CLIENT", "KILL", "SKIPME", "maybe"),
        ("CLIENT", "KILL", "ADDR"), ("CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME"), ("CLIENT", "KILL", "FOO", "x"),
        ("CLIENT", "REPLY", "maybe"), ("CLIENT", "NO-EVICT", "maybe"), ("CLIENT", "NO-EVICT", "on"),
        ("CLIENT", "NO-EVICT", "off"), ("CLIENT", "PAUSE", "x"), ("CLIENT", "PAUSE", "-1"),
        ("CLIENT", "PAUSE", "10", "READ"), ("CLIENT", "UNBLOCK", "999999"), ("CLIENT", "UNBLOCK", "1", "x"),
        ("CLIENT", "UNBLOCK", "x"), ("CLIENT", "UNPAUSE"), ("CLIENT", "UNPAUSE", "x"), ("CLIENT", "HELP", "x"),
        ("SLOWLOG", "NOPE"), ("SLOWLOG", "LEN", "x"), ("SLOWLOG", "GET", "-2"), ("SLOWLOG", "GET", "x"),
        ("SLOWLOG", "RESET"), ("SLOWLOG", "GET", "-1"),
        ("COMMAND", "GETKEYS", "SET", "k", "v"), ("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"),
        ("COMMAND", "GETKEYS", "PING"),
        ("COMMAND", "GETKEYS", "NOPE"), ("COMMAND", "GETKEYS", "GET"), ("COMMAND", "GETKEYS", "LMPOP", "2", "a", "b", "LEFT"),
        ("COMMAND", "GETKEYS", "BLMOVE", "s", "d", "LEFT", "RIGHT", "0"),
    )  # fmt: skip


@pytest.mark.readme("Acting on clients")
def test_client_kill_filters_close_the_right_connections(server):
    with server.connect() as killer, server.connect() as victim, server.connect() as bystander:
        victim.command("CLIENT", "SETNAME", "victim")
        victim_id = int(parse_reply(victim.command("CLIENT", "ID")))
        assert killer.command("CLIENT", "KILL", "ID", str(victim_id)) == b":1\r\n"
        assert victim.is_closed_by_server(2.0)
        assert bystander.command("PING") == b"+PONG\r\n"
        me = fields_of(parse_reply(killer.command("CLIENT", "INFO")).strip())
        assert killer.command("CLIENT", "KILL", "ADDR", me["addr"]) == b":0\r\n"  # SKIPME yes by default
        assert killer.command("CLIENT", "KILL", "ADDR", me["addr"], "SKIPME", "no") == b":1\r\n"
        assert killer.is_closed_by_server(2.0)
        bystander_addr = fields_of(parse_reply(bystander.command("CLIENT", "INFO")).strip())["addr"]
        with server.connect() as other:
            assert other.command("CLIENT", "KILL", bystander_addr) == b"+OK\r\n"  # the old form
            assert bystander.is_closed_by_server(2.0)
            assert other.command("CLIENT", "KILL", "MAXAGE", "3600") == b":0\r\n"  # nobody that old


@pytest.mark.readme("Acting on clients")
@pytest.mark.parametrize("target", ["ours", "redis"])
def test_client_reply_off_and_skip(server, real_redis, target):
    process = server if target == "ours" else real_redis
    with process.connect() as client:
        client.send(b"CLIENT REPLY OFF\r\nSET r 1\r\nNOPE\r\nGET r\r\nCLIENT REPLY ON\r\nGET r\r\n"
                    b"CLIENT REPLY SKIP\r\nGET r\r\nINCR r\r\nMULTI\r\nINCR r\r\nEXEC\r\n")  # fmt: skip
        replies = [client.read_reply() for _ in range(6)]
        assert replies == [b"+OK\r\n", b"$1\r\n1\r\n", b":2\r\n", b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n:3\r\n"]


@pytest.mark.readme("Acting on clients")
def test_client_pause_holds_writes_then_runs_them_in_order(server):
    with server.connect() as admin, server.connect() as writer, server.connect() as reader:
        admin.command("SET", "paused", "0")
        assert admin.command("CLIENT", "PAUSE", "400", "WRITE") == b"+OK\r\n"
        started = time.monotonic()
        writer.send(b"INCR paused\r\nGET paused\r\n")
        assert reader.command("GET", "paused") == b"$1\r\n0\r\n"  # reads go on during a WRITE pause
        assert writer.read_reply() == b":1\r\n"
        assert time.monotonic() - started >= 0.35
        assert writer.read_reply() == b"$1\r\n1\r\n"  # what it sent meanwhile ran after, in order
        # ALL holds every command, reads too.
        admin.command("CLIENT", "PAUSE", "300", "ALL")
        started = time.monotonic()
        assert reader.command("GET", "paused") == b"$1\r\n1\r\n"
        assert time.monotonic() - started >= 0.25
        # UNPAUSE (not a write) ends a WRITE pause at once.
        admin.command("CLIENT", "PAUSE", "10000", "WRITE")
        started = time.monotonic()
        writer.send(b"INCR paused\r\n")
        time.sleep(0.1)
        assert admin.command("CLIENT", "UNPAUSE") == b"+OK\r\n"
        assert writer.read_reply() == b":2\r\n"
        assert time.monotonic() - started < 2


@pytest.mark.readme("Acting on clients")
def test_client_unblock_answers_the_blocked_client(server):
    with server.connect() as blocked, server.connect() as admin:
        blocked_id = parse_reply(blocked.command("CLIENT", "ID"))
        blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$6\r\nnolist\r\n$1\r\n0\r\n")
        time.sleep(0.1)
        assert admin.command("CLIENT", "UNBLOCK", str(blocked_id)) == b":1\r\n"
        assert blocked.read_reply() == b"*-1\r\n"
        blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$6\r\nnolist\r\n$1\r\n0\r\n")
        time.sleep(0.1)
        assert admin.command("CLIENT", "UNBLOCK", str(blocked_id), "ERROR") == b":1\r\n"
        assert blocked.read_reply() == b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
        assert admin.command("CLIENT", "UNBLOCK", str(blocked_id)) == b":0\r\n"


MONITOR_LINE = re.compile(rb"^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] (.*)\r\n$")


def monitored(process, commands: list[tuple[str, ...]]) -> list[bytes]:
    """What a monitor sees while another client runs `commands` (the part after the address)."""
    with process.connect() as watcher, process.connect() as client:
        assert watcher.command("MONITOR") == b"+OK\r\n"
        for command in commands:
            client.command(*command)
        client.command("ECHO", "done")
        lines = []
        while not lines or lines[-1] != b'"ECHO" "done"':
            match = MONITOR_LINE.match(watcher.read_reply())
            assert match is not None
            lines.append(match.group(1))
        return lines


@pytest.mark.readme("MONITOR and SLOWLOG")
def test_monitor_shows_what_redis_shows(server, real_redis):
    commands = [("SET", "m", 'quote " and \\ and \n'), ("GET", "m"), ("CONFIG", "GET", "maxclients"),
                ("AUTH", "secret"), ("AUTH", "default", "secret"), ("HELLO", "2", "AUTH", "default", "secret"),
                ("MULTI",), ("INCR", "n"),
                ("EXEC",), ("NOPE",), ("SET", "bin", b"\x00\xff")]  # fmt: skip
    ours, theirs = monitored(server, commands), monitored(real_redis, commands)
    assert [line.lower() for line in ours] == [line.lower() for line in theirs]


@pytest.mark.readme("MONITOR and SLOWLOG")
def test_slowlog_entries_as_redis_writes_them(server, real_redis):
    seen = []
    for process in (server, real_redis):
        with process.connect() as client:
            client.command("CLIENT", "SETNAME", "slow")
            client.command("CONFIG", "SET", "slowlog-log-slower-than", "0")
            try:
                client.command("SLOWLOG", "RESET")
                client.command("SET", "s", "x" * 200)
                client.command("SADD", "many", *[str(number) for number in range(40)])
                client.command("AUTH", "nobody", "secret")
                entries = parse_reply(client.command("SLOWLOG", "GET", "-1"))
            finally:
                client.command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
            seen.append([[[arg.lower() if index == 0 else arg for index, arg in enumerate(entry[3])], entry[5]]
                         for entry in entries])  # fmt: skip
    assert seen[0] == seen[1]
    assert seen[0][2][0][2] == b"x" * 128 + b"... (72 more bytes)"


@pytest.mark.readme("MONITOR and SLOWLOG")
def test_a_slow_command_is_logged_with_its_duration(server):
    with server.connect() as client:
        client.command("RPUSH", "big", *[str(number) for number in range(20000)])
        client.command("SLOWLOG", "RESET")
        client.command("CONFIG", "SET", "slowlog-log-slower-than", "1000")  # 1 ms
        try:
            client.command("LRANGE", "big", "0", "-1")
            client.command("PING")
            entries = parse_reply(client.command("SLOWLOG", "GET"))
        finally:
            client.command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        assert [entry[3][0].lower() for entry in entries] == [b"lrange"]
        assert entries[0][2] >= 1000


@pytest.mark.readme("INFO")
def test_errorstats_count_errors_by_code_as_redis(pair):
    for client in pair:
        client.command("CONFIG", "RESETSTAT")
        client.command("SET", "e", "x")
        for command in [("NOPE",), ("LPUSH", "e", "x"), ("GET",), ("INCR", "e"), ("MULTI",), ("NOPE",), ("EXEC",),
                        ("MULTI",), ("INCR", "e"), ("EXEC",), ("CLIENT", "KILL", "ID", "0")]:  # fmt: skip
            client.command(*command)
    ours, theirs = (parse_reply(client.command("INFO", "errorstats")) for client in pair)
    assert ours == theirs and b"errorstat_EXECABORT:count=1" in ours
    totals = [re.search(rb"total_error_replies:(\d+)", parse_reply(client.command("INFO", "stats"))).group(1)
              for client in pair]  # fmt: skip
    assert totals[0] == totals[1]
    sections = [re.findall(rb"^# (\w+)", parse_reply(client.command("INFO")), re.M) for client in pair]
    assert sections[0] == sections[1]


def info_fields(client: RawClient, section: str = "") -> dict[str, dict[str, str]]:
    """INFO's text as section -> {field: value}, in the order printed."""
    sections: dict[str, dict[str, str]] = {}
    for line in parse_reply(client.command("INFO", *([section] if section else []))).decode().split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:], {})
        elif line:
            name, value = line.split(":", 1)
            current[name] = value
    return sections


@pytest.mark.readme("INFO")
def test_info_prints_every_field_of_redis_default_info_in_its_order(pair):
    """Each section of the default INFO has every field real Redis prints,
    in Redis's order; this server's own fields (python_version, ...) come
    only after Redis's."""
    ours, theirs = (info_fields(client) for client in pair)
    assert list(ours) == list(theirs)
    for section, fields in theirs.items():
        printed = list(ours[section])
        assert printed[: len(fields)] == list(fields), section
        assert not set(printed[len(fields) :]) & set(fields), section


@pytest.mark.readme("INFO")
def test_info_counters_move_as_redis_counts(pair):
    """The same requests to both servers, after CONFIG RESETSTAT: the same
    keyspace hits and misses (lookups by commands that only read), expired
    keys (lazily and by the active cycle), commands and bytes received."""
    for client in pair:
        client.command("FLUSHALL")
        client.command("CONFIG", "RESETSTAT")
        for command in [("SET", "a", "1"), ("GET", "a"), ("GET", "b"), ("EXISTS", "a", "b", "c"), ("MGET", "a", "z"),
                        ("INCR", "a"), ("SET", "gone", "x", "PX", "1"), ("SET", "later", "x", "PX", "1"),
                        ("RPUSH", "l", "x"), ("LRANGE", "l", "0", "-1"), ("HGET", "h", "f"), ("TYPE", "a")]:  # fmt: skip
            client.command(*command)
        time.sleep(0.01)
        client.command("GET", "gone")  # expired: deleted by this lookup (a miss)
    deadline = time.monotonic() + 5  # "later" is left to each server's active expiry
    while time.monotonic() < deadline and any(client.command("DBSIZE") != b":2\r\n" for client in pair):
        time.sleep(0.05)
    ours, theirs = (info_fields(client, "stats")["Stats"] for client in pair)
    for name in ("keyspace_hits", "keyspace_misses", "expired_keys", "total_net_input_bytes"):
        assert ours[name] == theirs[name], name
    assert ours["expired_keys"] == "2"


@pytest.mark.readme("INFO")
def test_instantaneous_ops_per_sec_follows_the_load(server):
    """Sampled every 100 ms and averaged over 16 samples, as Redis's: busy,
    it counts the commands; some seconds idle, it falls back to 0."""
    with server.connect() as client:
        until = time.monotonic() + 0.8
        while time.monotonic() < until:
            client.sock.sendall(encode_command("PING") * 50)
            for _ in range(50):
                client.read_reply()
        busy = int(info_fields(client, "stats")["Stats"]["instantaneous_ops_per_sec"])
        assert busy > 1000
        time.sleep(2)
        assert info_fields(client, "stats")["Stats"]["instantaneous_ops_per_sec"] in ("0", "1")


@pytest.mark.readme("MONITOR and SLOWLOG")
def test_a_monitor_that_does_not_read_is_closed_at_its_limit(server):
    with server.connect() as admin, server.connect() as watcher, server.connect() as writer:
        admin.command("CONFIG", "SET", "client-output-buffer-limit", "replica 1mb 0 0")
        try:
            watcher.command("MONITOR")
            batch = encode_command("SET", "flood", "v" * 10_000) * 100
            for _ in range(30):  # 30 MB of monitor lines, never read: past the kernel's buffers too
                writer.send(batch)
                assert writer.read_replies(100) == [b"+OK\r\n"] * 100
            assert closed_after_draining(watcher)
            assert writer.command("PING") == b"+PONG\r\n"
        finally:
            admin.command("CONFIG", "SET", "client-output-buffer-limit", "replica 256mb 64mb 60")


def closed_after_draining(client: RawClient, timeout: float = 5.0) -> bool:
    """True if the server closes the connection; what it sent before is read and dropped."""
    client.sock.settimeout(timeout)
    try:
        while client.sock.recv(1 << 16):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.readme("CLIENT LIST")
def test_clients_that_reset_as_they_connect_cost_nothing(server):
    """A client that connects and resets at once (SO_LINGER 0) is gone before
    the server looks at its address: it is dropped, and the server goes on."""
    for _ in range(300):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.connect(("127.0.0.1", server.port))
        sock.close()
    with server.connect() as client:
        assert client.command("PING") == b"+PONG\r\n"
        assert parse_reply(client.command("CLIENT", "LIST")).count(b"\n") <= 2  # the dead ones are gone


def docs_by_name(reply: list) -> dict[bytes, dict[bytes, object]]:
    """COMMAND DOCS's RESP2 reply (flat arrays for maps) as name -> {field: value}, subcommands included by name."""
    found: dict[bytes, dict[bytes, object]] = {}
    for name, doc in zip(reply[0::2], reply[1::2]):
        fields = dict(zip(doc[0::2], doc[1::2]))
        found[name] = fields
        found.update(docs_by_name(fields.get(b"subcommands", [])))
    return found


@pytest.mark.readme("COMMAND GETKEYS, LIST and DOCS")
def test_command_docs_cover_every_command_with_redis_since_and_group(server, real_redis):
    """Every command and subcommand the server has is documented: summary,
    complexity and arguments in this project's words (parsed from its
    syntax), the version that introduced it and its group as Redis's."""
    with server.connect() as ours, real_redis.connect() as theirs:
        documented = docs_by_name(parse_reply(ours.command("COMMAND", "DOCS")))
        reference = docs_by_name(parse_reply(theirs.command("COMMAND", "DOCS")))
        names = parse_reply(ours.command("COMMAND", "LIST"))
        assert set(names) <= set(documented), set(names) - set(documented)
        for name, doc in documented.items():
            assert doc[b"summary"] and doc[b"complexity"], name
            if name in reference and name != b"client|setinfo":  # Redis 7.2's, in 7.0's server
                assert (doc[b"since"], doc[b"group"]) == (reference[name][b"since"], reference[name][b"group"]), name
        assert b"zquery" not in reference and len(set(documented) & set(reference)) > 200
        subcommands = {name for name in documented if b"|" in name}
        assert subcommands >= {b"config|get", b"client|list", b"acl|setuser", b"object|encoding", b"command|docs"}
        assert parse_reply(ours.command("COMMAND", "DOCS", "nope")) == []
        set_doc = docs_by_name(parse_reply(ours.command("COMMAND", "DOCS", "SET")))[b"set"]
        arguments = [dict(zip(argument[0::2], argument[1::2])) for argument in set_doc[b"arguments"]]
        assert [(a[b"name"], a[b"type"]) for a in arguments[:2]] == [(b"key", b"key"), (b"value", b"string")]
        expiry = dict(zip(set_doc[b"arguments"][-1][0::2], set_doc[b"arguments"][-1][1::2]))
        assert expiry[b"type"] == b"oneof" and expiry[b"flags"] == [b"optional"]
        assert [dict(zip(a[0::2], a[1::2]))[b"token"] for a in expiry[b"arguments"]] == [
            b"EX", b"PX", b"EXAT", b"PXAT", b"KEEPTTL"]
        assert ours.command("HELLO", "3").startswith(b"%")
        assert ours.command("COMMAND", "DOCS", "GET").startswith(b"%1\r\n$3\r\nget\r\n%5\r\n")


@pytest.mark.readme("MONITOR and SLOWLOG")
def test_the_idle_timeout_spares_a_monitor(server):
    """timeout 1: a MONITOR client silent for 2.5 s is not idle (as Redis): it sees the next command."""
    with server.connect() as monitor:
        with server.connect() as admin:
            previous = admin.command("CONFIG", "GET", "timeout").split(b"\r\n")[-2]
            assert admin.command("CONFIG", "SET", "timeout", "1") == b"+OK\r\n"
        try:
            assert monitor.command("MONITOR") == b"+OK\r\n"
            time.sleep(2.5)
            with server.connect() as client:
                client.command("PING")
            assert b'"PING"' in monitor.read_reply()
        finally:
            with server.connect() as restore:
                restore.command("CONFIG", "SET", "timeout", previous)
