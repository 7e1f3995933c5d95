"""common/glob.py: Redis's glob rules, and the same answers as real Redis."""

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.glob import glob_match

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
