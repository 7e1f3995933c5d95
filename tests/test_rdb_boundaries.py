"""Chapter 16 on: every boundary of every RDB encoding, both ways.

A length takes 1, 2, 5 or 9 bytes (63/64, 16,383/16,384, 2^32-1/2^32); a
string is raw, an 8, 16 or 32-bit integer, or LZF-compressed (Redis tries
above 20 bytes); a small sorted set is a listpack, whose entries are 7, 13,
16, 24, 32 or 64-bit integers, or strings with a 6, 12 or 32-bit length,
each followed by a back-length of 1 to 5 bytes. Our writer uses raw
strings and ZSET_2; what it writes at each length edge must pass
redis-check-rdb and load into real Redis. Real Redis writes all of the
encodings, and our loader must read each of them at each of its edges.
"""

from __future__ import annotations

import random

import pytest

from tests.support import assert_loads, assert_real_redis_loads, real_redis_on, saved_by, state

pytestmark = [pytest.mark.since(16), pytest.mark.heavy, pytest.mark.readme("Snapshots: RDB")]

LENGTH_EDGES = [0, 1, 63, 64, 16_383, 16_384, 70_000]
INTEGER_EDGES = [
    0, 127, 128, -128, -129, 32_767, 32_768, -32_768, -32_769, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
    4095, 4096, -4096, -4097, 2**23 - 1, 2**23, -(2**23), -(2**23) - 1, 2**63 - 1, -(2**63),
]  # fmt: skip
# Listpack string entries: 6-bit length to 63, 12-bit to 4,095, then 32-bit; the back-length takes
# 1 byte for an entry up to 127 bytes (a 125-byte string and its 2-byte header), 2 below 16,383.
LISTPACK_STRING_EDGES = [63, 64, 125, 126, 4095, 4096, 16_378, 16_379]


def incompressible(length: int, seed: int) -> bytes:
    """Bytes LZF cannot shorten, so that Redis writes them raw, with a plain length."""
    return random.Random(seed).randbytes(length)


def fill_length_edges(client) -> None:
    for index, length in enumerate(LENGTH_EDGES):
        client.set(b"v:%d" % length, incompressible(length, index))
        if length:
            client.set(incompressible(length, index + 100), b"a key %d bytes long" % length)
        members = {b"m:%d" % i: i / 3 for i in range(min(length, 16_384))}  # the member count's length
        if members:
            client.zadd(b"z:%d" % length, members)
        client.zadd(b"zm:%d" % length, {incompressible(length, index + 200): 1.5, b"x": 2})


def test_what_we_write_at_each_length_edge_loads_into_redis_and_back(server, tmp_path):
    expected = saved_by(server, tmp_path, fill_length_edges)
    assert_real_redis_loads(tmp_path, expected)
    assert_loads(server, tmp_path, expected)


@pytest.mark.parametrize("compression", ["yes", "no"])
def test_we_read_every_encoding_real_redis_writes_at_its_edges(server, tmp_path, compression):
    # Sorted sets stay listpacks (up to 20,000-byte members); those past 128 members are skiplists (ZSET_2).
    theirs = real_redis_on(tmp_path, "--rdbcompression", compression, "--zset-max-listpack-value", "20000")
    with theirs.redis() as client:
        fill_length_edges(client)
        for number in INTEGER_EDGES:  # 8, 16 and 32-bit integer strings; wider ones raw
            client.set(b"i:%d" % number, b"%d" % number)
            client.set(b"%d" % number, b"integer key")
        client.zadd(b"lp:integers", {b"%d" % number: number for number in INTEGER_EDGES})  # each listpack width
        client.zadd(b"sk:integers", {b"%d" % number: number for number in INTEGER_EDGES}
                    | {b"pad:%d" % i: i for i in range(130)})  # fmt: skip
        for length in LISTPACK_STRING_EDGES:
            client.zadd(b"lp:%d" % length, {incompressible(length, length): 0.5, b"y" * length: 7})
        for length in (20, 21, 22, 100, 20_000):  # LZF is tried above 20 bytes
            client.set(b"lzf:%d" % length, b"ab" * (length // 2) + b"c" * (length % 2))
        expected = state(client)
        assert client.object("encoding", b"lp:16379") == b"listpack"
        assert client.object("encoding", b"sk:integers") == b"skiplist"
        assert client.save()
    theirs.stop()
    assert_loads(server, tmp_path, expected)
