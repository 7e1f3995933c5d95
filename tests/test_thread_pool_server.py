"""Chapter 14 on: large sorted sets are freed on a worker thread. The server
runs with a small threshold so the tests' sets take that path; a worker
that failed would print a traceback, which the server fixture rejects."""

import time

import pytest

from tests.support import assert_same_replies

pytestmark = [pytest.mark.since(14), pytest.mark.server_args("--lazy-free-threshold", "10"), pytest.mark.readme("The pool")]


def fill(client, key: str, members: int) -> None:
    pipe = client.pipeline(transaction=False)
    for start in range(0, members, 500):
        pipe.zadd(key, {f"m{i}": i for i in range(start, min(start + 500, members))})
    pipe.execute()


@pytest.mark.parametrize("command", ["DEL", "UNLINK"])
def test_deleting_a_large_sorted_set(server, key, command):
    with server.redis() as client:
        fill(client, key(), 20_000)
        fill(client, key("small"), 5)
        assert client.execute_command(command, key(), key("small"), key("missing")) == 2
        assert client.exists(key(), key("small")) == 0
        assert client.zcard(key()) == 0
        # The key can be used again at once, by a set of its own.
        client.zadd(key(), {"fresh": 1})
        assert client.zrange(key(), 0, -1, withscores=True) == [(b"fresh", 1.0)]
        assert client.ping()


@pytest.mark.parametrize("mode", ["ASYNC", "SYNC"])
def test_flushall(server, mode):
    with server.redis() as client:
        for i in range(3):
            fill(client, f"set{i}", 5_000)
        client.set("string", "v", ex=100)
        assert client.execute_command("FLUSHALL", mode) is True
        assert client.dbsize() == 0
        assert client.keys("*") == []
        assert client.ttl("string") == -2
        client.set("after", "v", px=100_000)
        assert client.ttl("after") > 0


def test_nothing_writes_behind_a_flush(server):
    """After FLUSHALL, in either mode, the keys are the ones written since,
    while a worker still frees large sets and keys with a TTL fall due:
    neither a lazy free nor an expiry may bring a key back or count one.
    (A flaky DBSIZE of 3 for 2 keys was seen once in redis-py's tests.)"""
    with server.redis() as client:
        for mode in ["ASYNC", "SYNC"] * 5:
            for i in range(3):
                fill(client, f"set{i}", 5_000)
            pipe = client.pipeline(transaction=False)
            for i in range(2_000):
                pipe.set(f"ttl:{i}", "v", px=1 + i % 20)
            pipe.execute()
            assert client.execute_command("FLUSHALL", mode) is True
            client.set("a", "foo")
            client.set("b", "bar")
            for _ in range(5):  # while the worker frees and the deadlines pass
                assert client.dbsize() == 2
                time.sleep(0.005)
            assert sorted(client.keys("*")) == [b"a", b"b"]
        client.flushall()


def test_overwriting_a_large_set(server, key):
    with server.redis() as client:
        fill(client, key(), 5_000)
        client.set(key(), "now a string")
        assert client.get(key()) == b"now a string"


def test_unlink_and_async_flush_match_redis(empty_pair):
    members = [item for i in range(50) for item in (str(i), f"m{i}")]
    assert_same_replies(
        *empty_pair,
        ("ZADD", "z", *members),
        ("SET", "s", "v"),
        ("UNLINK", "z", "missing", "z", "s"),
        ("EXISTS", "z", "s"),
        ("UNLINK",),
        ("ZADD", "z", *members),
        ("FLUSHALL", "ASYNC"),
        ("DBSIZE",),
        ("ZADD", "z", *members),
        ("FLUSHDB", "async"),
        ("ZCARD", "z"),
        ("FLUSHALL", "ASYNC", "x"),
        ("FLUSHALL", "LATER"),
        ("FLUSHALL", "SYNC"),
    )
