"""common/glob.py: Redis's glob rules, the same answers as real Redis, and
work bounded by len(pattern) x len(key) whatever the pattern."""

import subprocess
import sys
import textwrap

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.glob import compile_glob, glob_match

pytestmark = pytest.mark.since(9)


@pytest.mark.parametrize(
    "pattern, matching, not_matching",
    [
        # The examples of Redis's KEYS documentation.
        (b"h?llo", [b"hello", b"hallo", b"hxllo"], [b"hllo", b"heello"]),
        (b"h*llo", [b"hllo", b"heeeello"], [b"hell"]),
        (b"h[ae]llo", [b"hello", b"hallo"], [b"hillo"]),
        (b"h[^e]llo", [b"hallo", b"hbllo"], [b"hello"]),
        (b"h[a-b]llo", [b"hallo", b"hbllo"], [b"hcllo"]),
        (b"h[b-a]llo", [b"hallo", b"hbllo"], [b"hcllo"]),
        (b"*", [b"", b"anything\n"], []),
        (b"", [b""], [b"a"]),
        (b"**", [b"x"], [b""]),
        (b"?*", [b"x"], [b""]),
        (b"a\\*b", [b"a*b"], [b"axb"]),
        (b"[\\]]", [b"]"], [b"\\"]),
        (b"[]", [], [b"", b"]", b"a"]),
        (b"[^]", [b"a", b"]"], [b"", b"ab"]),
        (b"ab[c", [b"abc"], [b"ab[c", b"ab"]),
        (b"a\\", [b"a\\"], [b"a"]),
        (b"a.c", [b"a.c"], [b"abc"]),
        (b"\n*", [b"\nx"], [b"x"]),
    ],
)
def test_patterns(pattern, matching, not_matching):
    assert all(glob_match(pattern, key) for key in matching)
    assert not any(glob_match(pattern, key) for key in not_matching)


keys = st.lists(st.binary(max_size=4) | st.text("ab[]^-\\", max_size=4).map(str.encode), min_size=1, max_size=8, unique=True)
patterns = st.text("ab[]^-\\*?", min_size=1, max_size=6).map(str.encode)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=keys, pattern=patterns)
def test_same_as_real_redis(real_redis, keys, pattern):
    with redis.Redis(port=real_redis.port, protocol=2) as client:
        client.flushall()
        client.mset({key: b"1" for key in keys})
        expected = sorted(client.keys(pattern))
    assert sorted(key for key in keys if glob_match(pattern, key)) == expected


def test_greedy_placement_finds_matches_backtracking_would():
    # Each middle segment is placed at its leftmost occurrence.
    assert glob_match(b"*ab?d*cd", b"xxabcabxdzcd")
    assert glob_match(b"a*[bc]?*c", b"aXbYc")
    assert not glob_match(b"a*b*c*d", b"abcabc")
    assert glob_match(b"a*b*c*d", b"abcabcd")
    assert not glob_match(b"ab*ba", b"aba")  # prefix and suffix must not overlap


def test_a_pattern_longer_than_any_key_is_not_compiled_past_it():
    matches = compile_glob(b"?" * 10_000_000, longest_key=8)
    assert not matches(b"12345678")


# Each runs in a child process: the old backtracking matcher would take
# years on these, so a regression shows up as the child's deadline passing,
# a hang, not as a measured time.
HOSTILE_MATCHES = {
    "Redis's regression test (keyspace.tcl)": ("a" * 50, "*a" * 50 + "b"),
    "30 stars against a 40-byte key": ("a" * 40, "a*" * 30 + "b"),
    "100 stars against a 10 kB key": ("a" * 10_000, "a*" * 100 + "b"),
    "100 classes between stars against a 10 kB key": ("a" * 10_000, "*[ab]" * 100 + "c"),
    "1 MB literal pattern": ("a" * 1000, "a" * 1_000_000),
}


@pytest.mark.parametrize("key, pattern", HOSTILE_MATCHES.values(), ids=HOSTILE_MATCHES.keys())
def test_hostile_patterns_do_not_hang(key, pattern):
    code = textwrap.dedent(f"""
        from common.glob import compile_glob, glob_match
        assert not glob_match({pattern!r}.encode(), {key!r}.encode())
    """)
    subprocess.run([sys.executable, "-"], input=code.encode(), check=True, timeout=60)
