"""Chapter 11 on: sorted sets, compared reply for reply with real Redis,
in RESP2 and RESP3, by fixed scenarios and by random command sequences."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import assert_same_replies, assert_same_sequence

pytestmark = [pytest.mark.since(11), pytest.mark.readme("Redis's commands, Redis's replies")]


def test_zadd_options(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "z", "1", "a", "2", "b", "3", "c"),
        ("ZADD", "z", "1.5", "a", "2", "b", "4", "d"),
        ("ZADD", "z", "CH", "10", "a", "2", "b", "5", "e"),
        ("ZADD", "z", "NX", "100", "a", "6", "f"),
        ("ZADD", "z", "XX", "100", "a", "7", "g"),
        ("ZADD", "z", "XX", "CH", "101", "a"),
        ("ZADD", "z", "GT", "CH", "50", "a", "200", "b"),
        ("ZADD", "z", "LT", "CH", "50", "a", "1", "b"),
        ("ZADD", "z", "INCR", "5", "a"),
        ("ZADD", "z", "INCR", "NX", "5", "a"),
        ("ZADD", "z", "INCR", "XX", "5", "nosuch"),
        ("ZADD", "z", "GT", "INCR", "-1", "a"),
        ("ZADD", "missing", "XX", "1", "a"),
        ("ZADD", "missing", "XX", "INCR", "1", "a"),
        ("EXISTS", "missing"),
        ("ZADD", "z", "NX", "XX", "1", "a"),
        ("ZADD", "z", "GT", "LT", "1", "a"),
        ("ZADD", "z", "NX", "GT", "1", "a"),
        ("ZADD", "z", "INCR", "1", "a", "2", "b"),
        ("ZADD", "z", "1", "a", "2"),
        ("ZADD", "z", "NX"),
        ("ZADD", "z", "nan", "a"),
        ("ZADD", "z", "1", "a", "x", "b"),
        ("ZADD", "z", "1e400", "a"),
        ("ZADD", "z", " 1", "a"),
        ("ZADD", "z", "inf", "top", "-inf", "bottom", "+inf", "top2"),
        ("ZADD", "z", "INCR", "-inf", "top"),
        ("ZINCRBY", "z", "2.5", "a"),
        ("ZINCRBY", "z", "1", "newcomer"),
        ("ZINCRBY", "z", "x", "a"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZCARD", "z"),
    )


def test_scores_format_as_redis(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "z", "1.1", "a", "0.1", "b", "-0", "c", "1e20", "d", "123456789012345678", "e", "3.0", "f"),
        ("ZADD", "z", "2.5e-5", "g", ".5", "h", "5.", "i", "-1.5E3", "j"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZSCORE", "z", "a"),
        ("ZMSCORE", "z", "a", "nosuch", "e"),
        ("ZMSCORE", "nokey", "a"),
        ("ZSCORE", "z", "nosuch"),
        ("ZSCORE", "nokey", "a"),
    )


def test_ranges(empty_pair):
    members = [str(score) for score in range(20)]
    assert_same_replies(
        *empty_pair,
        ("ZADD", "z", *[item for i, m in enumerate(members) for item in (str(i // 2), f"m{m}")]),
        ("ZRANGE", "z", "0", "4"),
        ("ZRANGE", "z", "-3", "-1", "WITHSCORES"),
        ("ZRANGE", "z", "5", "2"),
        ("ZRANGE", "z", "100", "200"),
        ("ZRANGE", "z", "-100", "2"),
        ("ZRANGE", "z", "0", "2", "REV"),
        ("ZREVRANGE", "z", "0", "2", "WITHSCORES"),
        ("ZRANGE", "z", "2", "5", "BYSCORE"),
        ("ZRANGE", "z", "(2", "(5", "BYSCORE", "WITHSCORES"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "3", "4"),
        ("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "3", "4"),
        ("ZRANGE", "z", "5", "2", "BYSCORE", "REV", "WITHSCORES"),
        ("ZRANGE", "z", "2", "5", "BYSCORE", "LIMIT", "100", "2"),
        ("ZRANGE", "z", "2", "5", "BYSCORE", "LIMIT", "-1", "2"),
        ("ZRANGE", "z", "2", "5", "BYSCORE", "LIMIT", "1", "-5"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "2"),
        ("ZRANGE", "z", "0", "-1", "FOO"),
        ("ZRANGE", "z", "a", "1"),
        ("ZRANGE", "z", "x", "1", "BYSCORE"),
        ("ZRANGE", "z", "(", "1", "BYSCORE"),
        ("ZRANGE", "z", "5", "5", "BYSCORE"),
        ("ZRANGE", "z", "(5", "5", "BYSCORE"),
        ("ZRANGEBYSCORE", "z", "3", "6", "WITHSCORES", "LIMIT", "1", "3"),
        ("ZRANGEBYSCORE", "z", "3", "6", "REV"),
        ("ZREVRANGEBYSCORE", "z", "6", "3", "LIMIT", "1", "3"),
        ("ZREVRANGEBYSCORE", "z", "3", "6"),
        ("ZREVRANGE", "z", "0", "1", "BYSCORE"),
        ("ZCOUNT", "z", "-inf", "+inf"),
        ("ZCOUNT", "z", "(2", "5"),
        ("ZCOUNT", "z", "7", "3"),
        ("ZCOUNT", "z", "x", "3"),
        ("ZCOUNT", "nokey", "0", "1"),
        ("ZRANGE", "nokey", "0", "-1"),
        ("ZRANK", "z", "m5"),
        ("ZREVRANK", "z", "m5"),
        ("ZRANK", "z", "nosuch"),
        ("ZRANK", "nokey", "m5"),
    )


def test_zrem_and_types(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("ZADD", "z", "1", "a", "2", "b"),
        ("ZREM", "z", "a", "nosuch", "a"),
        ("ZREM", "nokey", "a"),
        ("ZREM", "z", "b"),
        ("EXISTS", "z"),
        ("TYPE", "z"),
        ("SET", "s", "string"),
        ("ZADD", "z", "1", "a"),
        ("TYPE", "z"),
        ("GET", "z"),
        ("ZADD", "s", "1", "a"),
        ("ZRANGE", "s", "0", "-1"),
        ("ZSCORE", "s", "a"),
        ("ZCARD", "s"),
        ("ZREM", "s", "a"),
        ("ZCOUNT", "s", "0", "1"),
        ("ZRANK", "s", "a"),
        ("ZMSCORE", "s", "a"),
        ("ZINCRBY", "s", "1", "a"),
        ("SET", "z", "overwritten"),
        ("GET", "z"),
        ("DEL", "z", "s"),
        ("ZCARD", "z"),
        ("ZADD", "z"),
        ("ZRANGE", "z", "0"),
    )


def test_book_zquery(server, key):
    with server.connect() as client:
        client.command("ZADD", key(), "1", "a", "2", "b", "2", "c", "3", "d")
        assert client.command("ZQUERY", key(), "2", "b", "0", "10") == (
            b"*6\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n2\r\n$1\r\nd\r\n$1\r\n3\r\n"
        )
        assert client.command("ZQUERY", key(), "2", "bb", "-1", "2") == (
            b"*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n2\r\n"
        )
        assert client.command("ZQUERY", key(), "9", "", "0", "10") == b"*0\r\n"
        assert client.command("ZQUERY", key("missing"), "0", "", "0", "10") == b"*0\r\n"


# --- random command sequences --------------------------------------------------------

members = st.sampled_from(["a", "b", "c", "d", "e", "f"])
scores = st.sampled_from(["0", "1", "1.5", "2", "-3", "inf", "-inf", "10"])
bounds = st.sampled_from(["-inf", "+inf", "0", "(0", "1", "(1.5", "2", "(10"])
indexes = st.integers(-8, 8).map(str)
zadd_flags = st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=2, unique=True)

commands = st.one_of(
    st.tuples(zadd_flags, st.lists(st.tuples(scores, members), min_size=1, max_size=3)).map(
        lambda fp: ("ZADD", "z", *fp[0], *[item for pair in fp[1] for item in pair])
    ),
    st.tuples(st.just("ZREM"), st.just("z"), members, members),
    st.tuples(st.just("ZINCRBY"), st.just("z"), scores, members),
    st.tuples(st.just("ZSCORE"), st.just("z"), members),
    st.tuples(st.sampled_from(["ZRANK", "ZREVRANK"]), st.just("z"), members),
    st.tuples(st.just("ZCOUNT"), st.just("z"), bounds, bounds),
    st.tuples(st.sampled_from(["ZRANGE", "ZREVRANGE"]), st.just("z"), indexes, indexes, st.just("WITHSCORES")),
    st.tuples(
        st.just("ZRANGE"), st.just("z"), bounds, bounds, st.just("BYSCORE"), st.sampled_from(["REV", "WITHSCORES"]),
        st.just("LIMIT"), st.integers(-1, 4).map(str), st.integers(-1, 4).map(str),
    ),  # fmt: skip
    st.tuples(st.just("ZCARD"), st.just("z")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(commands, min_size=1, max_size=25))
def test_random_sequences_match_redis(empty_pair, sequence):
    assert_same_sequence(empty_pair, ("z",), sequence)
