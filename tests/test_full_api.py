"""Chapter 17 on: the string and key families, and SCAN, against real Redis.

Replies are compared byte for byte with real Redis's, in RESP2 and RESP3,
for hand-picked edge cases (every error text, the order in which checks
apply) and for random command sequences. SCAN's order depends on each
server's hashing, so it is checked by what a full iteration returns:
every key, once, also while keys are written between calls.
"""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common.aof import CommandReader
from common.resp import encode_command
from tests.support import assert_same_replies, assert_same_sequence, launch, state

pytestmark = [pytest.mark.since(17), pytest.mark.readme("Strings and keys")]


def test_string_commands_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("SETNX", "a", "1"), ("SETNX", "a", "2"), ("GET", "a"),
        ("SETEX", "b", "100", "x"), ("SETEX", "b", "0", "x"), ("SETEX", "b", "-5", "x"), ("SETEX", "b", "abc", "x"),
        ("SETEX", "b", "9223372036854775807", "x"), ("PSETEX", "c", "5000", "y"), ("PSETEX", "c", "0", "y"),
        ("GETSET", "a", "5"), ("GETSET", "missing", "1"), ("GETDEL", "a"), ("GETDEL", "a"),
        ("GETEX", "b"), ("GETEX", "b", "PERSIST"), ("TTL", "b"), ("GETEX", "b", "EX", "50"), ("TTL", "b"),
        ("GETEX", "b", "EX", "0"), ("GETEX", "missing", "EX", "0"), ("GETEX", "b", "EX", "5", "PX", "6"),
        ("GETEX", "b", "EX", "5", "EX", "7"), ("GETEX", "b", "PERSIST", "EX", "1"), ("GETEX", "b", "FOO"),
        ("GETEX", "b", "PXAT", "1"), ("EXISTS", "b"),
        ("APPEND", "s", "hello"), ("APPEND", "s", " world"), ("STRLEN", "s"), ("STRLEN", "missing"),
        ("GETRANGE", "s", "0", "4"), ("GETRANGE", "s", "-5", "-1"), ("GETRANGE", "s", "5", "1"),
        ("GETRANGE", "s", "-1", "-5"), ("GETRANGE", "s", "-100", "100"), ("GETRANGE", "missing", "0", "1"),
        ("GETRANGE", "s", "x", "1"), ("SUBSTR", "s", "0", "2"),
        ("SETRANGE", "s", "20", "XY"), ("GET", "s"), ("SETRANGE", "s", "-1", "x"), ("SETRANGE", "s", "1", ""),
        ("SETRANGE", "new", "3", "ab"), ("GET", "new"), ("SETRANGE", "empty", "3", ""), ("EXISTS", "empty"),
        ("SETRANGE", "s", "536870911", "xy"), ("SETRANGE", "s", "x", "y"),
        ("MSET", "k1", "v1", "k2", "v2"), ("MSET", "k1"), ("MSET", "k1", "v1", "k2"), ("MGET", "k1", "k2", "nokey"),
        ("MSETNX", "k1", "a", "k3", "b"), ("MSETNX", "k4", "a", "k5", "b"), ("MGET", "k3", "k4", "k5"),
        ("MSETNX", "k6"),
    )  # fmt: skip


def test_counters_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("INCR", "i"), ("INCRBY", "i", "10"), ("DECR", "i"), ("DECRBY", "i", "3"), ("INCRBY", "i", "abc"),
        ("INCRBY", "i", "1.5"), ("INCRBY", "i", "+1"), ("INCRBY", "i", " 1"),
        ("SET", "big", "9223372036854775807"), ("INCR", "big"), ("SET", "small", "-9223372036854775808"),
        ("DECR", "small"), ("DECRBY", "i", "-9223372036854775808"), ("INCRBY", "i", "9223372036854775808"),
        ("SET", "s", "text"), ("INCR", "s"), ("SET", "lead", "01"), ("INCR", "lead"), ("SET", "sp", " 1"),
        ("INCR", "sp"), ("SET", "ttl", "1", "EX", "100"), ("INCR", "ttl"), ("TTL", "ttl"),
        ("INCRBYFLOAT", "f", "0.1"), ("INCRBYFLOAT", "f", "0.1"), ("INCRBYFLOAT", "f", "0.1"),
        ("INCRBYFLOAT", "f", "abc"), ("INCRBYFLOAT", "f", "inf"), ("INCRBYFLOAT", "f", "nan"),
        ("INCRBYFLOAT", "f", "1e308"), ("INCRBYFLOAT", "f", "1e5000"), ("INCRBYFLOAT", "f", " 1"),
        ("INCRBYFLOAT", "f", "0x1p3"), ("INCRBYFLOAT", "f", "-1.5e-3"), ("INCRBYFLOAT", "f", "3."),
        ("SET", "g", "10.5"), ("INCRBYFLOAT", "g", "0.1"), ("INCRBYFLOAT", "g", "-10.6"),
        ("SET", "h", "5.0e3"), ("INCRBYFLOAT", "h", "2.0e2"), ("INCRBYFLOAT", "ttl", "1.5"), ("TTL", "ttl"),
        ("ZADD", "z", "1", "a"), ("INCR", "z"), ("INCRBYFLOAT", "z", "1"), ("APPEND", "z", "x"), ("GETEX", "z"),
        ("GETDEL", "z"), ("GETSET", "z", "x"), ("STRLEN", "z"), ("MGET", "z"), ("SETRANGE", "z", "0", "x"),
        ("GETRANGE", "z", "0", "1"), ("SETNX", "z", "x"), ("MSET", "z", "x"), ("TYPE", "z"),
    )  # fmt: skip


def test_key_commands_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("SET", "s", "v", "EX", "100"), ("ZADD", "z", "1", "a", "2", "b"),
        ("RENAME", "s", "s2"), ("TTL", "s2"), ("EXISTS", "s"), ("RENAME", "missing", "x"), ("RENAME", "s2", "s2"),
        ("RENAMENX", "s2", "z"), ("RENAMENX", "s2", "s2"), ("RENAMENX", "missing", "x"), ("RENAMENX", "s2", "s3"),
        ("RENAME", "z", "s3"), ("TYPE", "s3"), ("ZRANGE", "s3", "0", "-1", "WITHSCORES"),
        ("COPY", "s3", "c"), ("COPY", "s3", "c"), ("SET", "t", "x"), ("COPY", "t", "c", "REPLACE"), ("GET", "c"),
        ("COPY", "t", "t"), ("COPY", "t", "u", "DB", "0"), ("COPY", "t", "u", "DB", "x"), ("COPY", "t", "u", "FOO"),
        ("COPY", "missing", "u"), ("COPY", "t", "u", "DB"), ("ZADD", "s3", "5", "c"), ("ZCARD", "s3"),
        ("TOUCH", "t", "u", "missing"), ("DBSIZE",),
    )  # fmt: skip


def test_randomkey_and_time(server):
    with server.redis() as client:
        client.flushall()
        assert client.randomkey() is None
        client.set("only", "x")
        assert client.randomkey() == b"only"
        client.set("gone", "x", px=1)
        client.mset({f"k{i}": i for i in range(100)})
        seen = {client.randomkey() for _ in range(300)}
        assert len(seen) > 20 and b"gone" not in seen
        seconds, microseconds = client.time()
        assert seconds > 1_700_000_000 and 0 <= microseconds < 1_000_000


# --- SCAN ----------------------------------------------------------------------------


@pytest.mark.readme("SCAN")
def test_scan_returns_every_key_once_and_its_options_filter(server):
    with server.redis() as client:
        client.flushall()
        client.mset({f"key:{i}": i for i in range(5000)})
        client.zadd("zset:1", {"a": 1})
        found = []
        cursor = 0
        calls = 0
        while True:
            cursor, keys = client.scan(cursor, count=100)
            found += keys
            calls += 1
            if cursor == 0:
                break
        assert sorted(found) == sorted([f"key:{i}".encode() for i in range(5000)] + [b"zset:1"])
        assert calls > 20  # a few keys per call, not all at once
        expected = {f"key:{i}".encode() for i in range(5000) if str(i).startswith("12")}
        assert set(client.scan_iter(match="key:12*", count=1000)) == expected
        assert list(client.scan_iter(_type="zset", count=1000)) == [b"zset:1"]
        assert list(client.scan_iter(_type="list", count=1000)) == []


@pytest.mark.readme("SCAN")
def test_scan_while_keys_are_written_returns_every_key_present_throughout(server):
    """Each call adds keys, so the table doubles (progressively) in the middle of the scan."""
    with server.redis() as client:
        client.flushall()
        client.mset({f"old:{i}": i for i in range(2000)})
        found = set()
        cursor, batch = 0, 0
        while True:
            client.mset({f"new:{batch}:{i}": i for i in range(200)})
            client.delete(f"old:{batch}")  # some old keys go: they may or may not be returned
            batch += 1
            cursor, keys = client.scan(cursor, count=50)
            found.update(keys)
            if cursor == 0:
                break
        present_throughout = {f"old:{i}".encode() for i in range(batch, 2000)}
        assert present_throughout <= found


def test_zscan_small_sets_like_redis_and_large_sets_whole(empty_pair, server):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "small", "1", "a", "2.5", "b", "-inf", "c", "0.1", "d"), ("ZSCAN", "small", "0"),
        ("ZSCAN", "small", "0", "MATCH", "[ab]"), ("ZSCAN", "small", "0", "COUNT", "1"), ("ZSCAN", "missing", "0"),
        ("ZSCAN", "small", "x"), ("ZSCAN", "small", "0", "COUNT", "0"), ("ZSCAN", "small", "0", "TYPE", "zset"),
        ("SET", "s", "v"), ("ZSCAN", "s", "0"), ("SCAN", "x"), ("SCAN", "0", "COUNT"), ("SCAN", "0", "FOO", "1"),
        ("SCAN", "18446744073709551616"), ("SCAN", "0", "COUNT", "-1"),
    )  # fmt: skip
    with server.redis() as client:
        members = {f"member:{i}": i / 4 for i in range(1000)}
        client.zadd("large", members)
        assert dict(client.zscan_iter("large", count=50)) == {name.encode(): score for name, score in members.items()}


# --- random sequences --------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c"])
values = st.sampled_from(["", "0", "1", "-1", "10", "x", "hello", "1.5", "9223372036854775807"])
numbers = st.sampled_from(["0", "1", "-1", "2", "100", "-9223372036854775808", "x", "1.5"])
offsets = st.sampled_from(["0", "1", "3", "-1", "-3", "10"])
string_commands = st.one_of(
    st.tuples(st.sampled_from(["GET", "GETDEL", "STRLEN", "INCR", "DECR", "EXISTS", "TYPE", "DEL"]), keys),
    st.tuples(st.sampled_from(["SET", "SETNX", "GETSET", "APPEND"]), keys, values),
    st.tuples(st.sampled_from(["INCRBY", "DECRBY"]), keys, numbers),
    st.tuples(st.just("INCRBYFLOAT"), keys, st.sampled_from(["0.1", "-0.25", "3", "1e3", "x"])),
    st.tuples(st.just("GETRANGE"), keys, offsets, offsets),
    st.tuples(st.just("SETRANGE"), keys, st.sampled_from(["0", "2", "5"]), values),
    st.tuples(st.just("MSET"), keys, values, keys, values),
    st.tuples(st.just("MSETNX"), keys, values, keys, values),
    st.tuples(st.just("MGET"), keys, keys, keys),
    st.tuples(st.sampled_from(["RENAME", "RENAMENX", "COPY"]), keys, keys),
    st.tuples(st.just("ZADD"), keys, st.just("1"), st.just("m")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(string_commands, min_size=1, max_size=25))
def test_random_sequences_match_redis(empty_pair, sequence):
    assert_same_sequence(empty_pair, ("a", "b", "c"), sequence)


@pytest.mark.readme("Persistence of the new commands")
def test_new_writes_are_logged_with_absolute_deadlines(server, tmp_path):
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with ours.redis() as client:
        client.execute_command("SETEX", "setex", 1000, "v")  # redis-py deprecates its setex()
        client.psetex("psetex", 1_000_000, "v")
        client.set("getex", "v")
        client.getex("getex", ex=2000)
        client.incrbyfloat("float", "0.1")
        client.incrbyfloat("float", "0.2")
        client.mset({"m1": "1", "m2": "2"})
        client.append("m1", "x")
        client.setrange("m2", 3, "y")
        client.rename("m2", "renamed")
        client.copy("renamed", "copied")
        expected = state(client)
    ours.crash()
    with open(tmp_path / "appendonlydir" / "appendonly.aof.1.incr.aof", "rb") as log:
        names = [args[0].lower() for args in CommandReader(log, "incr").commands()]
    assert not {b"setex", b"psetex", b"getex"} & set(names)  # as SET ... PXAT and PEXPIREAT
    assert names.count(b"set") == 3 and names.count(b"pexpireat") == 1
    again = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with again.redis() as client:
        assert state(client) == expected
        assert client.get("float") == b"0.3"
    again.stop()


# --- sorted sets ---------------------------------------------------------------------


@pytest.mark.readme("Sorted sets")
def test_sorted_set_commands_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "2"), ("ZPOPMIN", "z", "0"), ("ZPOPMIN", "z", "-1"), ("ZPOPMIN", "z", "x"),
        ("ZPOPMIN", "z", "1", "2"), ("ZPOPMIN", "missing"), ("ZPOPMIN", "missing", "3"), ("ZPOPMAX", "z", "10"),
        ("EXISTS", "z"), ("SET", "s", "v"), ("ZPOPMIN", "s"),
        ("ZADD", "z1", "1", "a", "2", "b"), ("ZADD", "z2", "5", "x"),
        ("ZMPOP", "2", "missing", "z1", "MIN"), ("ZMPOP", "2", "z1", "z2", "MAX", "COUNT", "5"),
        ("ZMPOP", "1", "missing", "MIN"), ("ZMPOP", "0", "z2", "MIN"), ("ZMPOP", "x", "z2", "MIN"),
        ("ZMPOP", "1", "z2", "MID"), ("ZMPOP", "1", "z2", "MIN", "COUNT", "0"), ("ZMPOP", "1", "z2", "MIN", "COUNT"),
        ("ZMPOP", "1", "z2", "MIN", "COUNT", "1", "COUNT", "1"), ("ZMPOP", "3", "z2", "MIN"), ("ZMPOP", "1", "s", "MIN"),
        ("ZMPOP", "1", "z2", "MIN", "FOO"), ("ZMPOP", "1", "z2", "MAX"),
        ("ZADD", "r", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZREMRANGEBYRANK", "r", "0", "0"), ("ZREMRANGEBYRANK", "r", "-2", "-1"), ("ZREMRANGEBYRANK", "r", "5", "1"),
        ("ZREMRANGEBYRANK", "r", "x", "1"), ("ZRANGE", "r", "0", "-1", "WITHSCORES"),
        ("ZREMRANGEBYSCORE", "r", "(2", "3"), ("ZREMRANGEBYSCORE", "r", "x", "3"), ("ZREMRANGEBYSCORE", "r", "-inf", "+inf"),
        ("EXISTS", "r"), ("ZREMRANGEBYSCORE", "missing", "0", "1"), ("ZREMRANGEBYRANK", "s", "0", "1"),
        ("ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "f", "0", "g"),
        ("ZRANGEBYLEX", "l", "-", "+"), ("ZRANGEBYLEX", "l", "[b", "(e"), ("ZRANGEBYLEX", "l", "(b", "[e"),
        ("ZRANGEBYLEX", "l", "[b", "[b"), ("ZRANGEBYLEX", "l", "(b", "(b"), ("ZRANGEBYLEX", "l", "+", "-"),
        ("ZRANGEBYLEX", "l", "-", "[c", "LIMIT", "1", "1"), ("ZRANGEBYLEX", "l", "-", "+", "LIMIT", "2", "-1"),
        ("ZRANGEBYLEX", "l", "-", "+", "LIMIT", "-1", "2"), ("ZRANGEBYLEX", "l", "-", "+", "LIMIT", "10", "2"),
        ("ZRANGEBYLEX", "l", "b", "c"), ("ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"), ("ZRANGEBYLEX", "l", "-", "+", "FOO"),
        ("ZRANGEBYLEX", "l", "-", "+", "LIMIT", "x", "1"), ("ZRANGEBYLEX", "l", "-", "+", "LIMIT", "1"),
        ("ZREVRANGEBYLEX", "l", "+", "-"), ("ZREVRANGEBYLEX", "l", "[e", "(b"), ("ZREVRANGEBYLEX", "l", "+", "-", "LIMIT", "1", "2"),
        ("ZREVRANGEBYLEX", "l", "-", "+"), ("ZRANGEBYLEX", "missing", "-", "+"), ("ZRANGEBYLEX", "s", "-", "+"),
        ("ZLEXCOUNT", "l", "-", "+"), ("ZLEXCOUNT", "l", "[c", "(f"), ("ZLEXCOUNT", "l", "x", "+"), ("ZLEXCOUNT", "missing", "-", "+"),
        ("ZREMRANGEBYLEX", "l", "[b", "[c"), ("ZREMRANGEBYLEX", "l", "x", "+"), ("ZRANGEBYLEX", "l", "-", "+"),
        ("ZREMRANGEBYLEX", "l", "-", "+"), ("EXISTS", "l"), ("ZADD", "m", "0", "", "0", "\x00", "0", "\xff"),
        ("ZRANGEBYLEX", "m", "[", "+"), ("ZRANGEBYLEX", "m", "(", "[\xff"),
    )  # fmt: skip


lex_members = st.sampled_from(["", "a", "aa", "ab", "b", "ba", "c", "z"])
lex_bounds = st.one_of(st.sampled_from(["-", "+"]), st.tuples(st.sampled_from(["[", "("]), lex_members).map("".join))
zset_commands = st.one_of(
    st.tuples(st.just("ZADD"), st.just("z"), st.just("0"), lex_members),
    st.tuples(st.just("ZREM"), st.just("z"), lex_members),
    st.tuples(st.sampled_from(["ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX"]), st.just("z"),
              lex_bounds, lex_bounds),  # fmt: skip
    st.tuples(st.sampled_from(["ZRANGEBYLEX", "ZREVRANGEBYLEX"]), st.just("z"), lex_bounds, lex_bounds,
              st.just("LIMIT"), st.integers(-1, 3).map(str), st.integers(-1, 3).map(str)),  # fmt: skip
    st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), st.just("z"), st.integers(0, 3).map(str)),
    st.tuples(st.just("ZREMRANGEBYRANK"), st.just("z"), st.integers(-4, 4).map(str), st.integers(-4, 4).map(str)),
    st.tuples(st.just("ZRANGE"), st.just("z"), st.just("0"), st.just("-1")),
    st.tuples(st.just("ZRANGE"), st.just("z"), lex_bounds, lex_bounds, st.just("BYLEX"), st.sampled_from(["REV", "BYLEX"])),
    st.tuples(st.just("ZRANGESTORE"), st.just("d"), st.just("z"), lex_bounds, lex_bounds, st.just("BYLEX")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(zset_commands, min_size=1, max_size=25))
def test_random_lexicographic_sequences_match_redis(empty_pair, sequence):
    assert_same_sequence(empty_pair, ("z", "d"), sequence)


encoded_members = st.sampled_from(["a", "b", "c", "d", "long member"])  # 11 bytes: past zset-max-listpack-value 8
encoded_keys = st.sampled_from(["z", "w"])
encoding_commands = st.one_of(
    st.tuples(st.just("ZADD"), encoded_keys, st.sampled_from(["1", "2", "0.5"]), encoded_members),
    st.tuples(st.just("ZADD"), encoded_keys, st.just("1"), encoded_members, st.just("2"), encoded_members),
    st.tuples(st.sampled_from(["ZREM", "ZSCORE", "ZRANK"]), encoded_keys, encoded_members),
    st.tuples(st.just("ZINCRBY"), encoded_keys, st.just("1"), encoded_members),
    st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), encoded_keys),
    st.tuples(st.just("OBJECT"), st.just("ENCODING"), st.sampled_from(["z", "w", "d", "c"])),
    st.tuples(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), st.just("d"), st.just("2"), encoded_keys,
              encoded_keys),  # fmt: skip
    st.tuples(st.just("ZRANGESTORE"), st.just("d"), encoded_keys, st.just("0"), st.sampled_from(["1", "-1"])),
    st.tuples(st.just("COPY"), encoded_keys, st.just("c"), st.just("REPLACE")),
    st.tuples(st.just("ZRANGE"), st.sampled_from(["z", "d", "c"]), st.just("0"), st.just("-1"), st.just("WITHSCORES")),
    st.tuples(st.just("ZRANGEBYSCORE"), encoded_keys, st.just("(0.5"), st.just("+inf"), st.just("LIMIT"), st.just("1"),
              st.just("2")),  # fmt: skip
)  # not ZSCAN: an indexed set comes back in hash order, which differs from Redis's


@pytest.mark.readme("Small sorted sets")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(encoding_commands, min_size=1, max_size=30))
def test_encodings_follow_redis_rules(empty_pair, sequence):
    """With thresholds small enough to cross, every reply and OBJECT
    ENCODING match Redis's: flat while small, converted when a set or a
    member grows past them, stored results and copies alike. (ZSCAN of a
    flat set, whole and in order: test_zscan_small_sets_like_redis...)"""
    limits = {"zset-max-listpack-entries": "3", "zset-max-listpack-value": "8"}
    try:
        for client in empty_pair:
            for name, value in limits.items():
                assert client.command("CONFIG", "SET", name, value) == b"+OK\r\n"
        assert_same_sequence(empty_pair, ("z", "w", "d", "c"), sequence)
    finally:
        for client in empty_pair:
            client.command("CONFIG", "SET", "zset-max-listpack-entries", "128", "zset-max-listpack-value", "64")


@pytest.mark.readme("Small sorted sets")
def test_object_and_the_encoding_settings_match_redis(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "z", "1", "a"), ("OBJECT", "ENCODING", "z"), ("OBJECT", "ENCODING", "missing"),
        ("OBJECT", "FREQ", "z"), ("OBJECT", "FREQ", "missing"), ("OBJECT", "ENCODING"), ("OBJECT", "ENCODING", "z", "x"),
        ("OBJECT", "FREQ"), ("OBJECT", "HELP", "x"), ("OBJECT", "FOO", "z"), ("OBJECT",),
        ("CONFIG", "GET", "zset-max-listpack-entries"), ("CONFIG", "GET", "zset-max-ziplist-value"),
        ("CONFIG", "SET", "zset-max-listpack-entries", "x"), ("CONFIG", "SET", "zset-max-ziplist-value", "abc"),
        ("CONFIG", "SET", "zset-max-ziplist-entries", "0"), ("ZADD", "y", "1", "a"), ("OBJECT", "ENCODING", "y"),
        ("CONFIG", "SET", "zset-max-ziplist-entries", "128"), ("CONFIG", "GET", "zset-max-listpack-entries"),
        ("ZADD", "x", "1", "a" * 64), ("OBJECT", "ENCODING", "x"), ("ZADD", "x", "1", "a" * 65), ("OBJECT", "ENCODING", "x"),
    )  # fmt: skip


@pytest.mark.readme("Small sorted sets")
def test_the_flat_form_is_capped_so_a_write_stays_cheap(server):
    """Redis accepts any zset-max-listpack-entries; a flat write moves every
    entry, so we refuse a count past MAX_FLAT_ENTRIES rather than let one
    client make every write to a big flat set cost milliseconds."""
    with server.redis() as client:
        with pytest.raises(redis.ResponseError, match="between 0 and 8192 inclusive"):
            client.config_set("zset-max-listpack-entries", 8193)
        try:
            client.config_set("zset-max-listpack-entries", 8192)
            client.zadd("big", {f"m{i}": i for i in range(8193)})
            assert client.object("encoding", "big") == b"skiplist"
            client.zadd("flat", {f"m{i}": i for i in range(8192)})
            assert client.object("encoding", "flat") == b"listpack"
        finally:
            client.config_set("zset-max-listpack-entries", 128)


@pytest.mark.readme("Sorted sets")
def test_set_operations_edge_cases(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "a", "1", "x", "2", "y", "3", "z"), ("ZADD", "b", "10", "y", "20", "z", "30", "w"),
        ("ZADD", "c", "inf", "x", "-inf", "y", "0.5", "z"), ("SET", "s", "v"),
        ("ZUNION", "2", "a", "b"), ("ZUNION", "2", "a", "b", "WITHSCORES"), ("ZINTER", "2", "a", "b", "WITHSCORES"),
        ("ZDIFF", "2", "a", "b", "WITHSCORES"), ("ZDIFF", "2", "b", "a"),
        ("ZUNION", "2", "a", "b", "WEIGHTS", "2", "0.5", "WITHSCORES"), ("ZUNION", "2", "a", "b", "WEIGHTS", "1"),
        ("ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"), ("ZUNION", "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZUNION", "2", "a", "b", "AGGREGATE", "MAX", "WITHSCORES"), ("ZUNION", "2", "a", "b", "AGGREGATE", "AVG"),
        ("ZUNION", "3", "a", "b", "c", "WITHSCORES"), ("ZINTER", "3", "a", "b", "c", "WITHSCORES"),
        ("ZUNION", "2", "c", "c", "WITHSCORES"), ("ZINTER", "2", "c", "c", "WEIGHTS", "0", "1", "WITHSCORES"),
        ("ZUNION", "2", "a", "missing", "WITHSCORES"), ("ZINTER", "2", "a", "missing"), ("ZDIFF", "1", "missing"),
        ("ZUNION", "0", "a"), ("ZUNION", "-1", "a"), ("ZUNION", "x", "a"), ("ZUNION", "3", "a", "b"),
        ("ZUNION", "2", "a", "s"), ("ZDIFF", "2", "a", "b", "WEIGHTS", "1", "1"), ("ZDIFF", "2", "a", "b", "AGGREGATE", "MIN"),
        ("ZUNION", "1", "a", "FOO"), ("ZINTER", "1", "a", "WITHSCORES", "WITHSCORES"),
        ("ZUNIONSTORE", "d", "2", "a", "b"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZUNIONSTORE", "d", "2", "a", "b", "WITHSCORES"), ("ZINTERSTORE", "d", "2", "a", "b", "AGGREGATE", "MAX"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZDIFFSTORE", "d", "2", "a", "b"), ("ZRANGE", "d", "0", "-1"),
        ("ZDIFFSTORE", "d", "2", "b", "a"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZADD", "one", "1", "y"),
        ("ZDIFFSTORE", "d", "2", "a", "one"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),  # the first set is not the smallest
        ("SET", "e", "v", "EX", "100"), ("ZUNIONSTORE", "e", "1", "a"), ("TTL", "e"), ("TYPE", "e"),
        ("ZINTERSTORE", "e", "2", "a", "missing"), ("EXISTS", "e"), ("ZUNIONSTORE", "a", "2", "a", "b"),
        ("ZRANGE", "a", "0", "-1", "WITHSCORES"), ("ZUNIONSTORE", "d", "0", "a"), ("ZINTERSTORE", "d", "1", "s"),
        ("ZINTERCARD", "2", "a", "b"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "1"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "0"),
        ("ZINTERCARD", "2", "a", "b", "LIMIT", "-1"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "x"),
        ("ZINTERCARD", "2", "a", "b", "WITHSCORES"), ("ZINTERCARD", "0", "a"), ("ZINTERCARD", "1", "missing"),
        # 0 * inf is NaN: Redis zeroes the first source's product, and a sum that a later NaN joins.
        ("ZADD", "p", "1", "a"), ("ZADD", "q", "0", "a"),
        ("ZINTER", "3", "p", "p", "q", "WEIGHTS", "0", "1", "inf", "AGGREGATE", "SUM", "WITHSCORES"),
        ("ZINTER", "3", "p", "p", "q", "WEIGHTS", "0", "1", "inf", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZINTER", "3", "p", "p", "q", "WEIGHTS", "0", "1", "inf", "AGGREGATE", "MAX", "WITHSCORES"),
        ("ZINTER", "2", "q", "p", "WEIGHTS", "inf", "1", "WITHSCORES"), ("ZINTER", "2", "p", "q", "WEIGHTS", "-inf", "inf", "WITHSCORES"),
        ("ZUNION", "3", "p", "p", "q", "WEIGHTS", "0", "1", "inf", "AGGREGATE", "SUM", "WITHSCORES"),
        ("ZINTERSTORE", "d", "3", "p", "p", "q", "WEIGHTS", "0", "1", "inf"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    )  # fmt: skip


set_members = st.sampled_from(["a", "b", "c", "d"])
set_scores = st.sampled_from(["0", "1", "-1", "1.5", "inf", "-inf", "1e300"])
# Weights of 0 and infinity, often: their product with a score of 0 or inf is NaN.
set_weights = st.sampled_from(["0", "inf", "-inf", "1", "-1", "0.5"])
set_keys = st.sampled_from(["x", "y", "z"])
set_commands = st.one_of(
    st.tuples(st.just("ZADD"), set_keys, set_scores, set_members),
    st.tuples(st.sampled_from(["ZUNION", "ZINTER", "ZDIFF"]), st.just("2"), set_keys, set_keys, st.just("WITHSCORES")),
    st.tuples(st.sampled_from(["ZUNION", "ZINTER"]), st.just("3"), set_keys, set_keys, set_keys,
              st.just("WEIGHTS"), set_weights, set_weights, set_weights,
              st.just("AGGREGATE"), st.sampled_from(["SUM", "MIN", "MAX"]), st.just("WITHSCORES")),  # fmt: skip
    st.tuples(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), set_keys, st.just("2"), set_keys, set_keys),
    st.tuples(st.just("ZDIFFSTORE"), set_keys, st.just("3"), set_keys, set_keys, set_keys),
    st.tuples(st.just("ZINTERCARD"), st.just("2"), set_keys, set_keys),
    st.tuples(st.just("ZRANGE"), set_keys, st.just("0"), st.just("-1"), st.just("WITHSCORES")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(set_commands, min_size=1, max_size=20))
@example(sequence=[("ZADD", "x", "1", "a"), ("ZADD", "y", "0", "a"),  # found once by hypothesis
                   ("ZINTER", "3", "x", "x", "y", "WEIGHTS", "0", "1", "inf", "AGGREGATE", "SUM", "WITHSCORES")])
def test_random_set_operations_match_redis(empty_pair, sequence):
    assert_same_sequence(empty_pair, ("x", "y", "z"), sequence)


# --- blocking pops -------------------------------------------------------------------


def blocked_count(client) -> int:
    info = client.command("INFO", "clients").decode()
    return int(info.split("blocked_clients:")[1].split("\r\n")[0])


def wait_until_blocked(client, count: int) -> None:
    deadline = time.monotonic() + 10
    while blocked_count(client) != count:
        assert time.monotonic() < deadline, f"never {count} blocked clients"
        time.sleep(0.01)


def blocking_scenario(server) -> list[bytes]:
    """Three clients park on keys, in order; writes feed them; every reply, in order."""
    with server.connect() as a, server.connect() as b, server.connect() as c, server.connect() as writer:
        writer.command("DEL", "bz1", "bz2", "bz3")
        a.send(encode_command("BZPOPMIN", "bz1", "bz2", "0"))
        wait_until_blocked(writer, 1)
        b.send(encode_command("BZPOPMAX", "bz2", "0") + encode_command("PING", "after"))  # PING waits its turn
        wait_until_blocked(writer, 2)
        c.send(encode_command("BZMPOP", "0", "2", "bz3", "bz2", "MIN", "COUNT", "2"))
        wait_until_blocked(writer, 3)
        replies = [
            writer.command("SET", "bz3", "not a set"),  # wakes nobody
            writer.command("DEL", "bz3"),
            writer.command("ZADD", "bz2", "1", "a", "2", "b", "3", "c", "4", "d"),  # a first, then b, then c
            a.read_reply(), b.read_reply(), b.read_reply(), c.read_reply(),
            writer.command("ZRANGE", "bz2", "0", "-1", "WITHSCORES"),
            str(blocked_count(writer)).encode(),
            writer.command("BZPOPMIN", "bz2", "bz1", "0.01"),  # data there: no waiting
            writer.command("BZPOPMIN", "nothing", "0.05"),  # times out: nil
            writer.command("HELLO", "3")[:1], writer.command("BZMPOP", "0.05", "1", "nothing", "MAX"),
        ]  # fmt: skip
    return replies


@pytest.mark.readme("Blocking pops")
def test_a_parked_client_writes_nothing_behind_a_flush(server):
    """A client parked before a FLUSHALL is served by the first write after
    it, and its pop removes what it took and nothing else."""
    with server.connect() as parked, server.connect() as writer:
        writer.command("FLUSHALL")
        parked.send(encode_command("BZPOPMIN", "flushed", "0"))
        wait_until_blocked(writer, 1)
        writer.command("ZADD", "other", "1", "x")
        assert writer.command("FLUSHALL") == b"+OK\r\n"
        assert writer.command("DBSIZE") == b":0\r\n" and blocked_count(writer) == 1
        writer.command("SET", "a", "foo")
        writer.command("ZADD", "flushed", "1", "m")  # feeds the parked client: popped at once
        assert parked.read_reply() == b"*3\r\n$7\r\nflushed\r\n$1\r\nm\r\n$1\r\n1\r\n"
        assert writer.command("DBSIZE") == b":1\r\n"
        writer.command("FLUSHALL")


@pytest.mark.readme("Blocking pops")
def test_blocking_pops_match_redis_first_come_first_served(server, real_redis):
    assert blocking_scenario(server) == blocking_scenario(real_redis)


@pytest.mark.readme("Blocking pops")
def test_blocking_pop_errors_match_redis(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("SET", "s", "v"), ("BZPOPMIN", "s", "0"), ("BZPOPMIN", "k", "-1"), ("BZPOPMIN", "k", "x"),
        ("BZPOPMIN", "k", "inf"), ("BZPOPMIN", "k"), ("BZMPOP", "0", "0", "k", "MIN"), ("BZMPOP", "0", "1", "k", "MID"),
        ("BZMPOP", "x", "1", "k", "MIN"), ("BZMPOP", "0", "1", "k", "MIN", "COUNT", "0"),
        ("ZADD", "z", "1", "a", "2", "b"), ("BZPOPMAX", "missing", "z", "0"), ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "9"),
        ("BZPOPMIN", "missing", "0.001"),
    )  # fmt: skip


@pytest.mark.readme("Blocking pops")
def test_a_parked_client_that_hangs_up_is_forgotten_and_others_are_served(server):
    with server.connect() as watcher:
        for _ in range(20):
            gone = server.connect()
            gone.send(encode_command("BZPOPMIN", "forgotten", "0"))
            wait_until_blocked(watcher, 1)
            gone.close()
            wait_until_blocked(watcher, 0)
        assert watcher.command("ZADD", "forgotten", "1", "a") == b":1\r\n"
        assert watcher.command("ZCARD", "forgotten") == b":1\r\n"  # nobody took it
        assert watcher.command("DEL", "forgotten") == b":1\r\n"


@pytest.mark.readme("Blocking pops")
def test_a_served_pop_is_logged_as_zpopmin_after_the_write_that_fed_it(server, tmp_path):
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with ours.connect() as parked, ours.connect() as writer:
        parked.send(encode_command("BZPOPMIN", "queue", "0"))
        wait_until_blocked(writer, 1)
        writer.command("ZADD", "queue", "1", "job1", "2", "job2")
        assert parked.read_reply() == b"*3\r\n$5\r\nqueue\r\n$4\r\njob1\r\n$1\r\n1\r\n"
    ours.crash()
    with open(tmp_path / "appendonlydir" / "appendonly.aof.1.incr.aof", "rb") as log:
        commands = [args for args in CommandReader(log, "incr").commands() if args[0].lower() != b"select"]
    assert [args[0].lower() for args in commands] == [b"zadd", b"zpopmin"]
    again = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with again.redis() as client:
        assert client.zrange("queue", 0, -1) == [b"job2"]
    again.stop()


@pytest.mark.readme("Sorted sets")
def test_zrange_bylex_and_zrangestore_match_redis(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"), ("ZADD", "s", "1", "x", "2", "y", "3", "z"),
        ("ZRANGE", "l", "[b", "(e", "BYLEX"), ("ZRANGE", "l", "(e", "[b", "BYLEX", "REV"),
        ("ZRANGE", "l", "-", "+", "BYLEX", "LIMIT", "1", "2"), ("ZRANGE", "l", "+", "-", "BYLEX", "REV", "LIMIT", "0", "2"),
        ("ZRANGE", "l", "-", "+", "BYLEX", "WITHSCORES"), ("ZRANGE", "l", "b", "c", "BYLEX"),
        ("ZRANGE", "l", "-", "+", "BYLEX", "BYSCORE"), ("ZRANGE", "s", "0", "-1", "LIMIT", "0", "1"),
        ("ZRANGE", "s", "0", "-1", "LIMIT", "0", "-1"), ("ZRANGE", "s", "(1", "3", "BYSCORE", "WITHSCORES"),
        ("ZRANGE", "s", "3", "(1", "BYSCORE", "REV", "LIMIT", "0", "1"), ("ZRANGE", "s", "0", "1", "REV", "REV"),
        ("ZRANGE", "s", "x", "1"), ("ZRANGE", "s", "0", "-1", "REV", "WITHSCORES"),
        ("ZRANGESTORE", "d", "s", "0", "1"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "d", "s", "(1", "+inf", "BYSCORE", "LIMIT", "0", "1"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "d", "l", "[c", "+", "BYLEX"), ("ZRANGE", "d", "0", "-1"),
        ("ZRANGESTORE", "d", "s", "0", "-1", "WITHSCORES"), ("ZRANGESTORE", "d", "missing", "0", "-1"), ("EXISTS", "d"),
        ("SET", "str", "v"), ("ZRANGESTORE", "d", "str", "0", "-1"), ("ZRANGESTORE", "str", "s", "0", "0"),
        ("TYPE", "str"), ("ZRANGESTORE", "d", "s", "5", "9"), ("ZRANGESTORE", "d", "s", "x", "1", "BYSCORE"),
    )  # fmt: skip


@pytest.mark.readme("Sorted sets")
def test_zrandmember_errors_match_redis_and_draws_are_random(empty_pair, server):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "one", "1", "a"), ("ZRANDMEMBER", "one"), ("ZRANDMEMBER", "one", "5"), ("ZRANDMEMBER", "one", "-3"),
        ("ZRANDMEMBER", "one", "-2", "WITHSCORES"), ("ZRANDMEMBER", "one", "0"), ("ZRANDMEMBER", "missing"),
        ("ZRANDMEMBER", "missing", "3"), ("ZRANDMEMBER", "one", "x"), ("ZRANDMEMBER", "one", "1", "FOO"),
        ("ZRANDMEMBER", "one", "1", "WITHSCORES", "x"), ("ZRANDMEMBER", "one", "-9223372036854775808"),
        ("ZRANDMEMBER", "one", "-9223372036854775807", "WITHSCORES"), ("SET", "s", "v"), ("ZRANDMEMBER", "s"),
    )  # fmt: skip
    with server.redis() as client:
        client.zadd("many", {f"m{i}": i for i in range(100)})
        distinct = client.zrandmember("many", 10)
        assert len(distinct) == len(set(distinct)) == 10
        assert len(client.zrandmember("many", 500)) == 100
        draws = client.zrandmember("many", -2000)
        assert len(draws) == 2000 and len(set(draws)) > 80  # repeats allowed, and spread
        pairs = client.zrandmember("many", 3, withscores=True)
        assert all(float(score) == int(member[1:]) for member, score in zip(pairs[0::2], pairs[1::2]))
        assert len({client.zrandmember("many") for _ in range(200)}) > 50


@pytest.mark.readme("Blocking pops")
def test_the_idle_timeout_spares_a_blocked_client(server):
    """timeout 1: a client blocked in BZPOPMIN for 2.5 s is not idle (as
    Redis): the push reaches it; an idle client beside it is closed."""
    with server.redis() as admin, server.connect() as blocked, server.connect() as idle:
        previous = admin.config_get("timeout")["timeout"]
        admin.delete("idle:zset")
        try:
            admin.config_set("timeout", 1)
            blocked.send(encode_command("BZPOPMIN", "idle:zset", "0"))
            time.sleep(2.5)
            admin.zadd("idle:zset", {"m": 1})
            assert blocked.read_reply() == b"*3\r\n$9\r\nidle:zset\r\n$1\r\nm\r\n$1\r\n1\r\n"
            assert idle.is_closed_by_server()
        finally:
            admin.config_set("timeout", previous)
