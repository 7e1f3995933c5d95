"""Chapter 20 on: lists, hashes and sets against real Redis.

Replies are compared byte for byte with real Redis's, in RESP2 and RESP3:
hand-picked edge cases (every error text, the order of the checks), the
encodings across their thresholds, and random command sequences that
cross them. Where the order of a reply is the server's own (a large set's
members, a large hash's fields) the replies are compared as collections.
"""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.aof import CommandReader
from tests.support import (
    RawClient,
    ReplyMismatch,
    assert_real_redis_loads,
    assert_same_replies,
    launch,
    parse_reply,
    real_redis_on,
    saved_by,
    state,
)
from tests.test_persistence import wait_for
from tests.test_pubsub import keyspace_events

pytestmark = pytest.mark.since(20)

# Commands whose reply lists members in an order of the server's own.
UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "HGETALL", "HKEYS", "HVALS", "SPOP", "SRANDMEMBER",
             "HRANDFIELD", "SSCAN", "HSCAN"}  # fmt: skip


def canonical(command: tuple, reply: bytes) -> object:
    """A reply as compared: bytes, or, for an unordered one, its parsed elements sorted."""
    if command[0].upper() not in UNORDERED or not reply[:1] in (b"*", b"~", b"%"):
        return reply
    items = parse_reply(reply)
    if command[0].upper() in ("SSCAN", "HSCAN"):
        items = items[1]
    return sorted(map(repr, items))


def assert_same_collections(pair: tuple[RawClient, RawClient], *commands: tuple) -> None:
    """As assert_same_replies, comparing unordered replies as collections."""
    ours, theirs = pair
    for command in commands:
        expected, received = theirs.command(*command), ours.command(*command)
        if canonical(command, received) != canonical(command, expected):
            raise ReplyMismatch(command, expected, received, "real Redis")


@pytest.mark.readme("Lists")
def test_list_commands_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("LPUSH", "l", "a", "b", "c"), ("RPUSH", "l", "d", "e"), ("LRANGE", "l", "0", "-1"), ("LLEN", "l"),
        ("LPUSHX", "none", "x"), ("RPUSHX", "none", "x"), ("LPUSHX", "l", "x"), ("EXISTS", "none"),
        ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "2"), ("RPOP", "l", "0"), ("LPOP", "l", "-1"),
        ("LPOP", "l", "x"), ("LPOP", "l", "1", "2"), ("LPOP", "none"), ("LPOP", "none", "2"), ("LPOP", "none", "0"),
        ("RPUSH", "m", "1", "2", "3", "2", "1", "2"), ("LINDEX", "m", "0"), ("LINDEX", "m", "-1"),
        ("LINDEX", "m", "6"), ("LINDEX", "m", "-7"), ("LINDEX", "m", "x"), ("LINDEX", "none", "x"),
        ("LSET", "m", "1", "two"), ("LSET", "m", "-1", "last"), ("LSET", "m", "9", "x"), ("LSET", "none", "0", "x"),
        ("LSET", "m", "x", "y"), ("LRANGE", "m", "0", "-1"), ("LRANGE", "m", "-100", "100"),
        ("LRANGE", "m", "3", "1"), ("LRANGE", "m", "x", "1"), ("LRANGE", "none", "0", "-1"),
        ("LINSERT", "m", "BEFORE", "3", "b3"), ("LINSERT", "m", "after", "3", "a3"), ("LINSERT", "m", "after", "zz", "x"),
        ("LINSERT", "none", "after", "3", "x"), ("LINSERT", "m", "middle", "3", "x"), ("LRANGE", "m", "0", "-1"),
        ("LPOS", "m", "2"), ("LPOS", "m", "2", "RANK", "-1"), ("LPOS", "m", "2", "COUNT", "0"),
        ("LPOS", "m", "2", "RANK", "2", "COUNT", "5"), ("LPOS", "m", "2", "MAXLEN", "2"), ("LPOS", "m", "9"),
        ("LPOS", "m", "9", "COUNT", "1"), ("LPOS", "m", "2", "RANK", "0"), ("LPOS", "m", "2", "COUNT", "-1"),
        ("LPOS", "m", "2", "MAXLEN", "x"), ("LPOS", "m", "2", "RANK", "x"), ("LPOS", "m", "2", "BOGUS", "1"),
        ("LPOS", "m", "2", "RANK"), ("LPOS", "none", "1"), ("LPOS", "none", "1", "COUNT", "2"),
        ("LREM", "m", "1", "2"), ("LREM", "m", "-1", "2"), ("LREM", "m", "0", "1"), ("LREM", "m", "x", "1"),
        ("LREM", "none", "0", "1"), ("LRANGE", "m", "0", "-1"),
        ("LTRIM", "m", "1", "-2"), ("LRANGE", "m", "0", "-1"), ("LTRIM", "m", "5", "1"), ("EXISTS", "m"),
        ("LTRIM", "none", "0", "1"), ("LTRIM", "l", "x", "1"),
        ("RPUSH", "src", "a", "b", "c"), ("LMOVE", "src", "dst", "LEFT", "RIGHT"), ("LMOVE", "src", "dst", "right", "left"),
        ("LMOVE", "src", "dst", "up", "left"), ("RPOPLPUSH", "src", "src"), ("LRANGE", "src", "0", "-1"),
        ("LRANGE", "dst", "0", "-1"), ("RPOPLPUSH", "none", "dst"), ("RPOPLPUSH", "src", "dst"), ("EXISTS", "src"),
        ("SET", "str", "x"), ("LPUSH", "str", "a"), ("LRANGE", "str", "0", "1"), ("LMOVE", "dst", "str", "LEFT", "LEFT"),
        ("LLEN", "dst"), ("LMOVE", "str", "dst", "LEFT", "LEFT"),
        ("RPUSH", "a", "1", "2", "3"), ("LMPOP", "2", "none", "a", "LEFT"), ("LMPOP", "2", "none", "a", "RIGHT", "COUNT", "5"),
        ("LMPOP", "1", "a", "LEFT"), ("LMPOP", "0", "a", "LEFT"), ("LMPOP", "2", "a", "LEFT"), ("LMPOP", "1", "a", "UP"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "0"), ("LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"),
        ("LMPOP", "1", "str", "LEFT"), ("LPUSH", "l"), ("LLEN", "str"),
    )  # fmt: skip


@pytest.mark.readme("Hashes")
def test_hash_commands_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("HSET", "h", "f1", "v1", "f2", "v2"), ("HSET", "h", "f1", "new", "f3", "v3"), ("HSET", "h", "f1"),
        ("HMSET", "h", "f4", "v4"), ("HMSET", "h", "f4"), ("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"),
        ("HGET", "h", "f1"), ("HGET", "h", "nope"), ("HGET", "none", "f"), ("HMGET", "h", "f1", "nope", "f2"),
        ("HMGET", "none", "a", "b"), ("HLEN", "h"), ("HLEN", "none"), ("HSTRLEN", "h", "f1"), ("HSTRLEN", "h", "no"),
        ("HEXISTS", "h", "f2"), ("HEXISTS", "h", "no"), ("HEXISTS", "none", "f"),
        ("HSETNX", "h", "f1", "x"), ("HSETNX", "h", "f9", "x"), ("HSETNX", "fresh", "f", "v"), ("HGETALL", "fresh"),
        ("HDEL", "h", "f1", "f1", "nope"), ("HDEL", "none", "f"), ("HDEL", "fresh", "f"), ("EXISTS", "fresh"),
        ("HINCRBY", "c", "n", "5"), ("HINCRBY", "c", "n", "-10"), ("HINCRBY", "c", "n", "x"), ("HINCRBY", "c", "n", "1.5"),
        ("HSET", "c", "s", "text", "big", "9223372036854775807", "lead", "01"), ("HINCRBY", "c", "s", "1"),
        ("HINCRBY", "c", "big", "1"), ("HINCRBY", "c", "lead", "1"), ("HINCRBY", "c", "n", "-9223372036854775808"),
        ("HINCRBYFLOAT", "c", "f", "0.1"), ("HINCRBYFLOAT", "c", "f", "0.1"), ("HINCRBYFLOAT", "c", "f", "0.1"),
        ("HINCRBYFLOAT", "c", "f", "x"), ("HINCRBYFLOAT", "c", "f", "inf"), ("HINCRBYFLOAT", "c", "s", "1"),
        ("HINCRBYFLOAT", "c", "n", "1e3"), ("HINCRBYFLOAT", "c", "f", "1e308"), ("HINCRBYFLOAT", "c", "f", "1e308"),
        ("HGET", "c", "f"), ("HLEN", "c"), ("HGETALL", "none"), ("HKEYS", "none"), ("HVALS", "none"),
        ("HRANDFIELD", "none"), ("HRANDFIELD", "none", "3"), ("HRANDFIELD", "h", "0"), ("HRANDFIELD", "h", "x"),
        ("HRANDFIELD", "h", "1", "x"), ("HRANDFIELD", "h", "1", "withvalues", "x"),
        ("HRANDFIELD", "h", "-9223372036854775808"), ("HRANDFIELD", "h", "-9223372036854770000", "withvalues"),
        ("HRANDFIELD", "h", "10"), ("HRANDFIELD", "h", "10", "WITHVALUES"),
        ("SET", "str", "x"), ("HSET", "str", "f", "v"), ("HGET", "str", "f"), ("HMGET", "str", "f"), ("HLEN", "str"),
        ("HGETALL", "str"), ("HINCRBY", "str", "f", "1"), ("HINCRBY", "str", "f", "x"), ("HSCAN", "str", "0"),
        ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "MATCH", "f*", "COUNT", "1"), ("HSCAN", "none", "0", "BOGUS"),
        ("HSCAN", "h", "x"), ("HSCAN", "h", "0", "TYPE", "x"),
    )  # fmt: skip


@pytest.mark.readme("Sets")
def test_set_commands_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("SADD", "s", "3", "1", "2", "1"), ("SMEMBERS", "s"), ("SADD", "s", "-5", "100"), ("SMEMBERS", "s"),
        ("SCARD", "s"), ("SCARD", "none"), ("SISMEMBER", "s", "1"), ("SISMEMBER", "s", "01"), ("SISMEMBER", "none", "1"),
        ("SMISMEMBER", "s", "1", "9", "2"), ("SMISMEMBER", "none", "1"), ("SREM", "s", "1", "9", "1"),
        ("SREM", "none", "1"), ("SMEMBERS", "none"), ("SMOVE", "s", "t", "2"), ("SMOVE", "s", "t", "2"),
        ("SMOVE", "none", "t", "2"), ("SMOVE", "s", "s", "3"), ("SMOVE", "s", "s", "9"), ("SMEMBERS", "t"),
        ("SADD", "u", "1", "2", "3", "4"), ("SADD", "v", "3", "4", "5"), ("SINTER", "u", "v"), ("SUNION", "u", "v"),
        ("SDIFF", "u", "v"), ("SDIFF", "v", "u", "none"), ("SINTER", "u", "none"), ("SUNION", "none"),
        ("SINTERSTORE", "d", "u", "v"), ("SMEMBERS", "d"), ("SUNIONSTORE", "d", "u", "v"), ("SMEMBERS", "d"),
        ("SDIFFSTORE", "d", "u", "v"), ("SMEMBERS", "d"), ("SDIFFSTORE", "d", "u", "u"), ("EXISTS", "d"),
        ("SINTERSTORE", "d", "u", "none"), ("SINTERCARD", "2", "u", "v"), ("SINTERCARD", "2", "u", "v", "LIMIT", "1"),
        ("SINTERCARD", "0", "u"), ("SINTERCARD", "3", "u", "v"), ("SINTERCARD", "1", "u", "LIMIT", "-1"),
        ("SINTERCARD", "1", "u", "LIMIT"), ("SINTERCARD", "x", "u"), ("SINTERCARD", "2", "u", "none"),
        ("SPOP", "none"), ("SPOP", "none", "2"), ("SPOP", "u", "0"), ("SPOP", "u", "-1"), ("SPOP", "u", "x"),
        ("SPOP", "u", "1", "2"), ("SRANDMEMBER", "none"), ("SRANDMEMBER", "none", "2"), ("SRANDMEMBER", "u", "0"),
        ("SRANDMEMBER", "u", "x"), ("SRANDMEMBER", "u", "1", "2"), ("SRANDMEMBER", "u", "-9223372036854775808"),
        ("SRANDMEMBER", "u", "10"), ("SPOP", "v", "10"), ("EXISTS", "v"),
        ("SET", "str", "x"), ("SADD", "str", "1"), ("SINTER", "u", "str"), ("SUNIONSTORE", "d", "str"),
        ("SMOVE", "u", "str", "1"), ("SMOVE", "str", "u", "1"), ("SINTERCARD", "1", "str"), ("SSCAN", "str", "0"),
        ("SSCAN", "u", "0"), ("SSCAN", "u", "0", "MATCH", "1*"), ("SADD", "w", "b", "a"), ("ZUNIONSTORE", "z", "2", "u", "w"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZINTER", "2", "u", "z", "WITHSCORES"), ("ZDIFF", "2", "z", "w"),
        ("ZINTERSTORE", "z", "2", "u", "str"),
    )  # fmt: skip


@pytest.mark.readme("Encodings")
def test_encodings_follow_redis_across_their_thresholds(pair):
    """OBJECT ENCODING at each threshold, under the default settings and
    smaller ones set with CONFIG SET (both servers alike)."""
    ours, theirs = pair
    settings_ = [("hash-max-listpack-entries", "4"), ("hash-max-ziplist-value", "8"), ("set-max-intset-entries", "4"),
                 ("list-max-listpack-size", "3")]  # fmt: skip
    saved = {name: theirs.command("CONFIG", "GET", name) for name, _ in settings_}
    try:
        for client in pair:
            client.command("FLUSHALL")
        assert_same_replies(
            *pair,
            ("HSET", "h", "a", "1"), ("OBJECT", "ENCODING", "h"), ("HSET", "h", "b", "1", "c", "1", "d", "1", "e", "1"),
            ("OBJECT", "ENCODING", "h"), ("HSET", "long", "f", "x" * 64), ("OBJECT", "ENCODING", "long"),
            ("HSET", "long", "g", "x" * 65), ("OBJECT", "ENCODING", "long"), ("HSET", "longfield", "x" * 65, "v"),
            ("OBJECT", "ENCODING", "longfield"), ("SADD", "s", "1", "-2"), ("OBJECT", "ENCODING", "s"),
            ("SADD", "s", "a"), ("OBJECT", "ENCODING", "s"), ("SREM", "s", "a"), ("OBJECT", "ENCODING", "s"),
            ("SADD", "t", "01"), ("OBJECT", "ENCODING", "t"), ("SADD", "big", *map(str, range(513))),
            ("OBJECT", "ENCODING", "big"), ("SADD", "max", "9223372036854775807"), ("OBJECT", "ENCODING", "max"),
            ("SADD", "over", "9223372036854775808"), ("OBJECT", "ENCODING", "over"), ("RPUSH", "l", "a"),
            ("OBJECT", "ENCODING", "l"), ("COPY", "h", "h2"), ("OBJECT", "ENCODING", "h2"), ("COPY", "s", "s2"),
            ("OBJECT", "ENCODING", "s2"),
        )  # fmt: skip
        for name, value in settings_:
            assert_same_replies(*pair, ("CONFIG", "SET", name, value))
        assert_same_replies(
            *pair,
            ("CONFIG", "GET", "hash-max-ziplist-entries"), ("CONFIG", "GET", "list-max-ziplist-size"),
            ("HSET", "h3", "a", "1", "b", "2", "c", "3", "d", "4"), ("OBJECT", "ENCODING", "h3"),
            ("HSET", "h3", "e", "5"), ("OBJECT", "ENCODING", "h3"), ("HSET", "h4", "a", "123456789"),
            ("OBJECT", "ENCODING", "h4"), ("SADD", "s3", "1", "2", "3", "4"), ("OBJECT", "ENCODING", "s3"),
            ("SADD", "s3", "5"), ("OBJECT", "ENCODING", "s3"), ("RPUSH", "l3", *"abcdefg"), ("LRANGE", "l3", "0", "-1"),
            ("LINSERT", "l3", "BEFORE", "d", "x"), ("LRANGE", "l3", "0", "-1"), ("CONFIG", "SET", "list-max-listpack-size", "-6"),
            ("CONFIG", "GET", "list-max-listpack-size"),
        )  # fmt: skip
    finally:
        for name, value in saved.items():
            old = parse_reply(value)[1]
            for client in pair:
                client.command("CONFIG", "SET", name, old)


list_keys = st.sampled_from(["a", "b"])
elements = st.sampled_from(["x", "y", "1", "", "z" * 70])
indexes = st.sampled_from(["0", "1", "-1", "2", "-3", "5"])
list_commands = st.one_of(
    st.tuples(st.sampled_from(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), list_keys, elements, elements),
    st.tuples(st.sampled_from(["LPOP", "RPOP"]), list_keys),
    st.tuples(st.sampled_from(["LPOP", "RPOP"]), list_keys, st.sampled_from(["0", "1", "3"])),
    st.tuples(st.just("LRANGE"), list_keys, indexes, indexes),
    st.tuples(st.just("LTRIM"), list_keys, indexes, indexes),
    st.tuples(st.sampled_from(["LINDEX"]), list_keys, indexes),
    st.tuples(st.just("LSET"), list_keys, indexes, elements),
    st.tuples(st.just("LINSERT"), list_keys, st.sampled_from(["BEFORE", "AFTER"]), elements, elements),
    st.tuples(st.just("LREM"), list_keys, st.sampled_from(["0", "1", "-1", "2"]), elements),
    st.tuples(st.just("LPOS"), list_keys, elements, st.sampled_from(["RANK", "COUNT", "MAXLEN"]), st.sampled_from(["1", "-1", "2", "0"])),
    st.tuples(st.just("LMOVE"), list_keys, list_keys, st.sampled_from(["LEFT", "RIGHT"]), st.sampled_from(["LEFT", "RIGHT"])),
    st.tuples(st.just("LMPOP"), st.just("2"), list_keys, list_keys, st.sampled_from(["LEFT", "RIGHT"]), st.just("COUNT"), st.sampled_from(["1", "2"])),
    st.tuples(st.sampled_from(["LLEN", "TYPE", "EXISTS", "OBJECT"]), list_keys).map(
        lambda command: ("OBJECT", "ENCODING", command[1]) if command[0] == "OBJECT" else command),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(list_commands, min_size=1, max_size=30))
def test_random_list_sequences_match_redis(empty_pair, sequence):
    """With 3-element nodes, so that a short sequence splits and empties nodes."""
    for client in empty_pair:
        client.command("CONFIG", "SET", "list-max-listpack-size", "3")
    try:
        assert_same_replies(*empty_pair, *sequence)
    finally:
        for client in empty_pair:
            client.command("CONFIG", "SET", "list-max-listpack-size", "-2")


hash_keys = st.sampled_from(["h", "g"])
fields = st.sampled_from(["f1", "f2", "f3", "f4", "f5", "long" * 5])
hash_values = st.sampled_from(["1", "-2", "x", "1.5", "v" * 20])
hash_commands = st.one_of(
    st.tuples(st.sampled_from(["HSET", "HSETNX"]), hash_keys, fields, hash_values),
    st.tuples(st.just("HSET"), hash_keys, fields, hash_values, fields, hash_values),
    st.tuples(st.sampled_from(["HGET", "HDEL", "HEXISTS", "HSTRLEN"]), hash_keys, fields),
    st.tuples(st.sampled_from(["HMGET", "HDEL"]), hash_keys, fields, fields),
    st.tuples(st.just("HINCRBY"), hash_keys, fields, st.sampled_from(["1", "-5", "x"])),
    st.tuples(st.just("HINCRBYFLOAT"), hash_keys, fields, st.sampled_from(["0.1", "-3", "x"])),
    st.tuples(st.sampled_from(["HLEN", "HGETALL", "HKEYS", "HVALS", "TYPE"]), hash_keys),
    st.tuples(st.just("OBJECT"), st.just("ENCODING"), hash_keys),
    st.tuples(st.sampled_from(["RENAME", "COPY"]), hash_keys, hash_keys),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(hash_commands, min_size=1, max_size=30))
def test_random_hash_sequences_match_redis(empty_pair, sequence):
    """With 4 fields and 16 bytes as the listpack's limits, crossed often."""
    for client in empty_pair:
        client.command("CONFIG", "SET", "hash-max-listpack-entries", "4")
        client.command("CONFIG", "SET", "hash-max-listpack-value", "16")
    try:
        assert_same_collections(empty_pair, *sequence)
    finally:
        for client in empty_pair:
            client.command("CONFIG", "SET", "hash-max-listpack-entries", "128")
            client.command("CONFIG", "SET", "hash-max-listpack-value", "64")


set_keys = st.sampled_from(["s", "t", "u"])
members = st.sampled_from(["1", "2", "3", "-4", "10", "a", "b", "01"])
set_commands = st.one_of(
    st.tuples(st.sampled_from(["SADD", "SREM"]), set_keys, members, members),
    st.tuples(st.sampled_from(["SISMEMBER"]), set_keys, members),
    st.tuples(st.just("SMISMEMBER"), set_keys, members, members),
    st.tuples(st.just("SMOVE"), set_keys, set_keys, members),
    st.tuples(st.sampled_from(["SCARD", "SMEMBERS", "TYPE"]), set_keys),
    st.tuples(st.sampled_from(["SINTER", "SUNION", "SDIFF"]), set_keys, set_keys),
    st.tuples(st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), set_keys, set_keys, set_keys),
    st.tuples(st.just("SINTERCARD"), st.just("2"), set_keys, set_keys),
    st.tuples(st.just("OBJECT"), st.just("ENCODING"), set_keys),
    st.tuples(st.just("SPOP"), set_keys, st.sampled_from(["5", "9"])),  # all of it: the same members
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(set_commands, min_size=1, max_size=30))
def test_random_set_sequences_match_redis(empty_pair, sequence):
    """With 4 integers as the intset's limit, crossed often."""
    for client in empty_pair:
        client.command("CONFIG", "SET", "set-max-intset-entries", "4")
    try:
        assert_same_collections(empty_pair, *sequence)
    finally:
        for client in empty_pair:
            client.command("CONFIG", "SET", "set-max-intset-entries", "512")


# --- blocking list pops ---------------------------------------------------------------------


def reply_within(client: RawClient, seconds: float = 2.0) -> bytes:
    client.sock.settimeout(seconds)
    return client.read_reply()


@pytest.mark.readme("Blocking list pops")
@pytest.mark.parametrize("target", ["ours", "redis"])
def test_blocked_clients_are_served_first_come_first_served(server, real_redis, target):
    """Three clients wait on a list; each push serves the longest waiting, as in Redis."""
    process = server if target == "ours" else real_redis
    with process.connect() as first, process.connect() as second, process.connect() as third, \
            process.connect() as pusher:  # fmt: skip
        pusher.command("DEL", "queue", "other")
        for client in (first, second, third):
            client.send(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n5\r\n")
            time.sleep(0.05)
        assert pusher.command("RPUSH", "queue", "a", "b") == b":2\r\n"
        assert reply_within(first) == b"*2\r\n$5\r\nqueue\r\n$1\r\na\r\n"
        assert reply_within(second) == b"*2\r\n$5\r\nqueue\r\n$1\r\nb\r\n"
        assert pusher.command("LLEN", "queue") == b":0\r\n"
        # A push inside MULTI serves the waiter once EXEC is over, with what is left.
        pusher.command("MULTI")
        pusher.command("RPUSH", "queue", "c", "d")
        pusher.command("LPOP", "queue")
        assert pusher.command("EXEC") == b"*2\r\n:2\r\n$1\r\nc\r\n"
        assert reply_within(third) == b"*2\r\n$5\r\nqueue\r\n$1\r\nd\r\n"


@pytest.mark.readme("Blocking list pops")
def test_blocking_pops_match_redis(pair):
    """Timeouts, a BLMOVE that feeds a client waiting on its target, wrong
    types, BLMPOP, and blocking commands inside MULTI, in both servers."""
    transcripts = []
    for process_client in pair:
        process_client.command("FLUSHALL")
        transcript = [process_client.command("BLPOP", "none", "0.05"), process_client.command("BRPOP", "x", "-1"),
                      process_client.command("BLPOP", "x", "abc"), process_client.command("BLMOVE", "none", "d", "LEFT", "UP", "0"),
                      process_client.command("BLMOVE", "none", "d", "LEFT", "LEFT", "0.05"),
                      process_client.command("BRPOPLPUSH", "none", "d", "0.05"),
                      process_client.command("BLMPOP", "0.05", "1", "none", "LEFT"),
                      process_client.command("BLMPOP", "0", "0", "none", "LEFT"),
                      process_client.command("RPUSH", "l", "1", "2", "3"), process_client.command("BLPOP", "none", "l", "1"),
                      process_client.command("BRPOP", "l", "1"), process_client.command("BLMPOP", "1", "2", "none", "l", "RIGHT", "COUNT", "5"),
                      process_client.command("SET", "str", "x"), process_client.command("BLPOP", "str", "1"),
                      process_client.command("RPUSH", "l", "1"), process_client.command("BLMOVE", "l", "str", "LEFT", "LEFT", "1"),
                      process_client.command("BRPOPLPUSH", "l", "m", "1"), process_client.command("LRANGE", "m", "0", "-1"),
                      process_client.command("MULTI"), process_client.command("BLPOP", "none", "0"),
                      process_client.command("BLMOVE", "none", "d", "LEFT", "LEFT", "0"), process_client.command("BLMPOP", "0", "1", "none", "LEFT"),
                      process_client.command("EXEC")]  # fmt: skip
        transcripts.append(transcript)
    assert transcripts[0] == transcripts[1]


@pytest.mark.readme("Blocking list pops")
@pytest.mark.parametrize("target", ["ours", "redis"])
def test_a_served_blmove_serves_the_client_waiting_on_its_target(server, real_redis, target):
    process = server if target == "ours" else real_redis
    with process.connect() as mover, process.connect() as popper, process.connect() as pusher:
        pusher.command("DEL", "src", "dst")
        mover.send(b"*6\r\n$6\r\nBLMOVE\r\n$3\r\nsrc\r\n$3\r\ndst\r\n$4\r\nLEFT\r\n$5\r\nRIGHT\r\n$1\r\n5\r\n")
        popper.send(b"*3\r\n$5\r\nBLPOP\r\n$3\r\ndst\r\n$1\r\n5\r\n")
        time.sleep(0.1)
        pusher.command("RPUSH", "src", "job")
        assert reply_within(mover) == b"$3\r\njob\r\n"
        assert reply_within(popper) == b"*2\r\n$3\r\ndst\r\n$3\r\njob\r\n"
        assert pusher.command("EXISTS", "src", "dst") == b":0\r\n"


@pytest.mark.readme("Blocking list pops")
def test_a_worker_pool_gets_every_job_once(server):
    """Eight workers BLPOP a queue that four producers fill: every job is
    taken exactly once, nobody is served twice for one push."""
    jobs = 2000
    taken: list[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        with server.redis() as client:
            while True:
                reply = client.blpop(["jobs"], timeout=1)
                if reply is None:
                    return
                with lock:
                    taken.append(reply[1])

    def produce(start: int) -> None:
        with server.redis() as client:
            for number in range(start, jobs, 4):
                client.rpush("jobs", b"job%d" % number)

    workers = [threading.Thread(target=work) for _ in range(8)]
    producers = [threading.Thread(target=produce, args=(start,)) for start in range(4)]
    for thread in workers + producers:
        thread.start()
    for thread in producers + workers:
        thread.join(timeout=30)
    assert sorted(taken) == sorted(b"job%d" % number for number in range(jobs))


# --- the rest of the server covers the new types ----------------------------------------------


@pytest.mark.readme("What the other commands do with the new types")
def test_key_commands_cover_the_new_types(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("RPUSH", "l", "a", "b"), ("HSET", "h", "f", "v"), ("SADD", "s", "1", "x"), ("ZADD", "z", "1", "m"),
        ("SET", "str", "v"), ("TYPE", "l"), ("TYPE", "h"), ("TYPE", "s"), ("SCAN", "0", "TYPE", "list", "COUNT", "100"),
        ("SCAN", "0", "TYPE", "hash", "COUNT", "100"), ("SCAN", "0", "TYPE", "set", "COUNT", "100"),
        ("COPY", "l", "l2"), ("LPUSH", "l2", "c"), ("LRANGE", "l", "0", "-1"), ("LRANGE", "l2", "0", "-1"),
        ("COPY", "h", "h2"), ("HSET", "h2", "g", "w"), ("HLEN", "h"), ("COPY", "s", "s2"), ("SADD", "s2", "y"),
        ("SCARD", "s"), ("RENAME", "l", "l3"), ("LRANGE", "l3", "0", "-1"), ("EXPIRE", "h", "100"), ("TTL", "h"),
        ("RENAME", "h", "h3"), ("TTL", "h3"), ("DEL", "l3", "h3", "s"), ("UNLINK", "s2", "h2"), ("EXISTS", "l3", "h3", "s"),
        ("LPUSH", "z", "x"), ("ZADD", "l2", "1", "x"), ("GET", "l2"), ("APPEND", "l2", "x"), ("SADD", "z", "1"),
        ("HSET", "z", "a", "b"), ("OBJECT", "ENCODING", "l2"),
    )  # fmt: skip


SCRIPT = [
    ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "z"), ("LPUSHX", "l", "y"), ("RPUSHX", "nol", "y"), ("LPOP", "l"),
    ("RPOP", "l", "2"), ("LSET", "l", "0", "w"), ("LINSERT", "l", "BEFORE", "w", "v"), ("LREM", "l", "0", "v"),
    ("LTRIM", "l", "0", "0"), ("RPUSH", "l", "q"), ("LMOVE", "l", "l2", "LEFT", "RIGHT"), ("RPOPLPUSH", "l", "l2"),
    ("LMPOP", "1", "l2", "LEFT", "COUNT", "5"), ("RPUSH", "l", "1"), ("BLPOP", "l", "1"),
    ("HSET", "h", "a", "1", "b", "2"), ("HSETNX", "h", "c", "3"), ("HINCRBY", "h", "a", "1"),
    ("HINCRBYFLOAT", "h", "b", "1.5"), ("HDEL", "h", "a", "nope"), ("HDEL", "h", "b", "c"),
    ("SADD", "s", "1", "2", "3"), ("SADD", "s", "1"), ("SREM", "s", "1"), ("SMOVE", "s", "t", "2"), ("SPOP", "s"),
    ("SADD", "u", "1", "2"), ("SINTERSTORE", "d", "u", "t"), ("SUNIONSTORE", "d", "u", "t"), ("SDIFFSTORE", "d", "u", "t"),
    ("SDIFFSTORE", "d", "u", "u"), ("EXPIRE", "u", "100"), ("RENAME", "u", "u2"), ("DEL", "u2", "t"),
]  # fmt: skip


@pytest.mark.readme("What the other commands do with the new types")
def test_keyspace_events_of_the_new_types_match_redis(server, real_redis):
    ours, theirs = keyspace_events(server, SCRIPT), keyspace_events(real_redis, SCRIPT)
    assert len(ours) > 80
    assert ours == theirs


@pytest.mark.readme("What the other commands do with the new types")
def test_watch_sees_writes_to_the_new_types(server):
    with server.connect() as watcher, server.connect() as writer:
        for command in [("RPUSH", "wl", "a"), ("HSET", "wh", "f", "v"), ("SADD", "ws", "1"), ("SREM", "ws", "9"),
                        ("HDEL", "wh", "nope")]:  # fmt: skip
            watcher.command("WATCH", command[1])
            writer.command(*command)
            watcher.command("MULTI")
            watcher.command("PING")
            changed = command[0] not in ("SREM", "HDEL")  # replied 0: nothing changed
            assert watcher.command("EXEC") == (b"*-1\r\n" if changed else b"*1\r\n+PONG\r\n"), command


# --- persistence --------------------------------------------------------------------------------


def fill_every_type(client) -> None:
    client.set("string", "v")
    client.zadd("zset", {"a": 1, "b": 2.5})
    client.rpush("short list", "a", "b", "1", "")
    client.rpush("long list", *[b"element %d" % number for number in range(3000)])  # several nodes
    # Entries whose listpack back-lengths take 2 and 3 bytes (entries of 128 and 16,383 bytes and more).
    client.rpush("long elements", b"x" * 200, b"y" * 4090, b"z" * 16_378, b"w" * 20_000)
    client.hset("small hash", mapping={"f1": "v1", "f2": "2"})
    client.hset("large hash", mapping={b"field %d" % number: b"x" * (number % 90) for number in range(300)})
    client.sadd("intset", 1, -2, 70000, 2**40)
    client.sadd("set", "a", "b", "3")
    client.sadd("large set", *range(1000))
    client.hset("expiring", "f", "v")
    client.pexpireat("expiring", int(time.time() * 1000) + 3_600_000)


@pytest.mark.readme("Persistence")
def test_real_redis_loads_our_dump_of_every_type(server, tmp_path):
    saved = saved_by(server, tmp_path, fill_every_type)
    assert len(saved) == 11
    assert_real_redis_loads(tmp_path, saved)


@pytest.mark.readme("Persistence")
def test_we_load_a_dump_real_redis_wrote_of_every_type(server, tmp_path):
    theirs = real_redis_on(tmp_path)
    with theirs.redis() as client:
        fill_every_type(client)
        expected = state(client)
        encodings = {name: client.object("encoding", name) for name in client.keys("*")}
        assert client.save()
    theirs.stop()
    # Redis 7.0 wrote each kind of record: quicklist 2, listpack hashes and sets as intsets among them.
    assert {encodings[b"short list"], encodings[b"small hash"], encodings[b"intset"]} == {b"quicklist", b"listpack", b"intset"}
    ours = launch(server, tmp_path, "--save", "")
    with ours.redis() as client:
        assert state(client) == expected
        assert {name: client.object("encoding", name) for name in client.keys("*")} == encodings
    ours.stop()


@pytest.mark.readme("Persistence")
def test_the_aof_logs_pops_as_redis_does(server, tmp_path):
    """SPOP's random choice is logged as its SREM, a blocking pop as its
    LPOP or LMOVE: a restart holds what the clients saw."""
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with ours.redis() as client, ours.redis() as blocked:
        client.sadd("s", *range(20))
        popped = {client.spop("s")} | set(client.spop("s", 5))
        client.rpush("l", "a", "b")
        assert blocked.blpop(["l"], timeout=1) == (b"l", b"a")
        assert client.blmove("l", "m", 1, "RIGHT", "LEFT") == b"b"
        before = state(client)
    ours.stop()
    with open(tmp_path / "appendonlydir" / "appendonly.aof.1.incr.aof", "rb") as log:
        commands = [args[0].upper() for args in CommandReader(log, "incr").commands()]
    assert b"SPOP" not in commands and b"BLPOP" not in commands and b"BLMOVE" not in commands
    assert commands.count(b"SREM") == 6 and b"LPOP" in commands and b"LMOVE" in commands
    restarted = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with restarted.redis() as client:
        assert state(client) == before
        assert not popped & client.smembers("s")
        client.hset("h", mapping={"a": "1", "b": "2"})
        client.hincrbyfloat("h", "b", "0.5")
        client.lpush("l2", "x", "y")
        client.linsert("l2", "BEFORE", "x", "w")
        client.sadd("t", "1", "a")
        client.smove("t", "u", "a")
        client.sinterstore("v", "s", "t")
        assert client.bgrewriteaof()  # the base becomes a snapshot holding every type
        wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0)
        client.rpush("l2", "after the rewrite")
        after = state(client)
    restarted.stop()
    theirs = real_redis_on(tmp_path, "--appendonly", "yes")  # real Redis reads the same files
    with theirs.redis() as client:
        assert state(client) == after
    theirs.stop()
