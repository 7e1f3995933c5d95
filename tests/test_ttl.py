"""Chapter 13 on: keys with a time to live.

Replies that do not depend on the clock are compared with real Redis. For
keys that must vanish, tests wait for them with a generous deadline and
never assert how fast anything happened: expiry is checked, not timed.
"""

import time

import pytest

from tests.support import assert_same_replies

pytestmark = [pytest.mark.since(13), pytest.mark.readme("The commands, with Redis 7's edge cases")]

FAR_FUTURE = 4_000_000_000  # Unix seconds, in 2096
PAST = 1_000_000_000  # Unix seconds, in 2001


def test_expire_family_matches_redis(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("SET", "k", "v"),
        ("TTL", "k"),
        ("PTTL", "k"),
        ("TTL", "missing"),
        ("EXPIRE", "missing", "100"),
        ("EXPIRE", "k", "100"),
        ("TTL", "k"),
        ("EXPIRE", "k", "200", "NX"),
        ("EXPIRE", "k", "200", "XX"),
        ("EXPIRE", "k", "100", "GT"),
        ("EXPIRE", "k", "300", "GT"),
        ("EXPIRE", "k", "400", "LT"),
        ("EXPIRE", "k", "250", "lt"),
        ("TTL", "k"),
        ("EXPIREAT", "k", str(FAR_FUTURE)),
        ("EXPIRETIME", "k"),
        ("PEXPIRETIME", "k"),
        ("PEXPIREAT", "k", str(FAR_FUTURE * 1000 + 123)),
        ("PEXPIRETIME", "k"),
        ("PERSIST", "k"),
        ("PERSIST", "k"),
        ("TTL", "k"),
        ("EXPIRETIME", "k"),
        ("EXPIREAT", "k", str(FAR_FUTURE), "LT"),  # no TTL counts as infinite: LT passes
        ("EXPIREAT", "k", str(FAR_FUTURE), "GT"),  # equal: GT fails (absolute times, so no clock race)
        ("EXPIREAT", "k", str(FAR_FUTURE + 1), "GT"),
        ("PERSIST", "k"),
        ("EXPIRE", "k", "100", "GT"),  # no TTL: GT always fails
        ("EXPIRE", "k", "x"),
        ("EXPIRE", "k", "10", "NX", "XX"),
        ("EXPIRE", "k", "10", "GT", "LT"),
        ("EXPIRE", "k", "10", "FOO"),
        ("EXPIRE", "k", "9223372036854775807"),
        ("PEXPIRE", "k", "9223372036854775807"),
        ("EXPIREAT", "k", "9223372036854775"),
        ("EXPIRE", "k", "-1"),
        ("EXISTS", "k"),
        ("SET", "k", "v"),
        ("PEXPIREAT", "k", str(PAST * 1000)),
        ("GET", "k"),
        ("TTL",),
        ("EXPIRE", "k"),
    )


def test_set_options_match_redis(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("SET", "k", "v", "EX", "100"),
        ("TTL", "k"),
        ("SET", "k", "v2", "KEEPTTL"),
        ("TTL", "k"),
        ("SET", "k", "v3"),
        ("TTL", "k"),
        ("SET", "k", "v", "PX", "100000"),
        ("TTL", "k"),
        ("SET", "k", "v", "EXAT", str(FAR_FUTURE)),
        ("EXPIRETIME", "k"),
        ("SET", "k", "v", "PXAT", str(FAR_FUTURE * 1000)),
        ("EXPIRETIME", "k"),
        ("SET", "k", "v", "EX", "10", "EX", "100"),
        ("TTL", "k"),
        ("SET", "k", "new", "NX"),
        ("SET", "k", "new", "XX", "GET"),
        ("SET", "other", "x", "XX"),
        ("SET", "other", "x", "NX", "GET"),
        ("SET", "other", "y", "NX", "GET"),
        ("GET", "other"),
        ("SET", "k", "v", "NX", "XX"),
        ("SET", "k", "v", "EX", "10", "PX", "100"),
        ("SET", "k", "v", "EX", "10", "KEEPTTL"),
        ("SET", "k", "v", "KEEPTTL", "EX", "10"),
        ("SET", "k", "v", "EX"),
        ("SET", "k", "v", "EX", "0"),
        ("SET", "k", "v", "EX", "-5"),
        ("SET", "k", "v", "EX", "x"),
        ("SET", "k", "v", "EX", "9223372036854775807"),
        ("SET", "k", "v", "PX", "9223372036854775807"),
        ("SET", "k", "v", "FOO"),
        ("SET", "k", "v", "PXAT", str(PAST * 1000)),
        ("GET", "k"),
        ("ZADD", "z", "1", "a"),
        ("SET", "z", "v", "GET"),
        ("EXPIRE", "z", "100"),
        ("ZADD", "z", "2", "b"),
        ("TTL", "z"),
        ("SET", "z", "string now"),
        ("TTL", "z"),
    )


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll `condition` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_key_expires(server, key):
    with server.connect() as client:
        assert client.command("SET", key(), "v", "PX", "100") == b"+OK\r\n"
        assert client.command("PTTL", key()) != b":-1\r\n"
        assert wait_until(lambda: client.command("GET", key()) == b"$-1\r\n")
        assert client.command("TTL", key()) == b":-2\r\n"
        assert client.command("EXISTS", key()) == b":0\r\n"


def test_expired_keys_are_removed_without_being_touched(server):
    """Active expiration: DBSIZE counts keys without looking any up, so it
    drops only if the server removes expired keys by itself. Some keys
    keep no TTL, one is persisted, and those stay."""
    with server.redis() as client:
        client.flushall()
        pipe = client.pipeline(transaction=False)
        for i in range(5000):
            pipe.set(f"temp:{i}", i, px=50 + i % 100)
        for i in range(10):
            pipe.set(f"keep:{i}", i)
        pipe.set("saved", "x", px=100)
        pipe.persist("saved")
        pipe.execute()
        assert wait_until(lambda: client.dbsize() == 11)
        assert sorted(client.keys("*")) == sorted([b"saved"] + [f"keep:{i}".encode() for i in range(10)])
        client.flushall()


def test_a_deadline_weeks_away_keeps_the_server_running(server, key):
    """With no client connected, the loop's only timer is a key's deadline,
    25 days off: past what poll() accepts (2^31 ms), so it must sleep less."""
    with server.connect() as client:
        client.command("SET", key(), "v")
        assert client.command("EXPIRE", key(), "2200000") == b":1\r\n"
    time.sleep(0.2)  # the connection is gone: the loop sleeps on the deadline alone
    server.assert_alive()
    with server.connect() as client:
        assert client.command("TTL", key()) in (b":2200000\r\n", b":2199999\r\n")
        client.command("DEL", key())


def test_changing_a_ttl_moves_the_key_in_the_heap(server, key):
    with server.connect() as client:
        client.command("SET", key("soon"), "v", "PX", "100000")
        client.command("SET", key("late"), "v", "PX", "50")
        client.command("PEXPIRE", key("late"), "100000")  # the heap's top moves
        client.command("PEXPIRE", key("soon"), "50")
        assert wait_until(lambda: client.command("EXISTS", key("soon")) == b":0\r\n")
        assert client.command("EXISTS", key("late")) == b":1\r\n"
        client.command("DEL", key("late"))


def test_expired_keys_are_invisible_everywhere(server):
    with server.redis() as client:
        client.flushall()
        client.set("gone", "v", px=1)
        client.zadd("gonez", {"a": 1})
        client.pexpire("gonez", 1)
        time.sleep(0.05)
        assert client.keys("*") == []
        assert client.get("gone") is None
        assert client.zscore("gonez", "a") is None
        assert client.type("gone") == b"none"
        assert client.exists("gone", "gonez") == 0
